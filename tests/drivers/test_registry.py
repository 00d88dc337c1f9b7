"""The registry meta-test, once for every driver: each protocol's example config in config/
loads, and every instrument of that protocol in it connects to its simulator through the
registry's ``simulate`` hook, describes itself, and reads one good reading with a unit per
channel (what ``etalon demo`` relies on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.clock import SystemClock
from core.config_loader import load_config
from drivers.registry import DRIVERS, create_driver
from edge_agent.config import AgentConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("protocol", sorted(DRIVERS))
def test_every_registered_driver_reads_its_example_from_its_simulator(protocol: str) -> None:
    """The registry meta-test: each protocol's example config loads, and every instrument of that
    protocol in it reads from its simulator, one good reading per channel."""
    entry = DRIVERS[protocol]
    example = REPO / entry.example_config
    config = load_config(example, AgentConfig)
    instruments = [i for i in config.instruments if i.protocol == protocol]
    assert instruments, f"{example} has no {protocol} instrument"

    async def read_all() -> None:
        for instrument in instruments:
            async with entry.simulate(instrument) as simulated:
                driver = create_driver(simulated, SystemClock())
                await asyncio.wait_for(driver.connect(), simulated.connect_timeout_s)
                try:
                    assert driver.describe()
                    channels = list(simulated.channels)
                    readings = await asyncio.wait_for(driver.read(channels), simulated.timeout_s)
                finally:
                    await driver.close()
                assert [r.channel for r in readings] == [c.name for c in channels]
                bad = [r for r in readings if r.quality != "good"]
                assert not bad, bad
                assert all(r.unit for r in readings)

    asyncio.run(read_all())
