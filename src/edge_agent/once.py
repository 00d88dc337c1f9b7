"""Commissioning: read every channel of an agent's instruments once (or N ticks), nothing else.

``etalon agent -c FILE --once`` answers "does this config read this instrument?" without a broker,
a gateway or a spool: each instrument is connected, all its channels are read in one request per
tick through the same driver and pipeline the running agent uses, and the readings are handed
back with the time each request took. Nothing is published and no spool is opened. As in the
running agent, an instrument that cannot be connected, or whose connection is lost, is connected
again at the next tick: each tick has a reading of every channel.

Instruments are read concurrently (one task each; instruments sharing a ``bus`` take its lock),
so one dead instrument costs its own connect timeout, not the others' time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.clock import Clock, build_clock
from core.errors import DriverError, NotConnected
from drivers.base import Driver
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Quality, Reading, midpoint_ns
from drivers.registry import create_driver
from edge_agent.config import AgentConfig
from edge_agent.pipeline import finish


@dataclass(frozen=True, slots=True)
class OnceReading:
    """One channel's reading at one tick, with how long its request took (None: no request
    was made: the instrument could not be connected, ``connected`` is False and the reading's
    reason says why — the same words the running agent reports). ``connected`` is False too
    when the connection was found lost at this tick and could not be used again."""

    tick: int
    reading: Reading
    request_s: float | None
    connected: bool = True

    @property
    def good(self) -> bool:
        """Whether the reading is of good quality."""
        return self.reading.quality is Quality.GOOD


def selected(config: AgentConfig, names: Sequence[str] | None) -> list[InstrumentBase]:
    """The enabled instruments to read, in config order; ``names`` restricts them.

    Raises ``KeyError`` naming an instrument the config does not have."""
    known = {i.name: i for i in config.instruments}
    for name in names or ():
        if name not in known:
            raise KeyError(name)
    wanted = set(names or ())
    return [i for i in config.instruments if i.name in wanted or (not wanted and i.enabled)]


async def read_once(
    config: AgentConfig,
    instruments: Sequence[InstrumentBase],
    count: int = 1,
    clock: Clock | None = None,
) -> list[OnceReading]:
    """Connect each instrument and read all its channels ``count`` times, one tick per smallest
    channel interval (each tick starts at least that long after the one before); every channel
    of every tick gets a reading (BAD with the reason when the instrument cannot be connected or
    does not answer). Results are in config order."""
    clock = clock or build_clock(config.clock)
    locks: dict[str, asyncio.Lock] = {}
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                _read_instrument(
                    i, clock, count, locks.setdefault(i.bus, asyncio.Lock()) if i.bus else None
                ),
                name=f"once-{i.name}",
            )
            for i in instruments
        ]
    return [reading for task in tasks for reading in task.result()]


async def _read_instrument(
    instrument: InstrumentBase, clock: Clock, count: int, bus_lock: asyncio.Lock | None
) -> list[OnceReading]:
    channels: list[ChannelBase] = list(getattr(instrument, "channels"))  # noqa: B009
    driver = create_driver(instrument, clock)
    lock = bus_lock or contextlib.nullcontext()
    out: list[OnceReading] = []
    interval_s = min((c.interval_s for c in channels), default=1.0)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    connected = False
    try:
        for tick in range(1, count + 1):
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            async with lock:
                tried_at = loop.time()
                readings, connected, read_at = await _read_tick(
                    driver, instrument, channels, clock, tick, connected
                )
            # The next tick an interval after this one's read started (after its connect, which
            # may take long; or after its attempt to connect, if that failed): a late tick (a busy
            # machine, a slow instrument, a bus shared with others) delays the ones after it,
            # never lets them run back to back to catch up, which would read the same value twice.
            next_at = (tried_at if read_at is None else read_at) + interval_s
            out.extend(readings)
        return out
    finally:
        await _close_quietly(driver)


async def _read_tick(
    driver: Driver[ChannelBase],
    instrument: InstrumentBase,
    channels: Sequence[ChannelBase],
    clock: Clock,
    tick: int,
    connected: bool,
) -> tuple[list[OnceReading], bool, float | None]:
    """One tick of one instrument: (re)connect if it is not connected, read every channel;
    the readings, whether the instrument is connected after it, and the loop's time when the
    read started (None: it could not be connected). As the running agent
    reconnects, so does each tick: an instrument dead at the first tick is tried again at the
    next, and one whose connection was lost since the last tick is re-opened and read."""
    for attempt in (1, 2):
        if not connected:
            reason = await _connect(driver, instrument)
            if reason is not None:
                now = clock.now_ns()
                bad = [Reading.bad(instrument.name, c.name, now, c.unit, reason) for c in channels]
                return [OnceReading(tick, r, None, False) for r in bad], False, None
            connected = True
        read_at = asyncio.get_running_loop().time()
        start_ns = clock.now_ns()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(instrument.timeout_s):
                raw = await driver.read(channels)
        except (DriverError, TimeoutError) as exc:
            if isinstance(exc, NotConnected):
                connected = False
                await _close_quietly(driver)
                if attempt == 1:
                    continue  # lost since the last tick: re-open it and read
            reason = (
                exc.reason
                if isinstance(exc, DriverError)
                else f"no reply within {instrument.timeout_s:g} s"
            )
            ts = midpoint_ns(start_ns, clock.now_ns())
            raw = [Reading.bad(instrument.name, c.name, ts, c.unit, reason) for c in channels]
        took = time.perf_counter() - started
        readings = [OnceReading(tick, r, took, connected) for r in finish(raw, channels)]
        return readings, connected, read_at
    raise AssertionError("unreachable: the second attempt returns")


async def _connect(driver: Driver[ChannelBase], instrument: InstrumentBase) -> str | None:
    """Connect within the instrument's connect timeout: None, or why it could not."""
    try:
        async with asyncio.timeout(instrument.connect_timeout_s):
            await driver.connect()
    except (DriverError, TimeoutError) as exc:
        await _close_quietly(driver)
        if isinstance(exc, DriverError):
            return exc.reason
        return f"connect timed out after {instrument.connect_timeout_s:g} s"
    return None


async def _close_quietly(driver: Driver[ChannelBase]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.shield(driver.close())
