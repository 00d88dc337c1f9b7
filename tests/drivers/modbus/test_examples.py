"""Every Modbus and serial ASCII example in config/ loads, and reads correct values from its
simulator over real sockets and pseudo-terminals."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import SystemClock
from core.config_loader import load_config
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.reading import Quality, Reading
from drivers.registry import DRIVERS, create_driver
from drivers.serial_ascii.config import SerialAsciiInstrument
from drivers.sim.modbus_server import ModbusSimServer, map_for_instrument
from drivers.sim.models import ResistorParams, RoomParams, build_model
from edge_agent.config import AgentConfig
from tests.drivers.modbus.truth import TOLERANCE, check_modbus

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(
    p.name
    for pattern in ("modbus-*.yaml", "serial-ascii-*.yaml")
    for p in (ROOT / "config").glob(pattern)
)


def test_the_examples_are_there() -> None:
    assert EXAMPLES == [
        "modbus-rtu-over-tcp.yaml",
        "modbus-rtu.yaml",
        "modbus-tcp.yaml",
        "serial-ascii-stream.yaml",
        "serial-ascii-thp.yaml",
    ]
    for protocol in ("modbus", "serial_ascii"):
        assert (ROOT / DRIVERS[protocol].example_config).is_file()


def check_serial(config: SerialAsciiInstrument, readings: list[Reading]) -> None:
    model = build_model(RoomParams() if config.command else ResistorParams())
    quantity = {"bath-temperature": "temperature"}
    for channel, reading in zip(config.channels, readings, strict=True):
        assert reading.quality is Quality.GOOD, reading
        truth = model.true_value(quantity.get(channel.name, channel.name), reading.ts_ns)
        assert isinstance(reading.value, float)
        assert abs(reading.value - truth) <= TOLERANCE[channel.unit], (channel.name, truth)


@pytest.mark.parametrize("example", EXAMPLES)
async def test_example_reads_correct_values_from_its_simulator(example: str) -> None:
    agent = load_config(ROOT / "config" / example, AgentConfig)
    clock = SystemClock()
    for instrument in agent.instruments:
        entry = DRIVERS[instrument.protocol]
        async with entry.simulate(instrument) as simulated:
            assert simulated.channels == instrument.channels
            driver = create_driver(simulated, clock)
            try:
                await driver.connect()
                readings = await driver.read(simulated.channels)
            finally:
                await driver.close()
        if isinstance(simulated, ModbusInstrument):
            check_modbus(simulated, readings)
        else:
            assert isinstance(simulated, SerialAsciiInstrument)
            check_serial(simulated, readings)


async def test_rtu_example_devices_share_one_line(tmp_path: Path) -> None:
    """Both devices of the RTU example on one simulated line, as on the real RS-485 bus."""
    agent = load_config(ROOT / "config" / "modbus-rtu.yaml", AgentConfig)
    instruments = [i for i in agent.instruments if isinstance(i, ModbusInstrument)]
    assert len({i.bus for i in instruments}) == 1
    server = ModbusSimServer(map_for_instrument(instruments[0]), medium="pty", framing="rtu")
    async with server:
        drivers = []
        for instrument in instruments:
            data = instrument.model_dump()
            data["transport"]["port"] = server.pty_path
            data["bus"] = None
            config = ModbusInstrument.model_validate(data)
            driver = ModbusDriver(config, SystemClock())
            await driver.connect()
            drivers.append((config, driver))
        try:
            for config, driver in drivers:
                check_modbus(config, await driver.read(config.channels))
        finally:
            for _, driver in drivers:
                await driver.close()
