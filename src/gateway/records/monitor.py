"""The running gateway's watch over its records: it verifies the record store at start and
every ``records.ledger.verify_interval_s`` (on a connection of its own, in a thread: reading
100,000 entries is about a second of CPU), signs a checkpoint when entries have waited
``checkpoint_every_s``, and hands every report — and every finding a writer makes — to the
gateway (which raises the records_integrity alert through the alert engine)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from core.logs import log_event
from gateway.records.chain import Finding
from gateway.records.config import RecordsConfig
from gateway.records.keys import trusted_keys
from gateway.records.store import RecordStore
from gateway.records.verify import RecordsReport, verify_file

log = logging.getLogger("etalon.gateway.records")

TICK_S = 1.0


class RecordsMonitor:
    """See the module doc. ``on_report(report, source)``: every verification's report
    (``source``: start, interval, request, writer); ``on_finding(finding)``: a writer found the
    ledger changed behind its back (called on the event loop)."""

    def __init__(
        self,
        records: RecordStore,
        config: RecordsConfig,
        *,
        on_report: Callable[[RecordsReport, str], None] = lambda _r, _s: None,
        on_finding: Callable[[Finding], None] = lambda _f: None,
    ) -> None:
        self.records = records
        self.config = config
        self.on_report = on_report
        self.on_finding = on_finding
        self.latest: RecordsReport | None = None
        self.verifications = 0
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def attach(self) -> None:
        """Listen to the ledger's writer (call on the event loop, after the store is open)."""
        self._loop = asyncio.get_running_loop()
        self.records.ledger.on_finding.append(self._from_writer)

    def _from_writer(self, finding: Finding) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._writer_found, finding)

    def _writer_found(self, finding: Finding) -> None:
        self.on_finding(finding)
        self._wake.set()  # verify again now: the chain itself may show more

    async def verify(self, source: str = "request") -> RecordsReport:
        """Verify now (one verification at a time) and report it."""
        async with self._lock:
            key = self.records.ledger.key
            trusted = trusted_keys(self.config, key)
            report = await asyncio.to_thread(verify_file, self.config, trusted)
            self.latest = report
            self.verifications += 1
        level = logging.INFO if report.ok else logging.ERROR
        fields: dict[str, object] = {
            "ledger": report.ledger,
            "entries": report.entries,
            "unsigned": report.unsigned,
            "duration_s": f"{report.duration_s:.3f}",
            "source": source,
        }
        if report.finding is not None:
            fields |= {"kind": report.finding.kind, "finding": report.finding.message}
        log_event(log, level, "records verified" if report.ok else "records broken", **fields)
        self.on_report(report, source)
        return report

    async def run(self) -> None:
        """Verify at start, then sign and verify when due, until cancelled."""
        ledger = self.records.ledger
        interval = self.config.ledger.verify_interval_s
        next_verify = time.monotonic() + interval if interval else None
        await self._verify_logged("start")
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            if self._wake.is_set():
                self._wake.clear()
                await self._verify_logged("writer")
            if ledger.checkpoint_due():
                try:
                    await self.records.run(ledger.checkpoint)
                except Exception as exc:  # noqa: BLE001 - signed at the next tick
                    log_event(log, logging.ERROR, "checkpoint not signed", reason=str(exc))
            if next_verify is not None and time.monotonic() >= next_verify:
                next_verify = time.monotonic() + interval
                await self._verify_logged("interval")

    async def _verify_logged(self, source: str) -> None:
        try:
            await self.verify(source)
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read is reported
            log_event(log, logging.ERROR, "records not verified", reason=str(exc))
