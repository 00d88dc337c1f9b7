"""One task per instrument: connect, poll on an aligned monotonic schedule, reconnect.

Ticks of a channel fall on multiples of its interval in wall-clock terms (a 1 s channel reads at
every whole second, a 60 s channel at every whole minute), so channels of one instrument with
different intervals are read together when their ticks coincide. The schedule runs on the
monotonic clock: a step of the system clock neither bunches nor skips reads. A read that overruns
the next tick makes that tick be skipped and counted in ``overruns`` — never queued.

A driver that streams (:class:`drivers.base.StreamingDriver`, e.g. OPC UA subscriptions) has its
streamed channels consumed as they arrive, beside the polling of its other channels; whichever of
the two loses the connection first ends the session for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence

from core.backoff import BackoffTimer
from core.clock import Clock
from core.errors import DriverError, DriverTimeout, NotConnected
from core.logs import log_event
from drivers.base import Driver, StreamingDriver
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Reading, midpoint_ns
from edge_agent.metrics import AgentMetrics
from edge_agent.pipeline import ReadsRows, RowEncoder, Rows, count_bad, finish

log = logging.getLogger("etalon.agent")

FAILURES_BEFORE_RECONNECT = 3
"""Whole-read failures in a row (timeouts, protocol errors) after which the session is re-opened."""


def wall_minus_loop_time(loop: asyncio.AbstractEventLoop) -> float:
    """The wall clock less the loop's (monotonic) clock, in seconds: the anchor that puts ticks
    kept on the loop's clock on wall-clock multiples. Read between two readings of the loop's
    clock, three times, from the narrowest bracket: a thread switch or a preemption between the
    two clocks' readings (a loaded machine) would shift every tick of the connection by as much."""
    best_width = math.inf
    offset = 0.0
    for _ in range(3):
        before = loop.time()
        wall = time.time()
        after = loop.time()
        if after - before < best_width:
            best_width = after - before
            offset = wall - (before + after) / 2
    return offset


def first_tick(now_wall_s: float, interval_s: float) -> float:
    """The next wall-clock multiple of the interval after now."""
    return (math.floor(now_wall_s / interval_s) + 1) * interval_s


class Ticks:
    """The runners' wake-ups, one timer per millisecond of ticks shared by every runner due in
    it (instruments of one interval share their wall-clock ticks): with 50 devices at 10 Hz,
    10 timers a second, not 500. A waiter wakes at the end of its tick's millisecond (never
    early, as the loop's own timers). Each waiter has its own future, so a cancelled runner
    cancels only its own wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}

    def at(self, when: float) -> asyncio.Future[None]:
        """A future done at the loop time ``when`` (rounded up to the millisecond)."""
        key = math.ceil(when * 1000)
        future: asyncio.Future[None] = self._loop.create_future()
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            self._loop.call_at(key / 1000, self._fire, key)
        waiting.append(future)
        return future

    def _fire(self, key: int) -> None:
        for future in self._waiting.pop(key):
            if not future.done():
                future.set_result(None)


class Deadlines:
    """The runners' read timeouts, one timer for all of them (at the earliest deadline) instead
    of one per read; a read that is late has its task cancelled and sees TimeoutError, exactly
    as under ``asyncio.timeout`` (whose cancellation bookkeeping :meth:`settle` repeats)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._armed: dict[asyncio.Task[object], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, task: asyncio.Task[object], timeout_s: float) -> None:
        """Cancel ``task`` unless :meth:`settle` is called within ``timeout_s``."""
        deadline = self._loop.time() + timeout_s
        self._armed[task] = (deadline, task.cancelling())
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._sweep)

    def settle(self, task: asyncio.Task[object], error: BaseException | None) -> bool:
        """The read of ``task`` ended (``error``: how); True when it ended because it ran out
        of time (the caller raises TimeoutError)."""
        armed = self._armed.pop(task, None)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        cancelling = armed[1] if armed is not None else 0
        return task.uncancel() <= cancelling and isinstance(error, asyncio.CancelledError)

    def _sweep(self) -> None:
        self._timer = None
        now = self._loop.time()
        earliest = math.inf
        for task, (deadline, cancelling) in list(self._armed.items()):
            if deadline <= now:
                self._expired.add(task)
                self._armed[task] = (math.inf, cancelling)
                task.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._timer = self._loop.call_at(earliest, self._sweep)


