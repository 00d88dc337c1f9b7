"""The standalone simulators of ``etalon sim`` (modbus-tcp, modbus-rtu-over-tcp, modbus-rtu,
serial-ascii): each serves until stopped, and a driver reads from it."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from core.clock import SystemClock
from core.errors import DriverTimeout
from drivers.modbus.config import ModbusInstrument
from drivers.reading import Quality
from drivers.registry import create_driver
from drivers.serial_ascii.config import SerialAsciiInstrument
from drivers.sim.catalog import load_all
from tests.support.services import free_port

SIMULATORS = load_all()


async def serve(kind: str, argv: list[str]) -> tuple[asyncio.Event, asyncio.Task[None]]:
    entry = SIMULATORS[kind]
    parser = argparse.ArgumentParser()
    entry.add_arguments(parser)
    stop = asyncio.Event()
    task = asyncio.create_task(entry.run(parser.parse_args(argv), stop))
    await asyncio.sleep(0.1)
    return stop, task


def modbus(transport: dict[str, Any]) -> ModbusInstrument:
    return ModbusInstrument.model_validate(
        {
            "name": "thp",
            "protocol": "modbus",
            "transport": transport,
            "device_id": 1,
            "timeout_s": 1,
            "channels": [
                {"name": "t", "table": "input", "address": 10, "type": "float32", "unit": "°C"}
            ],
        }
    )


@pytest.mark.parametrize("kind", ["modbus-tcp", "modbus-rtu-over-tcp", "modbus-rtu"])
async def test_modbus_simulators_serve_until_stopped(kind: str, tmp_path: Path) -> None:
    control = tmp_path / "faults.json"
    control.write_text("{}")
    if kind == "modbus-rtu":
        link = tmp_path / "ttyRTU"
        argv = ["--map", "lab-bus", "--link", str(link), "--faults", str(control)]
        transport: dict[str, Any] = {"kind": "rtu", "port": str(link), "parity": "N"}
    else:
        port = free_port()
        argv = ["--port", str(port), "--faults", str(control)]
        wire = "tcp" if kind == "modbus-tcp" else "rtu_over_tcp"
        transport = {"kind": wire, "host": "127.0.0.1", "port": port}
    stop, task = await serve(kind, argv)
    config = modbus(transport)
    driver = create_driver(config, SystemClock())
    try:
        await driver.connect()
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
        # The control file switches a fault on in the running simulator.
        control.write_text(json.dumps({"silent_device_ids": [1]}))
        await asyncio.sleep(0.02)
        config = config.model_copy(update={"request_timeout_s": 0.2})
        with pytest.raises(DriverTimeout):
            await create_driver_read(config)
    finally:
        await driver.close()
        stop.set()
        await task
    if kind == "modbus-rtu":
        assert not link.exists()


async def create_driver_read(config: ModbusInstrument) -> None:
    driver = create_driver(config, SystemClock())
    try:
        await driver.connect()
        await driver.read(config.channels)
    finally:
        await driver.close()


async def test_serial_ascii_simulator_serves_until_stopped(tmp_path: Path) -> None:
    link = tmp_path / "ttyTHP"
    stop, task = await serve("serial-ascii", ["--kind", "thp", "--link", str(link)])
    config = SerialAsciiInstrument.model_validate(
        {
            "name": "thp",
            "protocol": "serial_ascii",
            "transport": {"kind": "serial", "port": str(link)},
            "command": "SEND",
            "pattern": r"T=\s*(?P<t>[-+0-9.]+)",
            "timeout_s": 1,
            "channels": [{"name": "t", "unit": "°C"}],
        }
    )
    driver = create_driver(config, SystemClock())
    try:
        await driver.connect()
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()
        stop.set()
        await task
