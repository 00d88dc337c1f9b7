"""The gateway's real Ingest, spool and record store, fed messages by the test.

Only the MQTT transport is stood in for (:class:`RecordingLink` keeps what ingest publishes and
acknowledges), so a test can say exactly which message was acknowledged, in which order, and what
each left behind: spool entries, records, dead letters, counters.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.mqtt import Message
from core.spool import Spool
from gateway.config import GatewayConfig
from gateway.ingest.ingest import Ingest
from gateway.metrics import GatewayMetrics
from gateway.records.chain import LedgerSettings
from gateway.records.store import RecordStore

SITE, AGENT = "lab-1", "bench-1"
ROOT = f"etalon/v1/{SITE}/{AGENT}"
TS0 = 1_790_000_000_000_000_000


class RecordingLink:
    """MqttLink's face towards Ingest: ``publish`` and ``ack`` are recorded."""

    def __init__(self) -> None:
        self.on_message: Any = None
        self.published: list[tuple[str, bytes]] = []
        self.acked: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Keep it; returns a message id."""
        self.published.append((topic, payload))
        return len(self.published)

    def ack(self, message: Message) -> None:
        """Keep the id of the acknowledged message."""
        self.acked.append(message.mid)


@dataclass
class Outcome:
    """What one message left behind."""

    acked: bool
    letters: list[dict[str, Any]] = field(default_factory=list)
    """Dead letters published on MQTT for it."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Its dead letters in the record store."""
    entries: list[dict[str, Any]] = field(default_factory=list)
    """What it added to the spool (decoded)."""


def reading(i: int = 0, **override: Any) -> dict[str, Any]:
    """A valid reading; ``override`` replaces fields."""
    body: dict[str, Any] = {
        "instrument": "dmm-1",
        "channel": "voltage",
        "ts": TS0 + i * 10**9,
        "value": 10.0 + i * 1e-7,
        "unit": "V",
        "quality": "good",
    }
    body.update(override)
    return body


def batch(*readings: dict[str, Any], **override: Any) -> bytes:
    """A data payload of these readings."""
    body = {"schema": 1, "site": SITE, "agent": AGENT, "seq": 0, "readings": list(readings)}
    body.update(override)
    return json.dumps(body).encode()


def status(**override: Any) -> bytes:
    """A valid birth message with one instrument of one channel."""
    body: dict[str, Any] = {
        "schema": 1,
        "state": "online",
        "site": SITE,
        "agent": AGENT,
        "version": "0.1.0",
        "ts": TS0,
        "clock": {"source": "system", "synchronized": True, "steps": 0},
        "instruments": [
            {
                "name": "dmm-1",
                "protocol": "visa",
                "identity": {"manufacturer": "Keysight", "model": "3458A"},
                "channels": [{"name": "voltage", "unit": "V", "interval_s": 1.0}],
            }
        ],
    }
    body.update(override)
    return json.dumps(body).encode()


def instrument_state(**override: Any) -> bytes:
    """A valid instrument state."""
    body: dict[str, Any] = {"schema": 1, "state": "unavailable", "since": TS0, "reason": "timeout"}
    body.update(override)
    return json.dumps(body).encode()


def agent_metrics(**override: Any) -> bytes:
    """A valid metrics message."""
    body: dict[str, Any] = {
        "schema": 1,
        "kind": "agent",
        "site": SITE,
        "agent": AGENT,
        "ts": TS0,
        "metrics": {"readings_read": 10, "spool_depth": 0},
    }
    body.update(override)
    return json.dumps(body).encode()


class IngestRig:
    """See the module doc; use :meth:`open` and :meth:`close` (or ``async with``)."""

    def __init__(self, tmp: Path) -> None:
        self.config = GatewayConfig.model_validate(
            {
                "site": SITE,
                "spool": {"path": str(tmp / "spool.db"), "synchronous": "normal"},
                "store": {"kind": "sqlite", "path": str(tmp / "readings.db")},
                "records": {"path": str(tmp / "records.db")},
            }
        )
        self.link = RecordingLink()
        self.metrics = GatewayMetrics()
        self.spool = Spool(self.config.spool, "gateway")
        self.records = RecordStore(
            self.config.records.path,
            LedgerSettings.of(self.config.records, self.config.site, self.config.id),
        )
        self.ingest: Ingest | None = None
        self.task: asyncio.Task[None] | None = None
        self._mid = 0
        self._spool_seen = 0

    async def open(self) -> IngestRig:
        """Open the stores, start ingest's task."""
        await self.records.open()
        await self.spool.open()
        self.ingest = Ingest(self.config, self.link, self.spool, self.records, self.metrics)  # type: ignore[arg-type]
        await self.ingest.load_known_agents()
        self.task = asyncio.create_task(self.ingest.run(), name="ingest")
        return self

    async def close(self) -> None:
        """Stop ingest, close the stores."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.spool.close()
        await self.records.close()

    async def __aenter__(self) -> IngestRig:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def deliver(self, topic: str, payload: bytes, retain: bool = False) -> Message:
        """Hand one message to ingest as the MQTT link would (on the loop's thread)."""
        self._mid += 1
        message = Message(topic, payload, self._mid, 1, retain, 0)
        assert self.link.on_message is not None
        self.link.on_message(message)
        return message

    async def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until every delivered message is acknowledged (fails if ingest died)."""
        deadline = time.monotonic() + timeout_s
        while len(self.link.acked) < self._mid:
            assert self.task is not None
            if self.task.done():
                raise AssertionError(f"ingest stopped: {self.task.exception()!r}")
            assert time.monotonic() < deadline, (
                f"{self._mid - len(self.link.acked)} messages never acknowledged"
            )
            await asyncio.sleep(0.002)

    async def send(self, topic: str, payload: bytes, retain: bool = False) -> Outcome:
        """Deliver one message, wait for its ack, and say what it left behind."""
        published = len(self.link.published)
        rows_before = await self.deadletter_count()
        message = self.deliver(topic, payload, retain)
        await self.settle()
        letters = [
            json.loads(p) for t, p in self.link.published[published:] if t.endswith("/deadletter")
        ]
        rows = await self.records.query(
            "SELECT * FROM deadletters ORDER BY id LIMIT -1 OFFSET ?", (rows_before,)
        )
        return Outcome(message.mid in self.link.acked, letters, rows, await self.new_entries())

    async def deadletter_count(self) -> int:
        """Dead letters in the record store."""
        return int((await self.records.query("SELECT COUNT(*) AS n FROM deadletters"))[0]["n"])

    async def new_entries(self) -> list[dict[str, Any]]:
        """Spool entries added since the last call, decoded."""
        entries = await self.spool.read(self._spool_seen, 1_000_000)
        if entries:
            self._spool_seen = entries[-1].id
        return [orjson.loads(e.data) for e in entries]

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """A read of the record store."""
        return await self.records.query(sql, params)
