"""The SCPI simulator as a controller sees it: raw bytes on a real TCP socket."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.sim.scpi import ScpiSimulator, garble
from drivers.sim.scpi_parser import ScpiError, channel_list, parse_message, split_outside


class Controller:
    """A bare SCPI controller on a socket: one line out, one line back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, message: str) -> None:
        self.writer.write(message.encode() + b"\n")
        await self.writer.drain()

    async def ask(self, message: str, wait_s: float = 2.0) -> str:
        await self.send(message)
        line = await asyncio.wait_for(self.reader.readline(), wait_s)
        return line.decode().rstrip("\n")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect(sim: ScpiSimulator) -> Controller:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    return Controller(reader, writer)


# -- parser ----------------------------------------------------------------------------------


def test_message_splits_at_semicolons_outside_channel_lists_and_quotes() -> None:
    assert split_outside('FETC? (@1,2);FUNC "VOLT;DC"', ";") == ["FETC? (@1,2)", 'FUNC "VOLT;DC"']


def test_compound_commands_continue_the_previous_path() -> None:
    commands = parse_message("CONF:VOLT:DC 10;NPLC 100;:READ?;*OPC?")
    tokens = [c.tokens for c in commands if not isinstance(c, ScpiError)]
    assert tokens == [("CONF", "VOLT", "DC"), ("CONF", "VOLT", "NPLC"), ("READ",), ("*OPC",)]


def test_channel_lists() -> None:
    assert channel_list("(@1,3)") == [1, 3]
    assert channel_list("(@1:3)") == [1, 2, 3]
    with pytest.raises(ScpiError):
        channel_list("1,2")


def test_garble_makes_a_number_unparseable() -> None:
    garbled = garble("+1.00000050E+01", random.Random(1))
    with pytest.raises(ValueError, match="could not convert"):
        float(garbled)


# -- the instrument's language ---------------------------------------------------------------


async def test_long_and_short_forms_optional_nodes_and_suffixes(
    scpi_sim: Callable[..., Any],
) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        await controller.send("SENSe1:VOLTage:DC:NPLCycles 100")
        assert float(await controller.ask("volt:nplc?")) == 100
        await controller.send(":configure:fresistance 1E4")
        assert await controller.ask("CONF?") == '"FRES +1.00000E+04"'
        assert await controller.ask("SYST:ERR?") == '+0,"No error"'
    finally:
        await controller.close()


async def test_error_queue_is_first_in_first_out_and_cleared_by_cls(
    scpi_sim: Callable[..., Any],
) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        await controller.send("BOGUS:HEADER 1")
        await controller.send("VOLT:DC:NPLC 7")  # not one of the instrument's NPLC values
        await controller.send("CONF:VOLT:DC 5000")  # beyond the 1000 V range
        assert await controller.ask("*STB?") == "4"  # error/event queue not empty
        assert await controller.ask("SYST:ERR?") == '-113,"Undefined header"'
        assert await controller.ask("SYSTem:ERRor:NEXT?") == '-222,"Data out of range"'
        assert int(await controller.ask("*ESR?")) & 32  # command error bit
        await controller.send("*CLS")
        assert await controller.ask("SYST:ERR?") == '+0,"No error"'
        assert await controller.ask("*STB?") == "0"
    finally:
        await controller.close()


async def test_error_queue_overflow_keeps_the_oldest_and_says_so(
    scpi_sim: Callable[..., Any],
) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        for _ in range(25):
            await controller.send("NOPE")
        entries = [await controller.ask("SYST:ERR?") for _ in range(21)]
        assert entries[0] == '-113,"Undefined header"'
        assert entries[19] == '-350,"Queue overflow"'
        assert entries[20] == '+0,"No error"'
    finally:
        await controller.close()


