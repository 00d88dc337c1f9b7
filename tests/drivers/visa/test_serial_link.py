"""Serial resources on the event loop: etalon's asyncio serial link and the driver over it, against
the SCPI simulator on a real pseudo-terminal — the same replies as bare pyvisa-py on the same
pty, line settings, device clear, hostile replies (undecodable, cut off, endless, the pty gone),
stalls, cancellation, and which resources take which way. (What holds for HiSLIP and VXI-11
alike — every profile on the loop, errors and writes both ways, a hung instrument, the query
delay — is in test_loop_links.py.)"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.reading import Quality
from drivers.sim.scpi import PTY_FAULTS, ScpiSimulator
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.link import LinkError
from drivers.visa.serial_link import FAULTS, SerialLink, port_options
from drivers.visa.socket_link import MAX_PENDING
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.loop_transports import (
    SERIAL,
    TERMINATIONS,
    Start,
    driver_recovers,
    same_replies_as_bare_pyvisa_py,
    serving,
    the_script_s_replies_are_the_instrument_s,
)


@pytest.fixture
def pty_sim(scpi_sim: Start) -> Start:
    """Start SCPI simulators that serve a pseudo-terminal only."""
    return serving(scpi_sim, **SERIAL.sim_options)


async def _open(config: VisaInstrument) -> SerialLink:
    link = await SERIAL.open(config)
    assert isinstance(link, SerialLink)
    return link


def _watched(fd: int) -> bool:
    """Whether the running loop watches ``fd`` for reading (a test's look inside the loop)."""
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    return fd in selector.get_map()


@pytest.mark.parametrize(
    "options",
    [
        *TERMINATIONS,
        pytest.param(
            {"serial": {"baud_rate": 115200, "parity": "even", "stop_bits": 2}}, id="115200-8E2"
        ),
    ],
)
async def test_the_same_replies_as_bare_pyvisa_py_on_the_same_pty(
    options: dict[str, Any], pty_sim: Start
) -> None:
    sim = await pty_sim("generic-dmm")
    config = visa_config(sim.asrl_resource, "generic-dmm", **options)
    bare = await same_replies_as_bare_pyvisa_py(SERIAL, config)
    the_script_s_replies_are_the_instrument_s(sim, config, bare)


def test_the_line_settings_reach_pyserial_as_pyvisa_sets_them() -> None:
    config = visa_config(
        "ASRL/dev/ttyUSB0::INSTR",
        "generic-dmm",
        serial={"baud_rate": 19200, "data_bits": 7, "parity": "odd", "flow_control": "rts_cts"},
    )
    assert port_options(config.serial) == {
        "baudrate": 19200,
        "bytesize": 7,
        "parity": "O",
        "stopbits": 1,
        "xonxoff": False,
        "rtscts": True,
        "dsrdtr": False,
    }
    # pyvisa's defaults: 9600 Bd, 8N1, no flow control.
    assert port_options(None) == {
        "baudrate": 9600,
        "bytesize": 8,
        "parity": "N",
        "stopbits": 1,
        "xonxoff": False,
        "rtscts": False,
        "dsrdtr": False,
    }


async def test_a_device_clear_flushes_what_the_port_holds(pty_sim: Start) -> None:
    sim = await pty_sim("generic-dmm")
    link = await _open(visa_config(sim.asrl_resource, "generic-dmm"))
    try:
        await link.write("*IDN?;*OPC?")  # a reply nobody reads
        await asyncio.sleep(0.1)
        await link.clear()
        assert await link.query("FUNC?") == '"VOLT:DC"'
    finally:
        link.close()


async def test_a_cancelled_querys_late_reply_is_dropped_by_the_next_session(
    pty_sim: Start,
) -> None:
    sim = await pty_sim("generic-dmm")
    config = visa_config(sim.asrl_resource, "generic-dmm")
    link = await _open(config)
    fd = link._wire.transport._fd  # type: ignore[union-attr]
    sim.faults.delay_s = 0.3
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # the agent gives up on the read
            await link.query("FUNC?")
    sim.faults.delay_s = 0.0
    link.close()  # as the session does before its next exchange
    assert not _watched(fd)  # no reader left behind
    again = await _open(config)
    try:
        start = time.monotonic()
        await again.clear()  # waits for FUNC?'s reply (due within its timeout) and drops it
        assert 0.1 < time.monotonic() - start < 0.6
        assert await again.query("*IDN?") == sim.instrument.idn
        assert await again.query("*OPC?") == "1"
    finally:
        again.close()
    assert not _watched(fd)


async def test_a_clear_waits_for_no_reply_when_none_is_owed(pty_sim: Start) -> None:
    sim = await pty_sim("generic-dmm")
    config = visa_config(sim.asrl_resource, "generic-dmm")
    for _ in range(2):
        link = await _open(config)
        try:
            start = time.monotonic()
            await link.clear()
            assert time.monotonic() - start < 0.05
            assert await link.query("*OPC?") == "1"
        finally:
            link.close()


async def test_a_stalled_instrument_is_a_timeout(pty_sim: Start) -> None:
    sim = await pty_sim("longscale-dmm")
    link = await _open(visa_config(sim.asrl_resource, "longscale-dmm"))
    try:
        link.set_timeout(0.2)
        sim.faults.hang = True
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("*IDN?")
        assert 0.15 < time.monotonic() - start < 1.0
    finally:
        link.close()


@pytest.mark.parametrize(
    ("fault", "error", "message", "kind"),
    [
        ("undecodable", UnicodeDecodeError, "can't decode", None),
        ("unterminated", TimeoutError, None, None),
        ("flood", LinkError, f"more than {MAX_PENDING} bytes unread", "overflow"),
        ("close", LinkError, r"serial port .*: .*(hung up|Input/output error)", "port lost"),
    ],
)
async def test_a_hostile_reply_is_a_clear_error_and_counted(
    fault: str,
    error: type[Exception],
    message: str | None,
    kind: str | None,
    pty_sim: Start,
) -> None:
    assert fault in PTY_FAULTS
    sim = await pty_sim("longscale-dmm")
    link = await _open(visa_config(sim.asrl_resource, "longscale-dmm"))
    fd = link._wire.transport._fd  # type: ignore[union-attr]
    counted = FAULTS[kind] if kind else 0
    try:
        link.set_timeout(0.3)
        sim.pty_fault = fault
        start = time.monotonic()
        with pytest.raises(error, match=message):
            await link.query("*IDN?")
        took = time.monotonic() - start
        if error is TimeoutError:
            assert 0.25 < took < 1.0  # the timeout, no hang
        else:
            assert took < 0.25 if fault != "flood" else took < 5  # not the timeout
        if kind is not None:
            assert FAULTS[kind] == counted + 1
            assert not _watched(fd)  # the port given up
            with pytest.raises(LinkError):  # the session is spent: the driver re-opens
                await link.query("*IDN?")
    finally:
        link.close()


async def test_the_driver_recovers_from_each_hostile_reply(
    pty_sim: Start, clock: Any, tmp_path: Path
) -> None:
    sim = await pty_sim("longscale-dmm")
    # A stable name for the port, as udev gives a USB adapter (/dev/serial/by-id/…): the
    # simulator's pty is opened anew, under a new path, after the 'close' fault.
    device = tmp_path / "ttyDMM"
    device.symlink_to(sim.asrl_resource[4:-7])

    def replug() -> None:
        fresh = tmp_path / "ttyDMM.new"
        fresh.symlink_to(sim.asrl_resource[4:-7])
        os.replace(fresh, device)

    config = visa_config(f"ASRL{device}::INSTR", "longscale-dmm", timeout_s=0.5)
    await driver_recovers(SERIAL, sim, config, "flood", clock)
    await driver_recovers(SERIAL, sim, config, "unterminated", clock, DriverTimeout)
    opened = sim.pty_opened
    await driver_recovers(SERIAL, sim, config, "close", clock, NotConnected, after=replug)
    assert sim.pty_opened == opened + 1


async def test_an_undecodable_reply_spoils_only_its_reading(pty_sim: Start, clock: Any) -> None:
    sim = await pty_sim("generic-dmm")
    config = visa_config(sim.asrl_resource, "generic-dmm")
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        sim.pty_fault = "undecodable"
        readings = await driver.read(config.channels)
        assert readings[0].quality is Quality.BAD
        assert readings[0].reason is not None and "reply is not ascii" in readings[0].reason
        assert [r.quality for r in readings[1:]] == [Quality.GOOD] * (len(readings) - 1)
        readings = await driver.read(config.channels)
        assert [r.quality for r in readings] == [Quality.GOOD] * len(readings)
    finally:
        await driver.close()
    with pytest.raises(ProtocolError):  # the same through the session's query
        await _undecodable_query(sim, config, clock)


async def test_a_doubled_reply_puts_the_port_out_of_step_once(pty_sim: Start, clock: Any) -> None:
    """A line nobody asked for on a serial line shifts every later reply by one (the bytes after
    a reply wait for the next read, as pyvisa-py leaves them in the port). The error query's
    reply that is no error-queue entry fails that read, saying so, and the session re-opens the
    port, its input flushed: the next reads are in step again."""
    sim = await pty_sim("generic-dmm")
    config = visa_config(sim.asrl_resource, "generic-dmm", timeout_s=0.5)
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        sim.pty_fault = "doubled"
        with pytest.raises(ProtocolError, match="out of step"):
            await driver.read(config.channels)
        for _ in range(3):
            readings = await driver.read(config.channels)
            assert [r.quality for r in readings] == [Quality.GOOD] * len(readings), readings
    finally:
        await driver.close()


async def _undecodable_query(sim: ScpiSimulator, config: VisaInstrument, clock: Any) -> None:
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        assert driver._session is not None
        sim.pty_fault = "undecodable"
        driver._session.begin_read()
        await driver._session.query("*IDN?")
    finally:
        await driver.close()


async def test_a_port_the_event_loop_cannot_watch_is_not_connected(
    pty_sim: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await pty_sim("longscale-dmm")

    def refuse(*_: object) -> None:  # as a selector that takes no tty would
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(asyncio.get_running_loop(), "add_reader", refuse)
    with pytest.raises(NotConnected, match=r"cannot watch .*\(socket_io: pyvisa reads it"):
        await _open(visa_config(sim.asrl_resource, "longscale-dmm"))


async def test_a_port_that_does_not_exist_is_not_connected(clock: Any, tmp_path: Path) -> None:
    config = visa_config(f"ASRL{tmp_path}/ttyUSB9::INSTR", "longscale-dmm")
    with pytest.raises(NotConnected, match="could not open port"):
        await VisaDriver(config, clock).connect()


# -- which way a config takes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "overrides", "port"),
    [
        ("ASRL/dev/ttyUSB0::INSTR", {}, "/dev/ttyUSB0"),
        ("asrl/dev/pts/3::INSTR", {}, "/dev/pts/3"),
        (
            "ASRL/dev/serial/by-id/usb-FTDI-if00-port0::INSTR",
            {},
            "/dev/serial/by-id/usb-FTDI-if00-port0",
        ),
        ("ASRL/dev/ttyS0", {}, None),  # not a VISA resource name etalon takes (no '::')
        ("ASRL1::INSTR", {}, "1"),  # as pyvisa-py: the board is the port's name
        ("ASRL/dev/ttyUSB0::INSTR", {"read_termination": None}, "/dev/ttyUSB0"),
        ("ASRL/dev/ttyUSB0::INSTR", {"socket_io": "pyvisa"}, None),
        ("ASRL/dev/ttyUSB0::INSTR", {"backend": "@ivi"}, None),
        ("ASRLsocket://127.0.0.1:7777::INSTR", {}, None),  # a pyserial URL: pyvisa-py's own
        ("ASRL/dev/ttyUSB0::instr", {}, None),  # pyvisa cannot parse it either
        ("TCPIP::10.0.0.5::5025::SOCKET", {}, None),
        ("GPIB0::22::INSTR", {}, None),
    ],
)
def test_serial_resources_on_pyvisa_py_take_the_asyncio_way(
    resource: str, overrides: dict[str, Any], port: str | None
) -> None:
    if "::" not in resource:
        with pytest.raises(ValueError, match="not a VISA resource name"):
            visa_config(resource, "longscale-dmm", **overrides)
        return
    config = visa_config(resource, "longscale-dmm", **overrides)
    assert config.serial_port() == port
    if port is not None:
        assert config.socket_address() is None and config.hislip_address() is None


def test_serial_resources_stay_on_pyvisa_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("drivers.visa.config.sys.platform", "win32")
    assert visa_config("ASRLCOM3::INSTR", "longscale-dmm").serial_port() is None
