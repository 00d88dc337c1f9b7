"""The per-instrument task: aligned ticks, merged reads, overruns skipped and counted, a hung
instrument isolated, a shared bus serialised, reconnect within the backoff bound."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.backoff import Backoff, BackoffTimer
from core.clock import SystemClock
from drivers.reading import Quality, Reading
from drivers.sim.inprocess import SimChannel, SimDriver, SimInstrument
from edge_agent import scheduler
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner, first_tick, shared_timers
from tests.support.clock_steps import StepLog, missed_ticks
from tests.support.waiting import until


def instrument(name: str, channels: list[tuple[str, float]], **extra: Any) -> SimInstrument:
    return SimInstrument.model_validate(
        {
            "name": name,
            "protocol": "sim",
            "model": {"kind": "room"},
            "channels": [
                {"name": n, "quantity": "temperature", "unit": "°C", "interval_s": i}
                for n, i in channels
            ],
            **extra,
        }
    )


class RecordingDriver(SimDriver):
    """The sim driver, remembering which channels each read asked for and when it ran."""

    def __init__(self, config: SimInstrument, clock: SystemClock) -> None:
        super().__init__(config, clock)
        self.calls: list[tuple[float, float, list[str]]] = []

    async def read(self, channels: Sequence[SimChannel]) -> list[Reading]:
        start = time.monotonic()
        readings = await super().read(channels)
        self.calls.append((start, time.monotonic(), [c.name for c in channels]))
        return readings


async def run_until(condition: Callable[[], object], what: str, *runners: InstrumentRunner) -> None:
    """Run the runners until ``condition()`` holds (what a test needs, however busy the
    machine), then cancel them."""
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await until(condition, what)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_for(seconds: float, *runners: InstrumentRunner) -> None:
    tasks = [asyncio.create_task(r.run()) for r in runners]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def runner(
    config: SimInstrument,
    sink: list[Reading],
    metrics: AgentMetrics | None = None,
    lock: asyncio.Lock | None = None,
    states: list[tuple[str, str | None]] | None = None,
    clock: SystemClock | None = None,
) -> InstrumentRunner:
    clock = clock or SystemClock()  # one for the driver and the runner, as in the agent
    driver = RecordingDriver(config, clock)
    return InstrumentRunner(
        config,
        driver,
        clock,
        sink.extend,
        metrics or AgentMetrics(),
        lambda _n, s, r: (states if states is not None else []).append((s, r)),
        lock,
    )


def test_first_tick_is_the_next_multiple_of_the_interval() -> None:
    assert first_tick(100.3, 1.0) == 101.0
    assert first_tick(100.0, 0.5) == 100.5
    assert first_tick(59.9, 60.0) == 60.0


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    timer = BackoffTimer(Backoff(initial_s=1, max_s=8, factor=2))
    delays = [timer.next_delay() for _ in range(6)]
    caps = [1, 2, 4, 8, 8, 8]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    timer.reset()
    assert timer.next_delay() <= 1


async def test_ticks_align_and_coinciding_channels_are_read_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    ticks: list[float] = []  # every wake-up the runner asks for, on the loop's clock
    real_at = scheduler.Ticks.at

    def at(self: scheduler.Ticks, when: float) -> asyncio.Future[None]:
        ticks.append(when)
        return real_at(self, when)

    monkeypatch.setattr(scheduler.Ticks, "at", at)
    readings: list[Reading] = []
    r = runner(instrument("room", [("fast", 0.1), ("slow", 0.3)]), readings)
    calls = r.driver.calls  # type: ignore[attr-defined]
    await run_until(
        lambda: (
            sum(c[2] == ["fast", "slow"] for c in calls) >= 4
            and sum(c[2] == ["fast"] for c in calls) >= 4
        ),
        "4 reads of fast alone and 4 together",
        r,
    )
    # Each tick falls on a wall-clock multiple of the interval (the wake-up is rounded up to the
    # millisecond); how late the read comes after it is the machine's load, not the schedule's.
    offset = scheduler.wall_minus_loop_time(loop)
    for when in ticks:
        assert (when + offset + 0.0005) % 0.1 < 0.0025, (when + offset) % 0.1
    # A read is the one of the latest tick before it; slow is read at each multiple of 0.3 s,
    # with fast (their ticks coincide). Slow alone only when a read of fast overran one of slow's
    # ticks (a busy machine): that tick is read at once, late, not dropped.
    previous: tuple[float, float, list[str]] | None = None
    for start, end, names in calls:
        if names == ["slow"]:
            assert previous is not None, calls
            before, after = ((t + offset) // 0.3 for t in previous[:2])
            assert after > before, (previous, start)  # a slow tick passed during that read
        else:
            tick = max(t for t in ticks if t <= start) + offset
            on_slow_tick = round(tick / 0.1) % 3 == 0
            assert names == (["fast", "slow"] if on_slow_tick else ["fast"]), (tick, names)
        previous = (start, end, names)
    assert {r.channel for r in readings} == {"fast", "slow"}


class SlowFastOnlyRead(RecordingDriver):
    """Its first read of "fast" alone (a tick "slow" does not share) takes 0.25 s: longer than
    the 0.2 s to the next tick of "slow", whichever of the two it is."""

    slowed_at: int | None = None  # how many reads came before it

    async def read(self, channels: Sequence[SimChannel]) -> list[Reading]:
        if [c.name for c in channels] == ["fast"] and self.slowed_at is None:
            self.slowed_at = len(self.calls)
            await asyncio.sleep(0.25)
        return await super().read(channels)


async def test_a_tick_passed_during_another_groups_read_is_read_late_not_dropped() -> None:
    """A one-hour channel must not lose its reading because a faster channel's read overran
    its tick: the passed tick is read at once (the reading's timestamp says when); only the
    overrunning group's own ticks are skipped and counted."""
    config = instrument("room", [("fast", 0.1), ("slow", 0.3)])
    clock = SystemClock()
    metrics = AgentMetrics()
    driver = SlowFastOnlyRead(config, clock)
    r = InstrumentRunner(config, driver, clock, [].extend, metrics, lambda *_: None)
    await run_until(
        lambda: driver.slowed_at is not None and len(driver.calls) >= driver.slowed_at + 2,
        "the slowed read and the one after it",
        r,
    )
    assert driver.slowed_at is not None
    # At once after the overrun, alone: at its next tick it would have been read with fast.
    assert driver.calls[driver.slowed_at + 1][2] == ["slow"], driver.calls
    assert metrics.overruns >= 2  # fast's ticks 0.1 and 0.2 s after the slowed one
    assert metrics.readings_skipped == metrics.overruns  # fast's only: one channel a tick


async def test_an_overrun_skips_ticks_and_counts_them() -> None:
    readings: list[Reading] = []
    metrics = AgentMetrics()
    r = runner(instrument("slow-reply", [("t", 0.1)], latency_s=0.25), readings, metrics)
    # Waited for by count, not for a time: a busy machine makes fewer reads in a second.
    await run_until(lambda: metrics.overruns >= 6, "six overruns", r)
    assert metrics.readings_skipped == metrics.overruns  # one channel
    starts = [c[0] for c in r.driver.calls]  # type: ignore[attr-defined]
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(starts))  # never queued back to back