async def test_overload_reads_as_9_9e37(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        assert float(await controller.ask("MEAS:VOLT:DC? 1")) == pytest.approx(9.9e37)
        assert float(await controller.ask("MEAS:VOLT:DC? 10")) == pytest.approx(10, rel=1e-5)
    finally:
        await controller.close()


async def test_values_come_from_the_physical_model(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("longscale-dmm")
    controller = await connect(sim)
    try:
        value = float(await controller.ask("READ?"))
        truth = sim.instrument.inputs["dcv"].true_value("voltage", sim.clock.now_ns())
        assert value == pytest.approx(truth, abs=2e-6)  # 0.2 µV noise, 10 digits
        assert value != 10.0  # the Zener's offset and drift are there
    finally:
        await controller.close()


async def test_thermometer_answers_in_the_unit_it_is_set_to(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("thermometer-readout")
    controller = await connect(sim)
    try:
        celsius = await controller.ask("MEAS:TEMP? (@1)")
        assert celsius.endswith(" C")
        await controller.send("UNIT:TEMP K")
        kelvin = await controller.ask("MEAS:TEMP? (@1)")
        assert kelvin.endswith(" K")
        assert float(kelvin.split()[0]) == pytest.approx(
            float(celsius.split()[0]) + 273.15, abs=0.01
        )
        assert len((await controller.ask("FETC? (@1,2)")).split(",")) == 2
        await controller.send("MEAS:TEMP? (@9)")
        assert await controller.ask("SYST:ERR?") == '-224,"Illegal parameter value"'
    finally:
        await controller.close()


async def test_counter_gate_time_averages_white_noise_down(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("frequency-counter")
    controller = await connect(sim)
    try:

        async def spread(gate: str) -> float:
            await controller.send(f"FREQ:GATE:TIME {gate};:SAMP:COUN 200")
            values = [float(v) for v in (await controller.ask("READ?")).split(",")]
            mean = sum(values) / len(values)
            return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5

        short, long = await spread("0.01"), await spread("1")
        assert short / long == pytest.approx(10, rel=0.35)  # white FM: σ ∝ 1/√gate
    finally:
        await controller.close()


# -- fault hooks -----------------------------------------------------------------------------


async def test_hang_swallows_queries_but_not_commands(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        sim.faults.hang = True
        with pytest.raises(TimeoutError):
            await controller.ask("READ?", wait_s=0.3)
        sim.faults.hang = False
        assert (await controller.ask("*IDN?")).startswith("ETALON-SIM,DMM6500-SIM")
    finally:
        await controller.close()


async def test_slow_reply(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("generic-dmm", faults={"delay_s": 0.3})
    controller = await connect(sim)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await controller.ask("*IDN?")
        assert loop.time() - start >= 0.29
    finally:
        await controller.close()


async def test_garbled_numbers(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("generic-dmm", faults={"garbage_rate": 1.0})
    controller = await connect(sim)
    try:
        with pytest.raises(ValueError, match="could not convert"):
            float(await controller.ask("READ?"))
    finally:
        await controller.close()


async def test_closed_socket_and_refused_connections(scpi_sim: Callable[..., Any]) -> None:
    sim = await scpi_sim("generic-dmm")
    controller = await connect(sim)
    try:
        sim.drop_connections()
        assert await asyncio.wait_for(controller.reader.read(), 2) == b""  # EOF: closed
    finally:
        await controller.close()
    sim.faults.disconnected = True
    controller = await connect(sim)
    try:
        assert await asyncio.wait_for(controller.reader.read(), 2) == b""
    finally:
        await controller.close()


async def test_control_file_switches_faults_live(
    scpi_sim: Callable[..., Any], tmp_path: Path
) -> None:
    control = tmp_path / "faults.json"
    control.write_text("{}")
    sim = await scpi_sim("generic-dmm", faults={"control_file": str(control)})
    controller = await connect(sim)
    try:
        assert await controller.ask("*OPC?") == "1"
        control.write_text(json.dumps({"hang": True}))
        # File timestamps tick in jiffies: make sure the rewrite is seen as a change.
        mtime = control.stat().st_mtime_ns
        os.utime(control, ns=(mtime, mtime + 50_000_000))
        with pytest.raises(TimeoutError):
            await controller.ask("*OPC?", wait_s=0.3)
    finally:
        await controller.close()
