"""The standalone simulators of ``etalon sim`` (modbus-tcp, modbus-rtu-over-tcp, modbus-rtu,
serial-ascii): each serves until stopped, and a driver reads from it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
    """Start the simulator; return once it takes connections (its port listens, its pty link
    exists): a fixed pause raced the simulator's start on a loaded machine."""
    entry = SIMULATORS[kind]
    parser = argparse.ArgumentParser()
    entry.add_arguments(parser)
    args = parser.parse_args(argv)
    stop = asyncio.Event()
    task = asyncio.create_task(entry.run(args, stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not task.done() and loop.time() < deadline:
        if await _ready(args):
            return stop, task
        await asyncio.sleep(0.02)
    await task  # raises what stopped it
    raise AssertionError(f"{kind} did not start within 20 s")


def _exists(path: str) -> bool:
    return os.path.exists(path)


async def _ready(args: argparse.Namespace) -> bool:
    link = getattr(args, "link", None)
    if link is not None:
        return _exists(link)
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


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
