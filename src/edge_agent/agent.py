"""The edge agent: instruments → spool → MQTT, with status and self-metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core.clock import Clock, SystemClock, build_clock
from core.logs import log_event
from core.mqtt import MqttLink
from core.spool import Spool
from drivers.base import Driver, ReportsUnits
from drivers.config import ChannelBase
from drivers.faults import protocol_faults
from drivers.reading import Reading
from drivers.registry import create_driver
from edge_agent import __version__
from edge_agent.metrics import AgentMetrics
from edge_agent.publisher import Publisher
from edge_agent.scheduler import InstrumentRunner
from edge_agent.settings import AgentSettings
from edge_agent.wire import (
    TEXT_VALUE_MAX,
    AgentMetricsMessage,
    AgentStatus,
    ChannelInfo,
    InstrumentInfo,
    InstrumentState,
    Topics,
    encode_readings,
    one_line,
)

log = logging.getLogger("etalon.agent")

SPOOL_PACE_S = 0.025
"""Busy, the spool writer commits at most once per this: what the instruments read meanwhile
goes together in the next commit (one fsync, not one per poll). A reading arriving when the
writer was idle is committed at once."""

SHUTDOWN_GRACE_S = 3.0
"""On a clean stop, how long the agent waits for the broker to take what is spooled."""


async def cancel_until_done(tasks: list[asyncio.Task[None]], every_s: float = 0.5) -> None:
    """Cancel the tasks, and cancel again those still running after ``every_s``.

    Before Python 3.12, ``asyncio.wait_for`` (pymodbus awaits every reply with it) drops a
    cancellation that lands just as the awaited reply completes; the task then polls on as if
    nothing happened, and a stop waiting for it would wait forever."""
    for task in tasks:
        task.cancel()
    while True:
        _done, pending = await asyncio.wait(tasks, timeout=every_s)
        if not pending:
            return
        for task in pending:
            task.cancel()


class Agent:
    """One agent process. ``await run(stop)`` until ``stop`` is set."""

    def __init__(self, config: AgentSettings, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or build_clock(config.clock)
        self.metrics = AgentMetrics()
        if isinstance(self.clock, SystemClock) and self.clock.on_step is None:
            self.clock.on_step = self._on_clock_step
        self.topics = Topics(config.mqtt.topic_prefix)
        self.drivers: dict[str, Driver[ChannelBase]] = {
            i.name: create_driver(i, self.clock) for i in config.instruments if i.enabled
        }
        self.instrument_states: dict[str, InstrumentState] = {}
        self.spool = Spool(config.spool, "agent")
        self._buffer: list[tuple[bytes, int]] = []
        self._buffered = asyncio.Event()
        self._closing = False
        self._link: MqttLink | None = None
        self._identities: dict[str, dict[str, str]] = {}
        """What the last birth message said of each instrument (identity, reported units)."""
        self.started = asyncio.Event()

    # -- readings ------------------------------------------------------------------------------

    def _on_clock_step(self, at_ns: int, by_ns: int) -> None:
        # Called where the clock is read (a driver's worker thread too): a counter and a line.
        self.metrics.clock_steps += 1
        log_event(
            log,
            logging.WARNING,
            "clock stepped",
            at_ms=at_ns // 1_000_000,
            by_ms=round(by_ns / 1e6),
        )

    def _sink(self, readings: list[Reading]) -> None:
        # A poll's readings encoded together, with their count (polls of one commit are merged).
        if readings:
            self._buffer.append((encode_readings(readings), len(readings)))
            self._buffered.set()

    def _sink_encoded(self, data: bytes, count: int) -> None:
        # A poll a driver returned as rows, already encoded by the pipeline's RowEncoder.
        self._buffer.append((data, count))
        self._buffered.set()

    async def _spool_writer(self) -> None:
        # Ends by itself once told to close and everything read is committed: cancelling it
        # mid-commit would leave the commit running in the spool's thread, uncounted.
        loop = asyncio.get_running_loop()
        while True:
            await self._buffered.wait()
            started = loop.time()
            await self._flush()
            if self._closing and not self._buffer:
                return
            rest = started + SPOOL_PACE_S - loop.time()
            if rest > 0 and not self._closing:
                await asyncio.sleep(rest)

    async def _flush(self) -> None:
        self._buffered.clear()
        polls, self._buffer = self._buffer, []
        if not polls:
            return
        entries = merge_polls(polls, self.config.publish.batch_max_readings)
        self.metrics.spool_dropped += await self.spool.append(entries)
        self.metrics.spooled += sum(n for _, n in entries)

    # -- status --------------------------------------------------------------------------------

    def catalogue(self) -> list[InstrumentInfo]:
        """What the agent reads, with each instrument's identification."""
        out = []
        for instrument in self.config.instruments:
            driver = self.drivers.get(instrument.name)
            channels: list[ChannelBase] = list(getattr(instrument, "channels"))  # noqa: B009
            # Units the instrument reports (OPC UA EngineeringUnits) fill those the config omits.
            reported = _reported_units(driver)
            out.append(
                InstrumentInfo(
                    name=instrument.name,
                    protocol=str(getattr(instrument, "protocol")),  # noqa: B009
                    identity=_identity(driver.describe()) if driver else {},
                    channels=[
                        ChannelInfo(
                            name=c.name,
                            unit=c.unit or reported.get(c.name, ""),
                            interval_s=c.interval_s,
                            tags=c.tags,
                        )
                        for c in channels
                    ],
                )
            )
        return out

    def _status(self, state: str, reason: str | None, with_ts: bool = True) -> bytes:
        status = AgentStatus(
            state=state,  # type: ignore[arg-type]
            site=self.config.site,
            agent=self.config.id,
            version=__version__,
            ts=time.time_ns() if with_ts else None,
            reason=reason,
            # describe() says object; the model checks each value is one the wire takes.
            clock=self.clock.describe() if state == "online" else {},  # type: ignore[arg-type]
            instruments=self.catalogue() if state == "online" else [],
        )
        return status.model_dump_json(by_alias=True, exclude_none=True).encode()

    def _on_connected(self, _session_present: bool) -> None:
        assert self._link is not None
        self.metrics.mqtt_connected = 1
        self._publish_birth()
        for name, state in self.instrument_states.items():
            self._publish_state(name, state)

    def _publish_birth(self) -> None:
        assert self._link is not None
        self._identities = {name: _announced(d) for name, d in self.drivers.items()}
        self._link.publish(self._topic("status"), self._status("online", None), retain=True)

    def _on_instrument_state(self, name: str, state: str, reason: str | None) -> None:
        reason = one_line(reason) if reason is not None else None
        info = InstrumentState(state=state, since=time.time_ns(), reason=reason)  # type: ignore[arg-type]
        self.instrument_states[name] = info
        if self._link is not None and self._link.connected.is_set():
            self._publish_state(name, info)
            # An instrument tells who it is (*IDN?, OPC UA BuildInfo) and the units it reports
            # only once connected: the catalogue a calibration record quotes is republished when
            # that changes.
            driver = self.drivers.get(name)
            if driver is not None and _announced(driver) != self._identities.get(name):
                self._publish_birth()

    def _publish_state(self, name: str, state: InstrumentState) -> None:
        assert self._link is not None
        topic = self.topics.instrument(self.config.site, self.config.id, name)
        self._link.publish(
            topic, state.model_dump_json(by_alias=True, exclude_none=True).encode(), retain=True
        )

    def _topic(self, kind: str) -> str:
        site, agent = self.config.site, self.config.id
        return {
            "status": self.topics.status,
            "data": self.topics.data,
            "metrics": self.topics.metrics,
        }[kind](site, agent)

    def metrics_payload(self) -> bytes:
        """The self-metrics message."""
        self.metrics.spool_depth = self.spool.depth
        self.metrics.spool_bytes = self.spool.bytes
        if self._link is not None:
            self.metrics.mqtt_connected = int(self._link.connected.is_set())
            self.metrics.mqtt_reconnects = self._link.reconnects
        self.metrics.protocol_faults = protocol_faults()
        message = AgentMetricsMessage(
            kind="agent",
            site=self.config.site,
            agent=self.config.id,
            ts=time.time_ns(),
            metrics=self.metrics.snapshot(),
        )
        return message.model_dump_json(by_alias=True).encode()

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            if self._link is not None and self._link.connected.is_set():
                self._link.publish(self._topic("metrics"), self.metrics_payload(), retain=True)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; raises SpoolError/TransportError at start on bad setup."""
        await self.spool.open()
        if self.spool.depth:
            log_event(
                log,
                logging.INFO,
                "spool has readings from an earlier run",
                readings=self.spool.depth,
            )
        cfg = self.config
        link = MqttLink(
            cfg.mqtt,
            f"etalon-agent-{cfg.site}-{cfg.id}",
            will=(self._topic("status"), self._status("offline", "connection lost", with_ts=False)),
        )
        self._link = link
        link.on_connected.append(self._on_connected)
        publisher = Publisher(
            link, self.spool, self._topic("data"), cfg.site, cfg.id, cfg.publish, self.metrics
        )
        try:
            await link.start()
        except BaseException:  # refused, or a stop during start-up (core.signals cancels it)
            await link.stop()
            await self.spool.close()
            raise
        locks: dict[str, asyncio.Lock] = {}
        runners = [
            InstrumentRunner(
                i,
                self.drivers[i.name],
                self.clock,
                self._sink,
                self.metrics,
                self._on_instrument_state,
                locks.setdefault(i.bus, asyncio.Lock()) if i.bus else None,
                encoded_sink=self._sink_encoded,
            )
            for i in cfg.instruments
            if i.enabled
        ]
        log_event(
            log,
            logging.INFO,
            "agent started",
            site=cfg.site,
            agent=cfg.id,
            instruments=len(runners),
            channels=sum(len(r.channels) for r in runners),
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        )
        try:
            async with asyncio.TaskGroup() as group:
                runner_tasks = [
                    group.create_task(r.run(), name=f"instrument-{r.config.name}") for r in runners
                ]
                writer = group.create_task(self._spool_writer(), name="spool-writer")
                helpers = [
                    group.create_task(publisher.run(), name="publisher"),
                    group.create_task(self._metrics_loop(), name="metrics"),
                ]
                self.started.set()
                await stop.wait()
                await cancel_until_done(runner_tasks)
                self._closing = True
                self._buffered.set()
                await writer
                drained = await publisher.drain(SHUTDOWN_GRACE_S)
                for task in helpers:
                    task.cancel()
        finally:
            await self._shutdown(link, drained=locals().get("drained", False))

    async def _shutdown(self, link: MqttLink, drained: bool) -> None:
        with contextlib.suppress(Exception):
            if link.connected.is_set():
                link.publish(self._topic("metrics"), self.metrics_payload(), retain=True)
                link.publish(
                    self._topic("status"), self._status("offline", "shutdown"), retain=True
                )
                await asyncio.sleep(0.1)
        await link.stop()
        await self.spool.close()
        final = self.metrics.snapshot() | {"spool_depth": self.spool.depth}
        log_event(log, logging.INFO, "agent stopped", drained=drained, **final)


def merge_polls(polls: list[tuple[bytes, int]], most: int) -> list[tuple[bytes, int]]:
    """The polls one commit takes, as few spool entries as hold at most ``most`` readings each
    (a poll larger than that alone): an entry is a fragment of a batch's readings, so polls join
    with a comma. The spool's cost is mostly per entry (its row written, later deleted), and
    what one commit appends stands or falls together anyway."""
    if len(polls) == 1:
        return polls
    entries: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    held = 0
    for data, count in polls:
        if parts and held + count > most:
            entries.append((b",".join(parts), held))
            parts, held = [], 0
        parts.append(data)
        held += count
    entries.append((b",".join(parts), held))
    return entries


def _reported_units(driver: Driver[ChannelBase] | None) -> dict[str, str]:
    return driver.units() if isinstance(driver, ReportsUnits) else {}


def _announced(driver: Driver[ChannelBase]) -> dict[str, str]:
    """What the birth message says of an instrument that may change once it is connected."""
    units = {f"unit:{name}": unit for name, unit in _reported_units(driver).items()}
    return driver.describe() | units


def _identity(described: dict[str, str]) -> dict[str, str]:
    """An instrument's identification as the wire takes it (its *IDN? reply may hold a CR/LF)."""
    return {
        one_line(key, 64).replace("\\", "/"): one_line(value, TEXT_VALUE_MAX)
        for key, value in list(described.items())[:32]
    }
