"""VISA instruments under the agent's instrument runner: schedules, fault isolation, recovery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from core.clock import SystemClock
from drivers.reading import Quality, Reading
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner
from tests.support.clock_steps import StepLog, missed_ticks
from tests.support.waiting import until


@contextlib.asynccontextmanager
async def running(runners: list[InstrumentRunner]) -> AsyncIterator[None]:
    """The runners' tasks for the duration of the block."""
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_hung_instrument_times_out_while_another_keeps_its_schedule(
    scpi_sim: Callable[..., Any],
    drivers: Callable[[VisaInstrument], VisaDriver],
    visa_config: Callable[..., VisaInstrument],
    clock: SystemClock,
) -> None:
    healthy_sim = await scpi_sim("longscale-dmm")
    hung_sim = await scpi_sim("frequency-counter")
    channels = {"healthy": "zener-voltage", "hung": "rb-frequency"}
    healthy = visa_config(
        healthy_sim.tcp_resource,
        "longscale-dmm",
        name="healthy",
        channels=[{"name": "zener-voltage", "measurement": "voltage_dc", "interval_s": 0.1}],
    )
    hung = visa_config(
        hung_sim.tcp_resource,
        "frequency-counter",
        name="hung",
        timeout_s=1.0,
        reconnect={"initial_s": 0.1, "max_s": 0.2},
        channels=[{"name": "rb-frequency", "measurement": "frequency", "interval_s": 0.1}],
    )
    readings: list[Reading] = []
    states: list[tuple[str, str]] = []
    metrics = AgentMetrics()
    steps = StepLog()  # of the host's clock (a paused virtual machine): not a stall
    clock.on_step = steps
    runners = [
        InstrumentRunner(
            config,
            drivers(config),
            clock,
            readings.extend,
            metrics,
            lambda name, state, _reason: states.append((name, state)),
        )
        for config in (healthy, hung)
    ]
    healthy_runner = runners[0]
    async with running(runners):
        await until(lambda: {r.instrument for r in readings} == {"healthy", "hung"}, "both reading")
        hung_sim.faults.hang = True
        mark = len(readings)
        # Waited for by count, not for a time: a busy machine reads fewer ticks in a second.
        await until(
            lambda: (
                sum(r.instrument == "healthy" for r in readings[mark:]) >= 20
                and metrics.read_timeouts >= 2
                and ("hung", "unavailable") in states
            ),
            "20 healthy readings, 2 timeouts of the hung one and its state",
        )
        during = readings[mark:]
        hung_sim.faults.hang = False
        mark = len(readings)
        await until(
            lambda: any(
                r.instrument == "hung" and r.quality is Quality.GOOD for r in readings[mark:]
            ),
            "the hung one reading again",
        )
        after = readings[mark:]

    from_healthy = [r for r in during if r.instrument == "healthy"]
    assert all(r.quality is Quality.GOOD for r in from_healthy)
    assert all(r.channel == channels["healthy"] for r in from_healthy)
    # Never stalled behind the hung counter's 1 s timeouts (held up by them, it would miss about
    # ten ticks in a row each time). A busy machine may pause the loop past a tick or two, which
    # the runner skips and counts: tolerated, and told apart by the length of the run.
    stamps = [r.ts_ns for r in from_healthy]
    missed = missed_ticks(stamps, 100_000_000, steps.steps, tolerance=1_000_000)
    assert all(n < 5 for _before, _after, n in missed), missed
    assert sum(n for _before, _after, n in missed) <= healthy_runner.metrics.readings_skipped

    from_hung = [r for r in during if r.instrument == "hung"]
    assert from_hung, "a hung instrument's missed reads are reported as bad readings"
    assert all(r.quality is Quality.BAD for r in from_hung)
    assert {r.reason for r in from_hung} <= {"no reply within 1 s"}

    recovered = [r for r in after if r.instrument == "hung"]
    assert any(r.quality is Quality.GOOD for r in recovered)
