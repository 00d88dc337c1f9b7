"""What a run sends to the gateway, through the normal chain: spool → MQTT (QoS 1) → gateway.

The bench publishes under an agent identity of its own, ``etalon/v1/{site}/{id}/…`` (default id:
the agent's id + ``-cal``), so that it fits the broker's ACL (an identity publishes only under
its own topics) and never takes over the agent's session or status while the agent runs:

- every reading the run takes (settling, measurement, environment) on ``…/data``, tagged with
  ``run``, ``point``, ``role`` and ``phase``, through the agent's spool and publisher (the same
  code: a reading leaves the spool only when the broker acknowledged it);
- the record of a completed run on ``…/calibrations``, from a spool of its own, one message per
  record, removed only on PUBACK; the gateway keeps one record per run, so a redelivery is
  harmless: exactly once in the record store;
- ``online`` (retained) with the instruments the run uses, ``offline`` as the will and at the end.

Both spools live in the bench's data directory; what the broker has not taken when a run ends
(broker down, lab offline) is sent by the next ``etalon calibrate`` command that connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.logs import log_event
from core.mqtt import MqttConfig, MqttLink
from core.spool import Entry, Spool, SpoolConfig
from drivers.reading import Reading
from edge_agent import __version__
from edge_agent.config import PublishConfig
from edge_agent.metrics import AgentMetrics
from edge_agent.publisher import Publisher
from edge_agent.wire import AgentStatus, InstrumentInfo, Topics, encode_reading

log = logging.getLogger("etalon.calibration")

RECORD_WINDOW = 4
"""Records in flight at most (each is one message)."""


@dataclass(eq=False)
class RecordPublisher:
    """The record spool → ``…/calibrations``, one message per entry, removed on PUBACK."""

    link: MqttLink
    spool: Spool
    topic: str
    on_delivered: Callable[[bytes], Awaitable[None]] | None = None
    inflight: dict[int, Entry] = field(default_factory=dict, init=False)
    refused: int = field(default=0, init=False)
    delivered: int = field(default=0, init=False)
    _cursor: int = field(default=0, init=False)
    _room: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self._room.set()  # room for the first record

    def on_ack(self, mid: int, failure: str | None) -> None:
        """A PUBACK (from the link's callback, on the loop)."""
        entry = self.inflight.pop(mid, None)
        if entry is None:
            return
        self._room.set()
        if failure is not None:
            self.refused += 1
            log_event(log, logging.ERROR, "broker refused a calibration record", reason=failure)
            self._cursor = min(self._cursor, entry.id - 1)  # try it again later
            return
        task = asyncio.get_running_loop().create_task(self._acked(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _acked(self, entry: Entry) -> None:
        await self.spool.ack(entry.id, entry.id)
        self.delivered += 1
        if self.on_delivered is not None:
            await self.on_delivered(entry.data)

    async def run(self) -> None:
        """Publish until cancelled."""
        while True:
            await self.link.connected.wait()
            await self._room.wait()
            self.spool.changed.clear()
            entries = await self.spool.read(self._cursor, 1)
            if not entries:
                await self.spool.changed.wait()
                continue
            entry = entries[0]
            mid = self.link.publish(self.topic, entry.data, qos=1)
            self.inflight[mid] = entry
            self._cursor = entry.id
            if len(self.inflight) >= RECORD_WINDOW:
                self._room.clear()

    def idle(self) -> bool:
        """Nothing spooled and nothing in flight."""
        return not self.inflight and not self._tasks and self.spool.depth == 0


class RunStream:
    """The bench's identity on MQTT, its spools and publishers; see the module doc."""

    def __init__(
        self,
        data_dir: Path,
        mqtt: MqttConfig,
        site: str,
        agent: str,
        on_record_delivered: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        self.site = site
        self.agent = agent
        self.mqtt = mqtt
        self.topics = Topics(mqtt.topic_prefix)
        spool_dir = data_dir / "spool"
        self.readings = Spool(SpoolConfig(path=spool_dir / "readings.db"), "calibration-readings")
        self.records = Spool(SpoolConfig(path=spool_dir / "records.db"), "calibration-records")
        self.metrics = AgentMetrics()
        self.instruments: list[InstrumentInfo] = []
        self._on_record_delivered = on_record_delivered
        self._link: MqttLink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: Publisher | None = None
        self._record_publisher: RecordPublisher | None = None
        self._started: asyncio.Task[None] | None = None

    def _status(self, state: str, reason: str | None, with_ts: bool = True) -> bytes:
        status = AgentStatus(
            state=state,  # type: ignore[arg-type]
            site=self.site,
            agent=self.agent,
            version=__version__,
            ts=time.time_ns() if with_ts else None,
            reason=reason,
            clock={},
            instruments=self.instruments if state == "online" else [],
        )
        return status.model_dump_json(by_alias=True, exclude_none=True).encode()

    async def start(self) -> None:
        """Open the spools and start connecting (in the background: an unreachable broker does
        not hold the run up; what is spooled waits for it)."""
        await self.readings.open()
        await self.records.open()
        link = MqttLink(
            self.mqtt,
            f"etalon-calibration-{self.site}-{self.agent}",
            will=(
                self.topics.status(self.site, self.agent),
                self._status("offline", "connection lost", with_ts=False),
            ),
        )
        self._link = link
        publisher = Publisher(
            link,
            self.readings,
            self.topics.data(self.site, self.agent),
            self.site,
            self.agent,
            PublishConfig(batch_max_delay_ms=100),
            self.metrics,
        )
        readings_ack = link.on_ack
        records = RecordPublisher(
            link,
            self.records,
            self.topics.calibrations(self.site, self.agent),
            self._on_record_delivered,
        )

        def on_ack(mid: int, failure: str | None) -> None:
            if readings_ack is not None:
                readings_ack(mid, failure)
            records.on_ack(mid, failure)

        link.on_ack = on_ack
        link.on_connected.append(self._birth)
        self._publisher, self._record_publisher = publisher, records
        self._started = asyncio.create_task(self._connect(link), name="calibration-mqtt-start")

    async def _connect(self, link: MqttLink) -> None:
        try:
            await link.start()
        except Exception as exc:  # noqa: BLE001 - any failure to connect leaves the spool as is
            log_event(
                log, logging.WARNING, "mqtt not available, readings stay spooled", reason=str(exc)
            )
            return
        assert self._publisher is not None and self._record_publisher is not None
        self._tasks = [
            asyncio.create_task(self._publisher.run(), name="calibration-publisher"),
            asyncio.create_task(self._record_publisher.run(), name="calibration-records"),
        ]

    def _birth(self, _session_present: bool) -> None:
        if self._link is not None:
            self._link.publish(
                self.topics.status(self.site, self.agent), self._status("online", None), retain=True
            )

    async def add(self, readings: list[Reading]) -> None:
        """Spool readings (committed before this returns)."""
        if readings:
            await self.readings.append([encode_reading(r) for r in readings])

    async def add_record(self, message: bytes) -> None:
        """Spool a record's message."""
        await self.records.append([message])

    def sent(self) -> bool:
        """Whether the broker acknowledged anything in this session."""
        delivered = self._record_publisher.delivered if self._record_publisher else 0
        return self.metrics.acknowledged > 0 or delivered > 0

    def idle(self) -> bool:
        """Everything spooled has been acknowledged."""
        publisher, records = self._publisher, self._record_publisher
        return publisher is not None and records is not None and publisher.idle() and records.idle()

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the broker to take everything; True if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self.readings.depth == 0 and self.records.depth == 0 and self.idle():
                return True
            await asyncio.sleep(0.05)
        return self.readings.depth == 0 and self.records.depth == 0

    async def stop(self) -> None:
        """Publish ``offline``, disconnect, close the spools (what is left stays for later)."""
        if self._started is not None:
            self._started.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._started
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                if link.connected.is_set():
                    link.publish(
                        self.topics.status(self.site, self.agent),
                        self._status("offline", "shutdown"),
                        retain=True,
                    )
                    await asyncio.sleep(0.1)
            await link.stop()
        await self.readings.close()
        await self.records.close()


def run_of_message(message: bytes) -> str | None:
    """The run id named by a record message (its envelope)."""
    try:
        data: Any = json.loads(message)
    except ValueError:
        return None
    run = data.get("run") if isinstance(data, dict) else None
    return run if isinstance(run, str) else None
