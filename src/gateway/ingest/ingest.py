"""MQTT → gateway spool: validate, spool, then acknowledge, in the order messages arrived.

A data message is acknowledged only after its readings are committed to the gateway's spool, so
a gateway killed at any moment loses nothing: the broker redelivers what was not acknowledged.
Acks go out in the order the messages were received, as MQTT requires for QoS 1, including for
refused payloads (dead-lettered first) and status messages (recorded first).

No message can stop or stall ingest. Whatever one message raises while it is classified and
validated — a :class:`PayloadError` of the wire format, or any other exception — refuses that
message alone: it is dead-lettered with the reason, counted, logged (once per cause, not once
per message: :class:`CauseLog`) and acknowledged. Its record (agent, catalogue, instrument
state) is written inside a savepoint of its own: a record that fails is rolled back alone,
dead-lettered, and the others of the batch commit. A status or metrics body naming another site
or agent than its topic is refused (``payloads_spoofed``).

The probe: :meth:`Ingest.probe` publishes, every interval, a message to the gateway's own
``…/gateways/{id}/probe`` topic, which ingest also subscribes to. The broker queues it behind
every message it took before, so when it comes back, everything published up to its sending has
been received; ingest hands it over in its turn, after those messages, as a
:class:`~gateway.ingest.events.Heard` event (how the alert engine tells the channels' silence
from the gateway's own delays). A probe of an earlier run of the gateway (left queued by a kill)
is acknowledged and ignored; one that is not a probe of this gateway is refused.

Refused payloads go to ``{prefix}/v1/{site}/deadletter`` with the reason and the raw bytes (up to
``deadletter_max_bytes``, base64), to the record store's ``deadletters`` table (bounded, see
:mod:`gateway.records.deadletters`), and to a counter.

A batch's spool entry is built in :mod:`gateway.ingest.entries`; the record store's rows of
agents and instruments are written by :mod:`gateway.records.agents`.

Longer than 500 lines on purpose: classifying, refusing, spooling and acknowledging are one
ordering contract (acks in arrival order, after the spool and the records) over one per-message
state, and splitting the class would spread that order over several modules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.errors import PayloadError
from core.logs import CauseLog, log_event
from core.mqtt import Message, MqttLink
from core.spool import Spool
from edge_agent.wire import (
    SPOOFED,
    Rejected,
    Topics,
    WireReading,
    check_names,
    decode_instrument_state,
    decode_metrics,
    decode_status,
)
from edge_agent.wire_batches import ChannelOrder, DataBatch, WireRow, decode_data
from edge_agent.wire_calibration import decode_calibration
from gateway.config import GatewayConfig
from gateway.corrections.corrector import Corrector
from gateway.corrections.spans import BatchFixes
from gateway.ingest.entries import Spoolable, readings_entry, spool_entries, spool_entry
from gateway.ingest.events import (
    AgentStateChanged,
    EventHub,
    Heard,
    InstrumentStateChanged,
    ReadingsArrived,
)
from gateway.metrics import GatewayMetrics
from gateway.records import deadletters
from gateway.records.agents import record_instrument, record_status
from gateway.records.store import RecordStore
from gateway.tsdb.points import EntryMemo, Lines, ReadingsBatch
from metrology.certificate.record import CalibrationRecord

log = logging.getLogger("etalon.gateway")

REASON_MAX = 2000
"""Characters of a dead letter's reason kept in the record store."""
PROBE_MAX_BYTES = 200
PROBE_LOST_S = 10.0
"""Connected this long without a probe back: said (stale data is not judged meanwhile)."""


@dataclass(frozen=True, slots=True)
class _Letter:
    """A dead letter's row in the record store."""

    ts_ns: int
    topic: str
    reason: str
    size: int
    payload: bytes

    def insert(self, db: sqlite3.Connection) -> None:
        deadletters.insert(db, self.ts_ns, self.topic, self.reason, self.size, self.payload)