async def test_a_hung_instrument_does_not_delay_a_healthy_one() -> None:
    healthy: list[Reading] = []
    sick: list[Reading] = []
    metrics = AgentMetrics()
    states: list[tuple[str, str | None]] = []
    steps = StepLog()  # of the host's clock (a paused virtual machine): not a delay
    ok = runner(instrument("ok", [("t", 0.1)]), healthy, clock=SystemClock(on_step=steps))
    hung = runner(
        instrument(
            "hung",
            [("t", 0.1)],
            timeout_s=1.0,
            faults={"hang": True},
            reconnect={"initial_s": 0.1, "max_s": 0.2},
        ),
        sick,
        metrics,
        states=states,
    )
    await run_until(
        lambda: len(healthy) >= 18 and metrics.read_timeouts >= 3,
        "18 healthy readings and 3 timeouts",
        ok,
        hung,
    )
    # The healthy one kept its schedule while the hung one waited out its 1 s timeouts: held
    # up by them, it would miss about ten ticks in a row each time. A busy machine may pause
    # the loop past a tick or two, which the runner skips and counts (an overrun): tolerated,
    # and told apart from the hung one's doing by the length of the run of missed ticks.
    stamps = [r.ts_ns for r in healthy]
    missed = missed_ticks(stamps, 100_000_000, steps.steps, tolerance=1_000_000)
    assert all(n < 5 for _before, _after, n in missed), missed
    assert sum(n for _before, _after, n in missed) <= ok.metrics.readings_skipped, missed
    assert sick and all(r.quality is Quality.BAD for r in sick)
    assert sick[0].reason == "no reply within 1 s"
    assert metrics.read_timeouts >= 3
    assert [s for s, _ in states].count("unavailable") == 1  # logged once, not every cycle


async def test_instruments_on_one_bus_never_overlap() -> None:
    lock = asyncio.Lock()
    runners = [
        runner(instrument(f"dev{i}", [("t", 0.1)], latency_s=0.03, bus="rs485-1"), [], lock=lock)
        for i in range(3)
    ]
    calls = [r.driver.calls for r in runners]  # type: ignore[attr-defined]
    await run_until(lambda: sum(map(len, calls)) >= 15, "15 reads", *runners)
    spans = sorted(c[:2] for device_calls in calls for c in device_calls)
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))


