"""An OPC UA instrument under the agent's instrument runner: a server restart is survived."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.clock import SystemClock
from core.errors import NotConnected
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.reading import Quality, Reading
from drivers.sim.opcua_server import OpcUaSimConfig, OpcUaSimulator
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plain_server() -> AsyncIterator[OpcUaSimulator]:
    """A server of this module only (its restart must not disturb the session's server)."""
    simulator = OpcUaSimulator(OpcUaSimConfig(), SystemClock())
    await simulator.start()
    yield simulator
    await simulator.stop()


def _config(endpoint: str, **overrides: object) -> OpcUaInstrument:
    data: dict[str, object] = {
        "name": "chamber",
        "protocol": "opcua",
        "endpoint": endpoint,
        "namespace": "urn:etalon:sim",
        "timeout_s": 1.0,
        "connect_timeout_s": 5.0,
        "reconnect": {"initial_s": 0.2, "max_s": 0.5},
        "channels": [
            {
                "name": "zener",
                "node": "ns=2;s=ReferenceStandards.Zener10V.Voltage",
                "mode": "subscribe",
                "interval_s": 0.1,
            },
            {
                "name": "temperature",
                "browse_path": ["ClimateChamber", "Temperature"],
                "interval_s": 0.2,
            },
        ],
    }
    data.update(overrides)
    return OpcUaInstrument.model_validate(data)


async def test_server_restart_is_survived_with_the_subscription_restored(
    plain_server: OpcUaSimulator,
) -> None:
    simulator = plain_server
    clock = simulator.clock
    config = _config(simulator.endpoint)
    driver = OpcUaDriver(config, clock)
    readings: list[Reading] = []
    states: list[str] = []
    runner = InstrumentRunner(
        config,
        driver,
        clock,
        readings.extend,
        AgentMetrics(),
        lambda _name, state, _reason: states.append(state),
    )
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(1.0)
        await simulator.restart(downtime_s=0.5)
        await asyncio.sleep(2.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert states[:1] == ["connected"]
    assert "unavailable" in states
    assert states[-1] == "connected", "reconnected after the restart"

    assert simulator.last_outage is not None
    down_at, up_at = simulator.last_outage
    zener = [r for r in readings if r.channel == "zener"]
    assert {r.unit for r in zener} == {"V"}, "the unit comes from the node's EngineeringUnits"
    gap = [r for r in zener if r.quality is Quality.BAD]
    assert len(gap) == 1, "the outage is one gap marker, not a reading per missed tick"
    assert gap[0].reason is not None
    assert "no values until reconnected" in gap[0].reason
    good = [r for r in zener if r.quality is Quality.GOOD]
    before = [r for r in good if r.ts_ns < down_at]
    after = [r for r in good if r.ts_ns >= up_at]
    assert len(before) >= 5
    assert len(after) >= 10, "the subscription was re-created"
    assert not [r for r in good if down_at < r.ts_ns < up_at], "nothing invented for the outage"
    twice = [key for key, n in Counter((r.channel, r.ts_ns) for r in good).items() if n > 1]
    assert not twice, "no value delivered twice"

    polled = [r for r in readings if r.channel == "temperature" and r.quality is Quality.GOOD]
    assert any(r.ts_ns >= up_at for r in polled), "polling resumed too"


async def test_a_node_polled_faster_than_it_changes_is_published_once_and_counted(
    plain_server: OpcUaSimulator,
) -> None:
    """What the agent counts as read is what a store keeps: a repeated sample is counted as
    repeated, not read."""
    simulator = plain_server
    node = await simulator.add_variable("Vendor.Constant", None, 7.25)
    config = _config(
        simulator.endpoint,
        channels=[
            {"name": "constant", "node": node, "unit": "V", "interval_s": 0.05},
            {"name": "temperature", "browse_path": ["ClimateChamber", "Temperature"]},
        ],
    )
    readings: list[Reading] = []
    metrics = AgentMetrics()
    runner = InstrumentRunner(
        config,
        OpcUaDriver(config, simulator.clock),
        simulator.clock,
        readings.extend,
        metrics,
        lambda _name, _state, _reason: None,
    )
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(10):
            while metrics.readings_repeated < 5:  # noqa: ASYNC110 - counters have no event
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await simulator.remove_node("Vendor.Constant")
    constant = [r for r in readings if r.channel == "constant"]
    assert [(r.quality, r.value) for r in constant] == [(Quality.GOOD, 7.25)]
    assert metrics.readings_read == len(readings)
    twice = [key for key, n in Counter((r.channel, r.ts_ns) for r in readings).items() if n > 1]
    assert not twice, "no sample published twice"


async def test_a_server_without_the_wanted_security_says_what_it_offers(
    plain_server: OpcUaSimulator, tmp_path: Path
) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    config = _config(
        plain_server.endpoint,
        security={
            "mode": "Sign",
            "certificate_dir": str(tmp_path / "agent"),
            "trusted_server_certificates": [str(trusted)],
        },
    )
    driver = OpcUaDriver(config, SystemClock())
    with pytest.raises(NotConnected) as caught:
        await driver.connect()
    await driver.close()
    assert caught.value.reason == (
        "the server offers no Basic256Sha256/Sign endpoint (it offers None/None)"
    )
