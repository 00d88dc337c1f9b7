"""The example configs of the VISA and OPC UA drivers load and read from their simulators
through the registry's ``simulate`` hooks (what ``etalon demo`` and the meta-test do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import SystemClock
from core.config_loader import load_config
from drivers.reading import Quality
from drivers.registry import DRIVERS, create_driver
from edge_agent.config import AgentConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("protocol", ["visa", "opcua"])
async def test_example_config_reads_from_the_simulator(protocol: str) -> None:
    entry = DRIVERS[protocol]
    config = load_config(REPO / entry.example_config, AgentConfig)
    instruments = [i for i in config.instruments if getattr(i, "protocol") == protocol]  # noqa: B009
    assert instruments
    for instrument in instruments:
        async with entry.simulate(instrument) as simulated:
            driver = create_driver(simulated, SystemClock())
            try:
                await driver.connect()
                assert driver.describe()
                channels = list(simulated.channels)
                readings = await driver.read(channels)
            finally:
                await driver.close()
        assert [r.channel for r in readings] == [c.name for c in channels]
        bad = [(r.channel, r.reason) for r in readings if r.quality is not Quality.GOOD]
        assert not bad, f"{instrument.name}: {bad}"
        assert all(r.unit for r in readings)