_SHARED: dict[asyncio.AbstractEventLoop, tuple[Ticks, Deadlines]] = {}
"""A plain dict: the timers hold their loop, so weak keys would never die; the entries of closed
loops are dropped whenever another loop asks (tools and tests run several in turn)."""


def shared_timers(loop: asyncio.AbstractEventLoop) -> tuple[Ticks, Deadlines]:
    """The loop's :class:`Ticks` and :class:`Deadlines`, made on first use."""
    shared = _SHARED.get(loop)
    if shared is None:
        for closed in [other for other in _SHARED if other.is_closed()]:
            del _SHARED[closed]
        shared = _SHARED[loop] = (Ticks(loop), Deadlines(loop))
    return shared


StateCallback = Callable[[str, str, str | None], None]
EncodedSink = Callable[[bytes, int], None]
"""Takes a poll's readings already encoded (a spool entry) and how many they are."""


class InstrumentRunner:
    """Runs one instrument until cancelled: readings to ``sink``, state changes to ``on_state``."""

    def __init__(
        self,
        config: InstrumentBase,
        driver: Driver[ChannelBase],
        clock: Clock,
        sink: Callable[[list[Reading]], None],
        metrics: AgentMetrics,
        on_state: StateCallback,
        bus_lock: asyncio.Lock | None = None,
        encoded_sink: EncodedSink | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.clock = clock
        self.sink = sink
        self.metrics = metrics
        self.on_state = on_state
        self.bus_lock = bus_lock
        self.encoded_sink = encoded_sink
        """With a driver that reads rows (:class:`ReadsRows`), polls go to this sink encoded by a
        :class:`RowEncoder`, never as Reading objects; so do polls of plain GOOD readings of
        other drivers (:meth:`RowEncoder.encode_readings`)."""
        self._encoders: dict[int, tuple[Sequence[ChannelBase], RowEncoder]] = {}
        self._rows = encoded_sink is not None and isinstance(driver, ReadsRows)
        self.channels: list[ChannelBase] = list(getattr(config, "channels"))  # noqa: B009
        self.state = "starting"
        self._task: asyncio.Task[object] | None = None
        self._deadlines: Deadlines | None = None
        """The polling task and the loop's read timeouts (set as polling starts)."""

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if state == self.state:
            return
        previous, self.state = self.state, state
        level = logging.WARNING if state == "unavailable" else logging.INFO
        if state == "connected" and previous == "unavailable":
            log_event(log, logging.INFO, "instrument recovered", instrument=self.config.name)
        else:
            log_event(log, level, f"instrument {state}", instrument=self.config.name, reason=reason)
        if state == "unavailable":
            self.metrics.instruments_unavailable += 1
        elif previous == "unavailable":
            self.metrics.instruments_unavailable -= 1
        self.on_state(self.config.name, state, reason)

    async def run(self) -> None:
        """Connect, poll, reconnect with backoff; returns only by cancellation."""
        backoff = BackoffTimer(self.config.reconnect)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.connect_timeout_s):
                        await self.driver.connect()
                except (DriverError, TimeoutError) as exc:
                    reason = (
                        str(exc)
                        if isinstance(exc, DriverError)
                        else (f"connect timed out after {self.config.connect_timeout_s:g} s")
                    )
                    self._set_state("unavailable", reason)
                    await self._close_quietly()
                    await asyncio.sleep(backoff.next_delay())
                    continue
                backoff.reset()
                if self.state == "starting":
                    self._set_state("connected")
                # An instrument that was unavailable counts as recovered at its first good read,
                # not at connect: one that connects but never answers must not flap in the log.
                reason = await self._poll()
                self._set_state("unavailable", reason)
                await self._close_quietly()
                await asyncio.sleep(backoff.next_delay())
        finally:
            await self._close_quietly()

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(self.driver.close())

    async def _poll(self) -> str:
        """Poll (and consume the stream, if the driver streams) until the connection is lost;
        returns why."""
        driver = self.driver
        streamed = (
            driver.streamed_channels() if isinstance(driver, StreamingDriver) else frozenset()
        )
        polled = [c for c in self.channels if c.name not in streamed]
        if not streamed:
            return await self._poll_channels(polled)
        assert isinstance(driver, StreamingDriver)
        name = self.config.name
        poll = asyncio.create_task(self._poll_channels(polled), name=f"poll-{name}")
        consume = asyncio.create_task(self._consume(driver, streamed), name=f"stream-{name}")
        try:
            done, _ = await asyncio.wait({poll, consume}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            poll.cancel()
            consume.cancel()
            await asyncio.gather(poll, consume, return_exceptions=True)
        reason: str = (consume if consume in done else poll).result()
        if consume not in done:
            # The poll found the connection lost before the stream ended by itself: the stream
            # was cancelled before it could mark its gap, so mark it here, once.
            channels = [c for c in self.channels if c.name in streamed]
            gap = finish(driver.stream_gap(reason), channels)
            self.metrics.readings_read += len(gap)
            self.metrics.readings_bad += count_bad(gap)
            self.sink(gap)
        return reason

    async def _consume(self, driver: StreamingDriver, streamed: frozenset[str]) -> str:
        """Hand streamed readings on as they arrive, until the stream ends; returns why."""
        channels = {c.name: c for c in self.channels if c.name in streamed}
        try:
            async for raw in driver.stream():
                readings = finish(raw, [channels[r.channel] for r in raw if r.channel in channels])
                self.metrics.readings_read += len(readings)
                self.metrics.readings_bad += count_bad(readings)
                self.sink(readings)
        except DriverError as exc:
            self.metrics.read_errors += 1
            return exc.reason
        return "stream ended"

    async def _poll_channels(self, channels: Sequence[ChannelBase]) -> str:
        """Poll the channels until the connection is lost; returns why."""
        loop = asyncio.get_running_loop()
        if not channels:  # every channel is streamed: nothing to poll, until cancelled
            await loop.create_future()
        # Anchor the monotonic schedule to wall-clock multiples once per connection. Channels
        # of one interval share their ticks: one group each, so a poll of the usual case (one
        # interval for the whole instrument) builds nothing.
        wall_minus_mono = wall_minus_loop_time(loop)
        groups: dict[float, list[ChannelBase]] = {}
        for channel in channels:
            groups.setdefault(channel.interval_s, []).append(channel)
        intervals = list(groups)
        next_tick = [
            first_tick(loop.time() + wall_minus_mono, interval) - wall_minus_mono
            for interval in intervals
        ]
        members = [groups[interval] for interval in intervals]
        merged: dict[tuple[int, ...], list[ChannelBase]] = {}
        failures = 0
        ticks, self._deadlines = shared_timers(loop)
        self._task = asyncio.current_task()
        only = [0] if len(intervals) == 1 else None
        while True:
            due_at = min(next_tick)
            if due_at > loop.time():
                await ticks.at(due_at)
            due_groups = only or [k for k, tick in enumerate(next_tick) if tick <= due_at + 1e-6]
            if len(due_groups) == 1:
                due: Sequence[ChannelBase] = members[due_groups[0]]
            else:  # in the configured order, one list per combination of groups
                combination = tuple(due_groups)
                due = merged.get(combination)  # type: ignore[assignment]
                if due is None:
                    names = {c.name for k in due_groups for c in members[k]}
                    due = merged[combination] = [c for c in channels if c.name in names]
            outcome = await self._read(due)
            if isinstance(outcome, NotConnected):
                return outcome.reason
            failures = failures + 1 if outcome else 0
            if not outcome and self.state == "unavailable":
                self.metrics.reconnects += 1
                self._set_state("connected")
            if failures >= FAILURES_BEFORE_RECONNECT:
                return f"{failures} failed reads in a row, re-opening the session"
            now = loop.time()
            most_missed = 0
            for k in due_groups:
                interval = intervals[k]
                tick = next_tick[k] + interval
                if tick <= now:
                    missed = math.floor((now - tick) / interval) + 1
                    self.metrics.readings_skipped += missed * len(members[k])
                    most_missed = max(most_missed, missed)
                    tick += missed * interval
                next_tick[k] = tick
            self.metrics.overruns += most_missed

    async def _read(self, due: Sequence[ChannelBase]) -> NotConnected | bool:
        """One read of the due channels, within the read's timeout counted from when the bus is
        ours. Returns NotConnected, or whether the read failed."""
        lock = self.bus_lock
        if lock is not None:
            await lock.acquire()
        driver = self.driver
        rows: Rows | None = None
        raw: list[Reading] = []
        task, deadlines = self._task, self._deadlines
        assert task is not None and deadlines is not None  # set by _poll_channels
        start = self.clock.now_ns()
        deadlines.arm(task, self.config.timeout_s)
        failed = False
        try:
            if self._rows:
                rows = await driver.read_rows(due)  # type: ignore[attr-defined]
            else:
                raw = await driver.read(due)
        except BaseException as exc:
            failed = True
            error = TimeoutError() if deadlines.settle(task, exc) else exc
            if not isinstance(error, DriverError | TimeoutError):
                raise
            if isinstance(error, NotConnected):
                self.metrics.read_errors += 1
                return error
            raw = self._all_bad(due, start, self._failure(error))
        finally:
            if not failed:
                deadlines.settle(task, None)
            if lock is not None:
                lock.release()
        if rows is None and len(raw) < len(due):
            self.metrics.readings_repeated += len(due) - len(raw)  # see Driver.read
        encoded = None
        if self.encoded_sink is not None:
            if rows is not None:
                encoded = self._encoder(due).encode(rows)
            elif raw:
                encoded = self._encoder(due).encode_readings(raw)  # None: not all plain GOOD
        if encoded is not None and self.encoded_sink is not None:
            data, count, bad = encoded
            self.metrics.readings_read += count
            self.metrics.readings_bad += bad
            if count:
                self.encoded_sink(data, count)
            return failed
        readings = finish(raw, due)
        self.metrics.readings_read += len(readings)
        self.metrics.readings_bad += count_bad(readings)
        self.sink(readings)
        return failed

    def _failure(self, error: DriverError | TimeoutError) -> str:
        """A failed read counted, and the reason its readings are BAD."""
        if isinstance(error, DriverTimeout | TimeoutError):
            self.metrics.read_timeouts += 1
            # A driver's own timeout says which request went unanswered; ours only that the
            # whole read ran out of time.
            if isinstance(error, DriverTimeout):
                return error.reason
            return f"no reply within {self.config.timeout_s:g} s"
        self.metrics.read_errors += 1
        return error.reason

    def _encoder(self, due: Sequence[ChannelBase]) -> RowEncoder:
        """The encoder of a due set, made once (a due set is the same list poll after poll)."""
        known = self._encoders.get(id(due))
        if known is not None and known[0] is due:
            return known[1]
        encoder = RowEncoder(self.config.name, due)
        if len(self._encoders) > 64:  # a guard: due sets are made once per combination of groups
            self._encoders.clear()
        self._encoders[id(due)] = (due, encoder)
        return encoder

    def _all_bad(self, due: Sequence[ChannelBase], start_ns: int, reason: str) -> list[Reading]:
        ts = midpoint_ns(start_ns, self.clock.now_ns())
        return [Reading.bad(self.config.name, c.name, ts, c.unit, reason) for c in due]
