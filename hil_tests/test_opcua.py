"""OPC UA scenarios: the bench's servers (ETALON_BENCH) or the simulated OPC UA server.

    ETALON_BENCH=bench.yaml pytest hil_tests/test_opcua.py -v -s

Secure instruments need their certificate_dir and trusted_server_certificates set up as for the
agent (docs/opcua.md); against the simulator, the simulate hook makes both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from core.clock import SystemClock
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.reading import Quality, Reading
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner
from hil_tests.bench_select import bench_instruments, reachable

CONFIGS, REAL = bench_instruments("opcua")
# One server per instrument for the whole module, as on a real bench (asyncua's init costs
# seconds of CPU): every scenario opens a client of its own against it, in the module's loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")
CLOCK_SKEW_NS = 2_000_000_000
"""How far in the future a server's source timestamp may be (its clock against ours)."""


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=CONFIGS, ids=[c.name for c in CONFIGS]
)
async def instrument(request: pytest.FixtureRequest) -> AsyncIterator[OpcUaInstrument]:
    """One bench server, or the simulator (shared by the module's scenarios)."""
    async with reachable(request.param, REAL) as config:
        yield config


@pytest_asyncio.fixture(loop_scope="module")
async def driver(instrument: OpcUaInstrument) -> AsyncIterator[OpcUaDriver]:
    """A connected driver (secure channel, nodes resolved, subscription created)."""
    connected = OpcUaDriver(instrument, SystemClock())
    await connected.connect()
    try:
        yield connected
    finally:
        await connected.close()


def _good(readings: list[Reading], now_ns: int) -> None:
    bad = [f"{r.channel}: {r.reason}" for r in readings if r.quality is not Quality.GOOD]
    assert not bad, bad
    for reading in readings:
        assert reading.unit, (
            f"{reading.channel}: no unit (set one, or give the node EngineeringUnits)"
        )
        assert reading.ts_ns <= now_ns + CLOCK_SKEW_NS, f"{reading.channel}: stamped in the future"


async def test_identifies_itself(driver: OpcUaDriver, instrument: OpcUaInstrument) -> None:
    identity = driver.describe()
    assert identity["endpoint"] == instrument.endpoint
    assert identity["security"].endswith(instrument.security.mode)
    print(f"\n{instrument.name}: {identity}")


async def test_every_channel_polls_good_with_units(
    driver: OpcUaDriver, instrument: OpcUaInstrument
) -> None:
    channels = list(instrument.channels)
    readings = await driver.read(channels)
    assert [r.channel for r in readings] == [c.name for c in channels]
    _good(readings, driver.clock.now_ns())


async def test_subscribed_channels_deliver(
    driver: OpcUaDriver, instrument: OpcUaInstrument
) -> None:
    subscribed = [c for c in instrument.channels if c.mode == "subscribe"]
    if not subscribed:
        pytest.skip(f"{instrument.name} has no subscribed channel")
    wait_s = 2.0 + 3 * max(c.interval_s for c in subscribed)
    readings: list[Reading] = []

    async def consume() -> None:
        async for batch in driver.stream():
            readings.extend(batch)
            if {r.channel for r in readings} >= {c.name for c in subscribed}:
                return

    await asyncio.wait_for(consume(), wait_s)
    _good(readings, driver.clock.now_ns())


async def test_reconnects_after_close(driver: OpcUaDriver, instrument: OpcUaInstrument) -> None:
    await driver.close()
    await driver.connect()
    _good(await driver.read(list(instrument.channels)), driver.clock.now_ns())


async def test_runs_under_the_agent(instrument: OpcUaInstrument) -> None:
    # At most a second between readings, so the scenario takes seconds, not minutes.
    quick = [
        c.model_copy(update={"interval_s": min(c.interval_s, 1.0)}) for c in instrument.channels
    ]
    instrument = instrument.model_copy(update={"channels": quick})
    readings: list[Reading] = []
    states: list[str] = []
    runner = InstrumentRunner(
        instrument,
        OpcUaDriver(instrument, SystemClock()),
        SystemClock(),
        readings.extend,
        AgentMetrics(),
        lambda _name, state, _reason: states.append(state),
    )
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(2.0 + 2 * max(c.interval_s for c in instrument.channels))
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert states == ["connected"]
    assert {r.channel for r in readings} == {c.name for c in instrument.channels}
    _good(readings, SystemClock().now_ns())