@dataclass
class _Pending:
    """A received message and what must happen before it is acknowledged."""

    message: Message
    entry: bytes | None = None
    count: int = 1
    """Readings in ``entry`` (the spool counts readings)."""
    record: Callable[[sqlite3.Connection], None] | None = None
    forget: Callable[[], None] | None = None
    """Undoes what classifying the message remembered, if its record fails."""
    letter: _Letter | None = None
    readings: DataBatch | None = None
    fixes: BatchFixes | None = None
    """Corrections of ``readings``."""
    handed: ReadingsBatch | Lines | None = None
    """The rows of ``entry`` or their lines, for the writer (see EntryMemo), once it is
    spooled."""
    uncorrected: tuple[list[WireRow], ChannelOrder | None] | None = None
    """Rows of a linked agent (and their order) whose corrections ``entry`` still needs: they
    are made in :meth:`Ingest.run`, for every such message of the wake-up at once."""
    source: tuple[str, str] = ("", "")
    events: list[object] = field(default_factory=list)


class Ingest:
    """See the module doc."""

    def __init__(
        self,
        config: GatewayConfig,
        link: MqttLink,
        spool: Spool,
        records: RecordStore,
        metrics: GatewayMetrics,
        hub: EventHub | None = None,
        corrector: Corrector | None = None,
        memo: EntryMemo | None = None,
    ) -> None:
        self.config = config
        self.corrector = corrector
        self.memo = memo
        """Where the rows of a spooled payload are left for the writer (see EntryMemo)."""
        self.hub = hub or EventHub()
        self.link = link
        self.spool = spool
        self.records = records
        self.metrics = metrics
        self.topics = Topics(config.mqtt.topic_prefix)
        self.agents: dict[tuple[str, str], str] = {}
        self.instruments: dict[tuple[str, str, str], str] = {}
        self.calibrations: dict[str, str] = {}
        """Run → SHA-256 of the calibration records stored (one record per run)."""
        self.causes = CauseLog(log)
        self._pending: list[_Pending] = []
        self._arrived = asyncio.Event()
        self.probe_topic = self.topics.gateway(config.site, config.id, "probe")
        self.run_id = secrets.token_hex(8)
        """This run's probes carry it: those of an earlier run are not heard."""
        self.probe_back: float | None = None
        """``time.monotonic()`` when the latest probe of this run came back."""
        link.on_message = self.on_message

    def subscriptions(self) -> list[str]:
        """Topics to subscribe: data (shared if configured), status, metrics, instrument states,
        and the gateway's own probe."""
        root = self.topics.root
        group = self.config.ingest.shared_group
        out = []
        for site in self.config.ingest_sites():
            data = f"{root}/{site}/+/data"
            out.append(f"$share/{group}/{data}" if group else data)
            out += [
                f"{root}/{site}/+/calibrations",
                f"{root}/{site}/+/status",
                f"{root}/{site}/+/metrics",
                f"{root}/{site}/+/instruments/+",
            ]
        return [*out, self.probe_topic]

    async def load_known_agents(self) -> None:
        """Agent states from the record store, so a restart does not re-announce them."""
        rows = await self.records.query("SELECT site, agent, state FROM agents")
        self.agents = {(r["site"], r["agent"]): r["state"] for r in rows}
        rows = await self.records.query(
            "SELECT site, agent, instrument, state FROM instrument_states"
        )
        self.instruments = {(r["site"], r["agent"], r["instrument"]): r["state"] for r in rows}
        self.metrics.agents_online = sum(1 for s in self.agents.values() if s == "online")
        rows = await self.records.query("SELECT run, sha256 FROM calibrations")
        self.calibrations = {r["run"]: r["sha256"] for r in rows}

    # -- loop thread, synchronous: classify and validate -----------------------------------

    def on_message(self, message: Message) -> None:
        """Classify and validate one message; queue it for spooling and acknowledgement.

        Never raises: a message that cannot be handled is refused, and queued all the same so it
        is acknowledged in its turn."""
        pending = _Pending(message)
        if message.topic != self.probe_topic:
            self.metrics.messages_received += 1
        try:
            self._guarded(pending, self._classify)
        finally:
            self._pending.append(pending)
            self._arrived.set()

    def _guarded(self, pending: _Pending, work: Callable[[_Pending], None]) -> None:
        """``work`` on one message; whatever it raises refuses that message alone (never
        raises: a message that cannot even be refused is dropped, and acknowledged)."""
        try:
            self._handle(pending, work)
        except Exception as exc:  # noqa: BLE001 - even refusing it failed: still acknowledge it
            pending.entry = pending.record = pending.letter = None
            pending.readings, pending.events, pending.uncorrected = None, [], None
            self.causes.failed(
                "message dropped",
                "refusal failed",
                exc,
                topic=pending.message.topic,
                reason=str(exc)[:300],
            )

    def _handle(self, pending: _Pending, work: Callable[[_Pending], None]) -> None:
        try:
            work(pending)
        except PayloadError as exc:
            if exc.cause == SPOOFED:
                self.metrics.payloads_spoofed += 1
            self._refuse(pending, exc.reason, exc.cause)
        except Exception as exc:  # noqa: BLE001 - whatever one message raises, it alone is refused
            self.metrics.ingest_errors += 1
            self._refuse(
                pending,
                f"could not handle the message: {type(exc).__name__}: {exc}",
                f"internal error ({type(exc).__name__})",
                logging.ERROR,
            )

    def _classify(self, pending: _Pending) -> None:
        message = pending.message
        if message.topic == self.probe_topic:
            self._probe(pending)
            return
        parsed = self.topics.parse(message.topic)
        if parsed is None:
            raise PayloadError("not an etalon agent topic", "not an agent topic")
        site, agent, kind, instrument = parsed
        check_names(site, agent, instrument)
        pending.source = (site, agent)
        if not message.payload:
            return  # a cleared retained message: nothing to record
        if len(message.payload) > self.config.ingest.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(message.payload)} bytes exceeds "
                f"ingest.max_payload_bytes={self.config.ingest.max_payload_bytes}",
                "payload too large",
            )
        if kind == "data":
            self._data(pending, site, agent)
        elif kind == "status":
            self._status(pending, site, agent)
        elif kind == "metrics":
            self._agent_metrics(pending, site, agent)
        elif kind == "calibrations":
            self._calibration(pending, site, agent)
        elif instrument is not None:
            self._instrument(pending, site, agent, instrument)

    def _data(self, pending: _Pending, site: str, agent: str) -> None:
        payload = pending.message.payload
        batch = decode_data(payload, site, agent)
        good, rejected, seq = batch.rows, batch.rejected, batch.seq
        self.metrics.readings_received += len(good)
        pending.count = len(good)
        if rejected:
            self.metrics.readings_rejected += len(rejected)
            self._letter(
                pending,
                f"{len(rejected)} of {len(good) + len(rejected)} readings refused",
                "readings refused",
                logging.WARNING,
                rejected,
            )
            if good:
                pending.entry = readings_entry(site, agent, seq, batch.dicts())
        else:
            pending.entry = payload
        corrector = self.corrector
        if good and pending.entry is not None and corrector and corrector.covers(site, agent):
            pending.uncorrected = (good, batch.order)  # corrected in run(), with the others
        elif pending.entry is not None and self.memo is not None:
            pending.handed = self.memo.held(ReadingsBatch(site, agent, rows=good))
        if good and self.hub.wants(ReadingsArrived):
            pending.readings = batch  # else its rows die now, not once the message is spooled

    def _correct(self, batch: list[_Pending]) -> None:
        """Correct the data messages of linked agents among ``batch``, all in one call (numpy's
        cost per call is paid once per wake-up, not per message): their spool entries, the
        writer's rows, the fixes alerts read. Should that call fail, each message is corrected
        alone, and one that fails is refused alone."""
        todo = [p for p in batch if p.uncorrected is not None]
        if not todo or self.corrector is None:
            return
        corrector = self.corrector
        counted = corrector.corrected, corrector.flagged
        try:
            made = spool_entries(corrector, [_spoolable(p) for p in todo])
        except Exception:  # noqa: BLE001 - found below, message by message
            # What the joint call had counted before it failed is counted again below.
            corrector.corrected, corrector.flagged = counted
            for pending in todo:
                self._guarded(pending, self._correct_alone)
            return
        for pending, (entry, rows, fixes) in zip(todo, made, strict=True):
            self._corrected(pending, entry, rows, fixes)

    def _correct_alone(self, pending: _Pending) -> None:
        assert self.corrector is not None
        self._corrected(pending, *spool_entry(self.corrector, *_spoolable(pending)))

    def _corrected(
        self, pending: _Pending, entry: bytes, rows: ReadingsBatch, fixes: BatchFixes | None
    ) -> None:
        pending.entry, pending.fixes, pending.uncorrected = entry, fixes, None
        if self.memo is not None:
            pending.handed = self.memo.held(rows)

    def _status(self, pending: _Pending, site: str, agent: str) -> None:
        status = decode_status(pending.message.payload, site, agent)
        now = time.time_ns()
        previous = self.agents.get((site, agent))
        self.agents[(site, agent)] = status.state
        self.metrics.agents_online = sum(1 for s in self.agents.values() if s == "online")
        if previous != status.state:
            expected = status.state == "online" or status.reason == "shutdown"
            level = logging.INFO if expected else logging.WARNING
            log_event(
                log, level, f"agent {status.state}", site=site, agent=agent, reason=status.reason
            )
            pending.events.append(
                AgentStateChanged(
                    site, agent, status.state, previous, status.reason, status.ts or now
                )
            )
        if self.corrector is not None and status.state == "online":
            # The messages before this one are corrected with the serials they came with.
            self._correct(self._pending)
            for instrument in status.instruments:
                self.corrector.serial_reported(
                    site, agent, instrument.name, instrument.identity.get("serial")
                )
        pending.record = lambda db: record_status(db, site, agent, status, previous, now)

    def _instrument(self, pending: _Pending, site: str, agent: str, instrument: str) -> None:
        state = decode_instrument_state(pending.message.payload)
        previous = self.instruments.get((site, agent, instrument))
        self.instruments[(site, agent, instrument)] = state.state
        if previous != state.state:
            pending.events.append(
                InstrumentStateChanged(
                    site, agent, instrument, state.state, previous, state.reason, state.since
                )
            )
        pending.record = lambda db: record_instrument(db, site, agent, instrument, state)

    def _calibration(self, pending: _Pending, site: str, agent: str) -> None:
        record, digest = decode_calibration(pending.message.payload, site, agent)
        known = self.calibrations.get(record.run)
        if known is not None and known != digest:
            raise PayloadError(
                f"run {record.run} already has a record (SHA-256 {known}); a calibration record "
                "never changes"
            )
        if known is not None:
            self.metrics.calibrations_duplicate += 1
            return  # a redelivery: stored already
        self.calibrations[record.run] = digest
        self.metrics.calibrations_received += 1

        def forget() -> None:  # its record failed: not stored, and stored if sent again
            self.calibrations.pop(record.run, None)
            self.metrics.calibrations_received -= 1

        pending.forget = forget
        log_event(
            log, logging.INFO, "calibration recorded", site=site, agent=agent, run=record.run,
            decision=record.decision,
        )  # fmt: skip
        pending.record = lambda db: _record_calibration(db, record, digest, site)

    def _agent_metrics(self, pending: _Pending, site: str, agent: str) -> None:
        body = decode_metrics(pending.message.payload, site, agent)
        entry = {
            "kind": "metrics",
            "measurement": "etalon_agent",
            "tags": {"site": site, "agent": agent},
            "ts": body.ts,
            "values": body.metrics,
        }
        pending.entry = orjson.dumps(entry)

    def _probe(self, pending: _Pending) -> None:
        """The gateway's own probe (see the module doc)."""
        payload = pending.message.payload
        if len(payload) > PROBE_MAX_BYTES:
            raise PayloadError(
                f"a probe has at most {PROBE_MAX_BYTES} bytes, not {len(payload)}", "invalid probe"
            )
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"a probe is JSON: {exc}", "invalid probe") from exc
        run, sent = (body.get("run"), body.get("sent")) if isinstance(body, dict) else (None, None)
        if (
            not isinstance(body, dict)
            or set(body) != {"run", "sent"}
            or not isinstance(run, str)
            or type(sent) is not float
            or not math.isfinite(sent)
        ):
            raise PayloadError(
                'a probe is {"run": string, "sent": finite number} and nothing else',
                "invalid probe",
            )
        if run != self.run_id:
            return  # an earlier run's, queued while the gateway was down: heard nothing new
        now = time.monotonic()
        if sent > now:
            raise PayloadError(
                f"probe sent in the future ({sent:.3f} > {now:.3f})", "invalid probe"
            )
        self.probe_back = now
        pending.events.append(Heard(sent))

    async def probe(self, interval_s: float) -> None:
        """Publish a probe every ``interval_s`` while connected, until cancelled; say when
        probes stop coming back (a broker that refuses the topic: see docs/security.md)."""
        lost_said = False
        since = time.monotonic()
        while True:
            now = time.monotonic()
            if not self.link.connected.is_set():
                since = now
            else:
                body = orjson.dumps({"run": self.run_id, "sent": now})
                try:
                    self.link.publish(self.probe_topic, body, qos=1)
                except Exception as exc:  # noqa: BLE001 - a probe lost is said, never fatal
                    self.causes.failed("probe not published", "publish failed", exc)
                back = self.probe_back if self.probe_back is not None else since
                lost = now - max(back, since) > max(PROBE_LOST_S, 10 * interval_s)
                if lost and not lost_said:
                    log_event(
                        log,
                        logging.WARNING,
                        "probe not coming back, stale data not judged",
                        topic=self.probe_topic,
                        silent_s=round(now - max(back, since), 1),
                    )
                elif not lost and lost_said:
                    log_event(log, logging.INFO, "probe back", topic=self.probe_topic)
                lost_said = lost
            await asyncio.sleep(interval_s)

    # -- refusing --------------------------------------------------------------------------

    def _refuse(
        self, pending: _Pending, reason: str, cause: str, level: int = logging.WARNING
    ) -> None:
        """Refuse the whole message: nothing of it is spooled, recorded or announced."""
        pending.entry = pending.record = None
        pending.readings, pending.events, pending.uncorrected = None, [], None
        self._letter(pending, reason, cause, level)

    def _letter(
        self,
        pending: _Pending,
        reason: str,
        cause: str,
        level: int,
        rejected: Sequence[Rejected] = (),
    ) -> None:
        """Dead-letter what was refused of a message (MQTT now, the record store with the
        message's record); a message is counted once however many times its letter changes."""
        message = pending.message
        keep = self.config.ingest.deadletter_max_bytes
        raw = message.payload[:keep]
        site = pending.source[0] or self.config.site
        now = time.time_ns()
        if pending.letter is None:
            self.metrics.payloads_deadlettered += 1
        letter: dict[str, Any] = {
            "schema": 1,
            "ts": now,
            "gateway": self.config.id,
            "topic": message.topic,
            "reason": reason,
            "payload_bytes": len(message.payload),
            "payload_b64": base64.b64encode(raw).decode(),
            "truncated": len(raw) < len(message.payload),
        }
        if rejected:
            letter["rejected"] = [r.model_dump() for r in rejected[:100]]
        try:
            self.link.publish(self.topics.deadletter(site), json.dumps(letter).encode(), qos=1)
        except Exception as exc:  # noqa: BLE001 - the record store still gets the letter
            self.causes.failed("dead letter not published", "publish failed", exc)
        self.causes.log(
            level,
            "payload refused",
            cause,
            topic=message.topic,
            reason=reason[:500],
            bytes=len(message.payload),
        )
        full_reason = (
            reason
            if not rejected
            else f"{reason}: " + "; ".join(f"#{r.index}: {r.reason}" for r in rejected[:20])
        )
        pending.letter = _Letter(
            now, message.topic, full_reason[:REASON_MAX], len(message.payload), raw
        )

    # -- task: spool, record, acknowledge -------------------------------------------------

    async def run(self) -> None:
        """Spool and acknowledge queued messages until cancelled."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            self._correct(batch)
            spooled = [p for p in batch if p.entry is not None]
            if spooled:
                entries = [(p.entry, p.count) for p in spooled if p.entry is not None]
                self.metrics.spool_dropped += await self.spool.append(entries)
                self.metrics.spooled += len(entries)
                self._hand_over(spooled)
            await self._record(batch)
            for pending in batch:
                self.link.ack(pending.message)
            wanted = self.hub.wants(ReadingsArrived)
            for pending in batch:
                for event in pending.events:
                    self.hub.publish(event)
                if pending.readings is not None and wanted:
                    self.hub.publish(_arrived(pending.source, pending.readings, pending.fixes))

    def _hand_over(self, spooled: list[_Pending]) -> None:
        """The rows of what was just spooled, left for the writer by entry id: before anything
        else is awaited, so the writer, woken by the append, finds them."""
        memo = self.memo
        if memo is None:
            return
        for pending, entry_id in zip(spooled, self.spool.last_ids, strict=True):
            if pending.handed is not None and pending.entry is not None:
                memo.put(entry_id, pending.handed, len(pending.entry))
                pending.handed = None

    async def _record(self, batch: list[_Pending]) -> None:
        """Write the batch's records, each in a savepoint; a record that fails is rolled back,
        its message dead-lettered instead."""
        to_record = [p for p in batch if p.record is not None or p.letter is not None]
        if not to_record:
            return
        failed = await self.records.run(lambda db: _apply_records(db, to_record))
        if not failed:
            return
        for pending, exc in failed:
            self.metrics.records_failed += 1
            # Its readings (if any) are spooled already and stay announced; its own record and
            # the state changes it would have announced are gone.
            pending.record, pending.events = None, []
            if pending.forget is not None:
                pending.forget()
            self._letter(
                pending,
                f"could not be recorded: {type(exc).__name__}: {exc}",
                f"record failed ({type(exc).__name__})",
                logging.ERROR,
            )
        retry = [pending for pending, _ in failed]
        lost = await self.records.run(lambda db: _apply_records(db, retry))
        for pending, exc in lost:
            self.causes.failed(
                "dead letter not recorded", "dead letter failed", exc, topic=pending.message.topic
            )


def _arrived(
    source: tuple[str, str], batch: DataBatch, fixes: BatchFixes | None
) -> ReadingsArrived:
    """The event of a spooled batch: its dicts (with its corrections) made if a listener asks;
    an uncorrected batch's rows for those that need a few readings."""

    def make() -> list[WireReading]:
        readings = batch.dicts()
        if fixes is not None:
            fixes.apply(readings)  # type: ignore[arg-type]
        return readings

    if fixes is not None:
        return ReadingsArrived(*source, make=make)
    return ReadingsArrived(*source, rows=batch.rows, order=batch.order, make=make)


def _spoolable(pending: _Pending) -> Spoolable:
    """A message still to correct, as :func:`spool_entries` takes it."""
    assert pending.entry is not None and pending.uncorrected is not None
    return (*pending.source, pending.entry, *pending.uncorrected)


def _apply_records(
    db: sqlite3.Connection, batch: list[_Pending]
) -> list[tuple[_Pending, Exception]]:
    """Each message's record and dead letter in a savepoint of its own, all in one transaction;
    returns the messages whose savepoint was rolled back, with what they raised."""
    failed: list[tuple[_Pending, Exception]] = []
    db.execute("BEGIN IMMEDIATE")
    for pending in batch:
        db.execute("SAVEPOINT message")
        try:
            if pending.record is not None:
                pending.record(db)
            if pending.letter is not None:
                pending.letter.insert(db)
        except Exception as exc:  # noqa: BLE001 - one message's record must not fail the others
            db.execute("ROLLBACK TO message")
            failed.append((pending, exc))
        db.execute("RELEASE message")
    db.execute("COMMIT")
    return failed


def _record_calibration(
    db: sqlite3.Connection, record: CalibrationRecord, digest: str, site: str
) -> None:
    from gateway.records.calibrations import insert

    insert(db, record, digest, site)
