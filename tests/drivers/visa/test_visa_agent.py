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
from tests.support.clock_steps import StepLog, intervals


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
        timeout_s=0.25,
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
    async with running(runners):
        await asyncio.sleep(0.5)  # both connected and reading
        hung_sim.faults.hang = True
        mark = len(readings)
        await asyncio.sleep(2.0)
        during = readings[mark:]
        hung_sim.faults.hang = False
        mark = len(readings)
        await asyncio.sleep(1.5)
        after = readings[mark:]

    from_healthy = [r for r in during if r.instrument == "healthy"]
    assert len(from_healthy) >= 16  # 20 ticks of 0.1 s, a little slack for a busy machine
    assert all(r.quality is Quality.GOOD for r in from_healthy)
    assert all(r.channel == channels["healthy"] for r in from_healthy)
    gaps = intervals([r.ts_ns for r in from_healthy], steps.steps)
    assert max(gaps) < 0.35e9  # never stalled behind the hung counter

    from_hung = [r for r in during if r.instrument == "hung"]
    assert from_hung, "a hung instrument's missed reads are reported as bad readings"
    assert all(r.quality is Quality.BAD for r in from_hung)
    assert {r.reason for r in from_hung} <= {"no reply within 0.25 s"}
    assert metrics.read_timeouts >= 3
    assert ("hung", "unavailable") in states

    recovered = [r for r in after if r.instrument == "hung"]
    assert any(r.quality is Quality.GOOD for r in recovered)
