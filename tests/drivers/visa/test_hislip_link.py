"""HiSLIP on the event loop: etalon's asyncio HiSLIP link and the driver over it, against the SCPI
simulator's HiSLIP server on real loopback sockets — the same replies as bare pyvisa-py on the
same server, replies in pieces, and hostile input on both sides. (What holds for VXI-11 and the
serial link alike — errors, timeouts, device clear, re-opening — is in test_loop_links.py.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from core.errors import DriverTimeout, NotConnected
from drivers.sim.scpi import ScpiSimulator
from drivers.sim.scpi_hislip import REPLY_FAULTS
from drivers.visa.driver import VisaDriver
from drivers.visa.hislip_link import FAULTS
from drivers.visa.hislip_wire import HEADER, HEADER_SIZE, Message, pack
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.loop_transports import (
    HISLIP,
    TERMINATIONS,
    Start,
    driver_recovers,
    hostile_reply_fails_at_once,
    same_replies_as_bare_pyvisa_py,
    serving,
    the_script_s_replies_are_the_instrument_s,
)


@pytest.fixture
def hislip_sim(scpi_sim: Start) -> Start:
    """Start SCPI simulators that serve HiSLIP too."""
    return serving(scpi_sim, **HISLIP.sim_options)


@pytest.mark.parametrize("options", TERMINATIONS)
async def test_the_same_replies_as_bare_pyvisa_py_on_the_same_server(
    options: dict[str, Any], hislip_sim: Start
) -> None:
    sim = await hislip_sim("generic-dmm")
    config = visa_config(sim.hislip_resource, "generic-dmm", **options)
    bare = await same_replies_as_bare_pyvisa_py(HISLIP, config)
    the_script_s_replies_are_the_instrument_s(sim, config, bare)


async def test_nothing_listening_is_not_connected(clock: Any) -> None:
    from tests.support.services import free_port

    config = visa_config(f"TCPIP::127.0.0.1::hislip0,{free_port()}::INSTR", "longscale-dmm")
    with pytest.raises(NotConnected, match="ConnectionRefusedError"):
        await VisaDriver(config, clock).connect()


async def test_a_long_reply_comes_in_data_pieces_and_a_stale_one_is_dropped(
    hislip_sim: Start,
) -> None:
    sim = await hislip_sim("generic-dmm")
    link = await HISLIP.open(visa_config(sim.hislip_resource, "generic-dmm"))
    assert sim.hislip is not None
    try:
        for fault in ("pieces", "stale", "control_code"):
            sim.hislip.reply_fault = fault
            assert await link.query("*IDN?") == sim.instrument.idn
    finally:
        link.close()


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        ("bad_header", "malformed header", "malformed header"),
        ("oversized", "oversized", "exceeds the maximum message size"),
        ("wrong_type", "unexpected message", "unexpected AsyncStatusResponse"),
        ("fatal_error", "FatalError", "FatalError 0 .*simulated fatal error"),
        ("error", "Error", "Error 0 .*simulated error"),
        ("close", None, "closed by the instrument"),
    ],
)
async def test_a_hostile_reply_is_a_link_error_at_once_and_counted(
    fault: str, kind: str | None, message: str, hislip_sim: Start, clock: Any
) -> None:
    assert fault in REPLY_FAULTS
    sim = await hislip_sim("longscale-dmm")
    await hostile_reply_fails_at_once(HISLIP, sim, fault, kind, message, FAULTS, clock)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("bad_header", NotConnected),
        ("close", NotConnected),
        ("control_code", NotConnected),
        ("wrong_type", DriverTimeout),  # pyvisa-py skips it and waits for the reply
    ],
)
async def test_a_hostile_reply_through_pyvisa_is_an_error_and_the_next_read_reopens(
    fault: str, error: type[Exception], hislip_sim: Start, clock: Any
) -> None:
    # pyvisa-py's HiSLIP client raises bare RuntimeErrors and AssertionErrors for these: each is
    # worded like any other link error, never let through as a driver bug.
    sim = await hislip_sim("longscale-dmm")
    config = visa_config(sim.hislip_resource, "longscale-dmm", timeout_s=1.0, socket_io="pyvisa")
    await driver_recovers(HISLIP, sim, config, fault, clock, error)


# -- the server against hostile clients -----------------------------------------------------------


async def _raw(sim: ScpiSimulator) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert sim.hislip is not None
    return await asyncio.open_connection("127.0.0.1", sim.hislip.port)


async def _initialized(sim: ScpiSimulator) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw synchronous channel, its Initialize answered."""
    reader, writer = await _raw(sim)
    writer.write(pack(Message.INITIALIZE, 0, 0x0100_0000, b"hislip0"))
    kind, _, _ = await _answer(reader)
    assert kind == Message.INITIALIZE_RESPONSE
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(type, control code, payload) of the next message; the server then closes."""
    async with asyncio.timeout(2):
        header = await reader.readexactly(HEADER_SIZE)
        _, kind, control, _, length = HEADER.unpack(header)
        payload = await reader.readexactly(length)
        return kind, control, payload


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (b"GET / HTTP/1.1\r\n", "malformed header"),
        (HEADER.pack(b"HS", Message.DATA_END, 0, 0, 1 << 50), "oversized"),
        (pack(Message.DATA_END, 0, 0, b"*IDN?\n"), "invalid initialization"),
        (pack(Message.ASYNC_INITIALIZE, 0, 4242), "invalid initialization"),
    ],
    ids=["http", "huge-length", "data-first", "no-such-session"],
)
async def test_the_server_refuses_a_hostile_client_with_a_fatal_error_and_counts_it(
    first: bytes, kind: str, hislip_sim: Start
) -> None:
    sim = await hislip_sim("longscale-dmm")
    assert sim.hislip is not None
    reader, writer = await _raw(sim)
    try:
        writer.write(first)
        message_type, _, _ = await _answer(reader)
        assert message_type == Message.FATAL_ERROR
        async with asyncio.timeout(2):
            assert await reader.read() == b""  # closed
    finally:
        writer.close()
    assert sim.hislip.protocol_faults[kind] == 1
    # The server serves the next client as ever.
    link = await HISLIP.open(visa_config(sim.hislip_resource, "longscale-dmm"))
    try:
        assert await link.query("*IDN?") == sim.instrument.idn
    finally:
        link.close()


async def test_the_server_answers_an_unknown_message_with_an_error_and_goes_on(
    hislip_sim: Start,
) -> None:
    sim = await hislip_sim("longscale-dmm")
    assert sim.hislip is not None
    reader, writer = await _initialized(sim)
    try:
        writer.write(pack(99))  # a type HiSLIP 1.0 does not have
        kind, control, _ = await _answer(reader)
        assert (kind, control) == (Message.ERROR, 1)  # unrecognized message type
        writer.write(pack(Message.DATA_END, 0, 0xFFFF_FF00, b"*OPC?\n"))
        assert await _answer(reader) == (Message.DATA_END, 0, b"1\n")
    finally:
        writer.close()
    assert sim.hislip.protocol_faults["unexpected message"] == 1


async def test_the_server_closes_a_client_that_stalls_inside_a_message(hislip_sim: Start) -> None:
    sim = await hislip_sim("longscale-dmm")
    assert sim.hislip is not None
    sim.hislip.message_timeout_s = 0.2
    reader, writer = await _initialized(sim)
    try:
        writer.write(HEADER.pack(b"HS", Message.DATA_END, 0, 0xFFFF_FF00, 100) + b"*IDN?")
        async with asyncio.timeout(2):
            assert await reader.read() == b""  # closed after 0.2 s
    finally:
        writer.close()
    assert sim.hislip.protocol_faults["incomplete message"] == 1


async def test_a_server_that_stalls_inside_a_reply_is_a_timeout(hislip_sim: Start) -> None:
    sim = await hislip_sim("longscale-dmm")
    assert sim.hislip is not None
    link = await HISLIP.open(visa_config(sim.hislip_resource, "longscale-dmm"))
    try:
        link.set_timeout(0.2)
        sim.hislip.reply_fault = "truncated"  # the payload never comes whole
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("*IDN?")
        assert 0.15 < time.monotonic() - start < 1.0
    finally:
        link.close()


# -- which way a config takes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "overrides", "address"),
    [
        ("TCPIP::10.0.0.5::hislip0::INSTR", {}, ("10.0.0.5", 4880, "hislip0")),
        ("tcpip0::dmm.lab::HiSLIP1::instr", {}, ("dmm.lab", 4880, "hislip1")),
        ("TCPIP::10.0.0.5::hislip0,4881::INSTR", {}, ("10.0.0.5", 4881, "hislip0")),
        ("TCPIP0::[fe80::1]::hislip0::INSTR", {}, ("fe80::1", 4880, "hislip0")),
        (
            "TCPIP::10.0.0.5::hislip0::INSTR",
            {"read_termination": None},
            ("10.0.0.5", 4880, "hislip0"),
        ),
        ("TCPIP::10.0.0.5::hislip0::INSTR", {"socket_io": "pyvisa"}, None),
        ("TCPIP::10.0.0.5::hislip0::INSTR", {"backend": "@ivi"}, None),
        ("TCPIP::10.0.0.5::INSTR", {}, None),
        ("TCPIP::10.0.0.5::inst0::INSTR", {}, None),
        ("TCPIP::10.0.0.5::5025::SOCKET", {}, None),
        ("GPIB0::22::INSTR", {}, None),
    ],
)
def test_hislip_resources_on_pyvisa_py_take_the_asyncio_way(
    resource: str, overrides: dict[str, Any], address: tuple[str, int, str] | None
) -> None:
    config = visa_config(resource, "longscale-dmm", **overrides)
    assert config.hislip_address() == address
    if address is not None:
        assert config.socket_address() is None
