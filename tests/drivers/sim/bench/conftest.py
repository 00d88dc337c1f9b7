"""Fixtures of the bench tests: a simulated bench on a manual clock (the truth is known exactly at
every instant), drivers of every instrument on it, and a raw SCPI client for scripted exchanges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.clock import ManualClock
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.sim.bench import BenchConfig, BenchSimulator
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver


class RawScpi:
    """A bare SCPI client on a TCP socket: what goes out and comes back, byte for byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawScpi:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, message: str) -> None:
        self.writer.write(message.encode() + b"\n")
        await self.writer.drain()

    async def command(self, message: str) -> None:
        """Send a command and wait until the instrument has carried it out (``*OPC?``)."""
        assert await self.ask(f"{message};*OPC?") == "1"

    async def ask(self, message: str, timeout_s: float = 2.0) -> str:
        await self.send(message)
        async with asyncio.timeout(timeout_s):
            line = await self.reader.readline()
        return line.decode().rstrip("\n")

    async def errors(self) -> list[str]:
        """Drain the error queue."""
        entries = []
        while (entry := await self.ask("SYST:ERR?")) != '+0,"No error"':
            entries.append(entry)
        return entries

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Bench:
    """A running bench, its clock, and connected drivers of its instruments."""

    sim: BenchSimulator
    clock: ManualClock
    calibrator: VisaDriver
    reference: VisaDriver
    uut: VisaDriver
    transmitter: ModbusDriver
    control: RawScpi

    def settle(self, taus: float = 30) -> None:
        """Let the output settle (the manual clock moves on)."""
        self.clock.advance(taus * self.sim.config.calibrator.physics.tau_s)


async def start_bench(config: BenchConfig | None = None) -> tuple[Bench, list[Any]]:
    clock = ManualClock()
    sim = BenchSimulator(config, clock)
    await sim.start()
    configs = {c["name"]: c for c in sim.agent_instruments()}
    for name in ("reference", "uut-dmm"):
        configs[name]["channels"].append({"name": f"{name}-acv", "measurement": "voltage_ac"})
    visa = {
        name: VisaDriver(VisaInstrument.model_validate(configs[name] | {"timeout_s": 1.0}), clock)
        for name in ("calibrator", "reference", "uut-dmm")
    }
    xmtr = ModbusDriver(
        ModbusInstrument.model_validate(configs["uut-xmtr"] | {"request_timeout_s": 0.5}), clock
    )
    for driver in (*visa.values(), xmtr):
        await driver.connect()
    control = await RawScpi.open(sim.addresses()["control"]["port"])
    bench = Bench(sim, clock, visa["calibrator"], visa["reference"], visa["uut-dmm"], xmtr, control)
    return bench, [*visa.values(), xmtr]


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    """The default bench (reference 8½ digits, UUT DMM 6½ digits, a transmitter)."""
    started, drivers = await start_bench()
    yield started
    await started.control.close()
    for driver in drivers:
        await driver.close()
    await started.sim.stop()
