"""The serial ASCII driver against its simulators over pseudo-terminals and TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from core.clock import SystemClock
from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.reading import Quality
from drivers.serial_ascii.config import SerialAsciiInstrument
from drivers.serial_ascii.driver import SerialAsciiDriver
from drivers.sim.models import ResistorParams, RoomParams, build_model
from drivers.sim.serial_sim import SerialSimServer

THP_PATTERN = (
    r"T=\s*(?P<temperature>[-+0-9.]+)\s*'C\s+RH=\s*(?P<humidity>[-+0-9.]+)\s*%RH"
    r"\s+P=\s*(?P<pressure>[-+0-9.]+)\s*hPa"
)
THP_CHANNELS = [
    {"name": "temperature", "unit": "°C"},
    {"name": "humidity", "unit": "%rh"},
    {"name": "pressure", "unit": "hPa"},
]
TOLERANCE = {"temperature": 0.13, "humidity": 1.9, "pressure": 0.25}


def transport_of(server: SerialSimServer) -> dict[str, Any]:
    if server.medium == "pty":
        return {"kind": "serial", "port": server.pty_path}
    return {"kind": "tcp", "host": server.host, "port": server.port}


def thp_config(server: SerialSimServer, **extra: Any) -> SerialAsciiInstrument:
    return SerialAsciiInstrument.model_validate(
        {
            "name": "thp",
            "protocol": "serial_ascii",
            "transport": transport_of(server),
            "command": "SEND",
            "pattern": THP_PATTERN,
            "timeout_s": 0.5,
            "channels": THP_CHANNELS,
        }
        | extra
    )


@pytest.fixture(params=["pty", "tcp"])
async def thp(request: pytest.FixtureRequest) -> AsyncIterator[SerialSimServer]:
    async with SerialSimServer("thp", medium=request.param) as server:
        yield server


@pytest.fixture
async def thp_driver(thp: SerialSimServer) -> AsyncIterator[SerialAsciiDriver]:
    driver = SerialAsciiDriver(thp_config(thp), SystemClock())
    await driver.connect()
    yield driver
    await driver.close()


async def test_thp_values_match_the_room_model(
    thp: SerialSimServer, thp_driver: SerialAsciiDriver
) -> None:
    room = build_model(RoomParams())
    for _ in range(5):
        readings = await thp_driver.read(thp_driver.config.channels)
        for reading in readings:
            assert reading.quality is Quality.GOOD
            assert isinstance(reading.value, float)
            truth = room.true_value(reading.channel, reading.ts_ns)
            assert abs(reading.value - truth) <= TOLERANCE[reading.channel]
    assert thp.instrument.lines_sent == 5


async def test_echo_is_skipped(thp: SerialSimServer, thp_driver: SerialAsciiDriver) -> None:
    thp.faults.echo = True
    readings = await thp_driver.read(thp_driver.config.channels)
    assert all(r.quality is Quality.GOOD for r in readings)


async def test_garbage_line_is_bad_with_the_raw_text(
    thp: SerialSimServer, thp_driver: SerialAsciiDriver
) -> None:
    thp.faults.garbage_rate = 1.0
    readings = await thp_driver.read(thp_driver.config.channels)
    assert all(r.quality is Quality.BAD for r in readings)
    assert all((r.reason or "").startswith("reply does not match the pattern: '") for r in readings)
    thp.faults.garbage_rate = 0.0
    readings = await thp_driver.read(thp_driver.config.channels)
    assert all(r.quality is Quality.GOOD for r in readings)


async def test_partial_line_then_silence_is_a_protocol_error(
    thp: SerialSimServer, thp_driver: SerialAsciiDriver
) -> None:
    thp.faults.partial = True
    with pytest.raises(ProtocolError, match='incomplete line "T='):
        await thp_driver.read(thp_driver.config.channels)
    thp.faults.partial = False
    readings = await thp_driver.read(thp_driver.config.channels)  # the half line is discarded
    assert all(r.quality is Quality.GOOD for r in readings)


async def test_no_reply_and_slow_reply(thp: SerialSimServer, thp_driver: SerialAsciiDriver) -> None:
    thp.faults.hang = True
    started = time.monotonic()
    with pytest.raises(DriverTimeout, match=r"no reply within 0\.5 s"):
        await thp_driver.read(thp_driver.config.channels)
    assert 0.45 < time.monotonic() - started < 1.5
    thp.faults.hang = False
    thp.faults.delay_s = 0.2  # slow but inside the timeout: fine
    readings = await thp_driver.read(thp_driver.config.channels)
    assert all(r.quality is Quality.GOOD for r in readings)
    thp.faults.delay_s = 0.8  # later than the timeout: no reply, and the late line is dropped
    with pytest.raises(DriverTimeout):
        await thp_driver.read(thp_driver.config.channels)
    thp.faults.delay_s = 0.0
    await asyncio.sleep(0.5)
    readings = await thp_driver.read(thp_driver.config.channels)
    assert all(r.quality is Quality.GOOD for r in readings)


async def test_unknown_command_answer_is_bad(thp: SerialSimServer) -> None:
    driver = SerialAsciiDriver(thp_config(thp, command="SEDN"), SystemClock())
    await driver.connect()
    readings = await driver.read(driver.config.channels)
    await driver.close()
    assert all("ERROR: unknown command" in (r.reason or "") for r in readings)


async def test_a_group_that_is_no_number_is_bad_alone(thp: SerialSimServer) -> None:
    config = thp_config(
        thp,
        pattern=THP_PATTERN.replace(r"\s*hPa", r"\s*(?P<u>hPa)"),
        channels=[*THP_CHANNELS, {"name": "u", "unit": "", "type": "float"}],
    )
    driver = SerialAsciiDriver(config, SystemClock())
    await driver.connect()
    readings = {r.channel: r for r in await driver.read(config.channels)}
    await driver.close()
    assert readings["temperature"].quality is Quality.GOOD
    assert readings["u"].quality is Quality.BAD
    assert (readings["u"].reason or "").startswith("u='hPa' is not a float")


async def test_streaming_readout_gives_fresh_lines() -> None:
    async with SerialSimServer("stream", medium="pty", period_s=0.1) as server:
        config = SerialAsciiInstrument.model_validate(
            {
                "name": "bath",
                "protocol": "serial_ascii",
                "transport": {"kind": "serial", "port": server.pty_path},
                "pattern": r"T1:\s*(?P<t>[-+0-9.]+)\s*C",
                "timeout_s": 0.5,
                "channels": [{"name": "t", "unit": "°C"}],
            }
        )
        bath = build_model(ResistorParams())
        driver = SerialAsciiDriver(config, SystemClock())
        await asyncio.sleep(0.35)  # lines pile up in the pty before the port is opened
        await driver.connect()
        try:
            # Right after opening, the first line may be a fragment: it is skipped.
            for periods, pause in ((2, 0.0), (1, 0.0), (1, 0.35), (1, 0.05), (1, 0.0)):
                await asyncio.sleep(pause)  # stale lines pile up in the OS buffer meanwhile
                sent = server.instrument.lines_sent
                called = time.time_ns()
                (reading,) = await driver.read(config.channels)
                assert reading.quality is Quality.GOOD
                # Stamped when the line arrived, after the call; and the line is one the readout
                # sent after the call (a stale one would come back at once), the next one (two
                # right after opening) or the one after it, sent while this task waited to run
                # again. Counted in lines, not seconds: a busy machine delays the readout too.
                assert reading.ts_ns >= called
                assert sent < server.instrument.lines_sent <= sent + periods + 1
                assert isinstance(reading.value, float)
                assert abs(reading.value - bath.true_value("temperature", reading.ts_ns)) < 0.01
        finally:
            await driver.close()


async def test_streaming_partial_line_is_a_protocol_error() -> None:
    async with SerialSimServer("stream", medium="tcp", period_s=0.1) as server:
        config = SerialAsciiInstrument.model_validate(
            {
                "name": "bath",
                "protocol": "serial_ascii",
                "transport": {"kind": "tcp", "host": server.host, "port": server.port},
                "pattern": r"T1:\s*(?P<t>[-+0-9.]+)\s*C",
                # Half lines come every 0.1 s: the read ends with the ones it got at this
                # deadline, generous so that a busy machine's late half line still comes in it.
                "timeout_s": 1.0,
                "channels": [{"name": "t", "unit": "°C"}],
            }
        )
        driver = SerialAsciiDriver(config, SystemClock())
        await driver.connect()
        try:
            (reading,) = await driver.read(config.channels)
            assert reading.quality is Quality.GOOD
            server.faults.partial = True
            await asyncio.sleep(0.15)  # past the line in flight: only half lines from now on
            with pytest.raises(ProtocolError, match="incomplete line"):
                await driver.read(config.channels)
        finally:
            await driver.close()


async def test_tcp_serial_server_gone_is_not_connected() -> None:
    server = SerialSimServer("thp", medium="tcp")
    await server.start()
    config = thp_config(server)
    driver = SerialAsciiDriver(config, SystemClock())
    await driver.connect()
    assert (await driver.read(config.channels))[0].quality is Quality.GOOD
    await server.stop()
    with pytest.raises((NotConnected, DriverTimeout)):
        await driver.read(config.channels)
    await driver.close()
    with pytest.raises(NotConnected):
        await driver.connect()
    await driver.close()


async def test_missing_port_is_not_connected(tmp_path: Any) -> None:
    config = SerialAsciiInstrument.model_validate(
        {
            "name": "none",
            "protocol": "serial_ascii",
            "transport": {"kind": "serial", "port": str(tmp_path / "ttyNONE")},
            "command": "SEND",
            "pattern": THP_PATTERN,
            "channels": THP_CHANNELS,
        }
    )
    driver = SerialAsciiDriver(config, SystemClock())
    with pytest.raises(NotConnected, match="ttyNONE"):
        await driver.connect()
    await driver.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pattern": r"T=(?P<temp>\S+)"}, "the pattern has no group (?P<temperature>"),
        ({"pattern": r"T=(?P<temperature"}, "pattern does not compile"),
        ({"read_terminator": ""}, "a terminator cannot be empty"),
        ({"encoding": "klingon"}, "unknown encoding"),
        ({"baud": 9600}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_problem(change: dict[str, Any], message: str) -> None:
    data = {
        "name": "thp",
        "protocol": "serial_ascii",
        "transport": {"kind": "serial", "port": "/dev/ttyUSB0"},
        "command": "SEND",
        "pattern": THP_PATTERN,
        "channels": THP_CHANNELS,
    } | change
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("?", r"\?")):
        SerialAsciiInstrument.model_validate(data)


def test_escaped_terminators_are_unescaped() -> None:
    config = SerialAsciiInstrument.model_validate(
        {
            "name": "thp",
            "protocol": "serial_ascii",
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 4001},
            "read_terminator": "\\r",
            "write_terminator": "\r\n",
            "pattern": r"(?P<t>\S+)",
            "channels": [{"name": "t", "unit": "°C"}],
        }
    )
    assert config.read_terminator == "\r"
    assert config.write_terminator == "\r\n"
    assert config.command is None