async def test_a_lost_instrument_is_reconnected_within_the_backoff_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every wait between attempts stays within the policy's cap, and the first attempt after
    the instrument is back succeeds. Judged by the waits the runner asks for, not by the wall
    clock, which a busy machine stretches."""
    waits: list[tuple[float, float]] = []  # (when asked, the delay)
    real_next_delay = BackoffTimer.next_delay

    def next_delay(self: BackoffTimer) -> float:
        delay = real_next_delay(self)
        waits.append((time.monotonic(), delay))
        return delay

    monkeypatch.setattr(BackoffTimer, "next_delay", next_delay)
    control = tmp_path / "faults.json"
    control.write_text(json.dumps({"disconnected": True}))
    states: list[tuple[str, str | None]] = []
    readings: list[Reading] = []
    metrics = AgentMetrics()
    config = instrument(
        "flaky",
        [("t", 0.1)],
        faults={"control_file": str(control)},
        reconnect={"initial_s": 0.1, "max_s": 0.4},
    )
    r = runner(config, readings, metrics, states=states)
    task = asyncio.create_task(r.run())
    await until(lambda: len(waits) >= 4, "four failed attempts")  # past the cap: 0.1, 0.2, 0.4
    assert states[0] == ("unavailable", "flaky: connection refused (simulated)")
    assert not readings
    control.write_text(json.dumps({"disconnected": False}))
    healed = time.monotonic()
    await until(lambda: readings, "reading again")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert all(delay <= 0.4 for _, delay in waits), waits  # the cap holds at every attempt
    # The attempt after the one already waiting succeeds (one more only if an attempt was
    # reading the fault file as it changed).
    assert sum(when > healed for when, _ in waits) <= 1, (healed, waits)
    assert states[-1] == ("connected", None)
    assert metrics.reconnects == 1


@pytest.mark.parametrize("hooks", [{"garbage_rate": 1.0}])
async def test_garbage_replies_become_bad_readings_with_the_raw_text(hooks: dict[str, Any]) -> None:
    readings: list[Reading] = []
    r = runner(instrument("noisy", [("t", 0.1)], faults=hooks), readings)
    await run_for(0.5, r)
    assert readings
    assert all(
        x.quality is Quality.BAD and x.reason and x.reason.startswith("unparseable reply")
        for x in readings
    )


async def test_shared_deadlines_time_out_only_the_late_read() -> None:
    """One timer serves every runner's read timeout: the late read sees TimeoutError (as under
    asyncio.timeout), a read that ended in time is never cancelled afterwards, and a
    cancellation from outside stays a cancellation."""
    loop = asyncio.get_running_loop()
    deadlines = shared_timers(loop)[1]

    async def read(seconds: float, timeout_s: float) -> str:
        task = asyncio.current_task()
        assert task is not None
        deadlines.arm(task, timeout_s)
        try:
            await asyncio.sleep(seconds)
        except BaseException as exc:
            if deadlines.settle(task, exc):
                return "timed out"
            raise
        deadlines.settle(task, None)
        await asyncio.sleep(0.15)  # past the deadline it had: not cancelled now
        return "read"

    late = asyncio.create_task(read(1.0, 0.05))
    quick = asyncio.create_task(read(0.01, 0.1))
    stopped = asyncio.create_task(read(1.0, 0.5))
    await asyncio.sleep(0.02)
    stopped.cancel()
    assert await late == "timed out"
    assert await quick == "read"
    with pytest.raises(asyncio.CancelledError):
        await stopped


async def test_shared_ticks_wake_each_waiter_at_its_tick_never_before() -> None:
    loop = asyncio.get_running_loop()
    ticks = shared_timers(loop)[0]
    due = loop.time() + 0.05
    woken: list[float] = []

    async def wait(when: float) -> None:
        await ticks.at(when)
        woken.append(loop.time() - when)

    cancelled = asyncio.create_task(wait(due))
    waiters = [asyncio.create_task(wait(due + k * 1e-6)) for k in range(5)]
    # "At its tick", whatever the load: a plain loop timer at the latest waiter's millisecond
    # fires in the same loop iteration as the ticks' timers (or a later one); every waiter runs
    # in the iteration after that, so all have woken before two more iterations have passed.
    woken_by_then: list[int] = []
    loop.call_at(
        math.ceil((due + 4e-6) * 1000) / 1000,
        lambda: loop.call_soon(lambda: loop.call_soon(lambda: woken_by_then.append(len(woken)))),
    )
    await asyncio.sleep(0)
    cancelled.cancel()  # cancels its own wait only
    await asyncio.gather(*waiters)
    await until(lambda: bool(woken_by_then), "the reference timer")
    assert woken_by_then == [5]
    assert all(late >= 0 for late in woken), woken  # never early


def test_the_timers_of_a_closed_loop_are_let_go() -> None:
    # Tools and tests run several loops in turn: each closed one must not stay alive in the
    # shared timers' table (they hold their loop, so weak keys never died).
    async def use() -> None:
        shared_timers(asyncio.get_running_loop())

    for _ in range(5):
        asyncio.run(use())
    asyncio.run(use())
    assert sum(1 for loop in scheduler._SHARED if loop.is_closed()) <= 1
