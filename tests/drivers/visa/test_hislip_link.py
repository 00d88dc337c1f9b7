"""HiSLIP on the event loop: etalon's asyncio HiSLIP link and the driver over it, against the SCPI
simulator's HiSLIP server on real loopback sockets — the same replies as bare pyvisa-py on the
same server, errors, timeouts, device clear, re-opening, and hostile input on both sides."""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import pyvisa

from core.errors import DriverTimeout, NotConnected
from drivers.reading import Quality
from drivers.sim.scpi import ScpiSimulator
from drivers.sim.scpi_hislip import REPLY_FAULTS
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.hislip_link import FAULTS, HislipLink
from drivers.visa.hislip_wire import HEADER, HEADER_SIZE, Message, pack
from drivers.visa.link import Link, LinkError
from tests.drivers.visa.conftest import (
    a_hung_instrument_times_out_alone,
    every_profile_on_the_loop,
    visa_config,
)

Start = Callable[..., Any]


@pytest.fixture
async def hislip_sim(scpi_sim: Start) -> Start:
    """Start SCPI simulators that serve HiSLIP too."""

    async def start(personality: str, **config: Any) -> ScpiSimulator:
        simulator: ScpiSimulator = await scpi_sim(personality, hislip=True, **config)
        return simulator

    return start


async def _open(config: VisaInstrument) -> HislipLink:
    address = config.hislip_address()
    assert address is not None
    return await HislipLink.open(config, address, 2.0)


def _bare_pyvisa(resource: str, script: list[str], **options: Any) -> list[str | None]:
    """The script through bare pyvisa-py (``?`` in a command: a query, its reply; else a
    write, None)."""
    manager = pyvisa.ResourceManager("@py")
    instrument = manager.open_resource(resource, timeout=2000, **options)
    try:
        with contextlib.suppress(pyvisa.errors.VisaIOError):  # pyvisa-py has none for serial
            instrument.clear()
        return [
            instrument.query(command) if "?" in command else _none(instrument.write(command))
            for command in script
        ]
    finally:
        instrument.close()


def _none(_: object) -> None:
    return None


async def _etalon(link: Link, script: list[str]) -> list[str | None]:
    replies: list[str | None] = []
    for command in script:
        if "?" in command:
            replies.append(await link.query(command))
        else:
            await link.write(command)
            replies.append(None)
    return replies


SCRIPT = [
    "*RST",
    "*CLS",
    "*IDN?",
    "CONF?",
    "VOLT:RANG 10",
    "VOLT:RANG?",
    "SAMP:COUN 5",
    "SAMP:COUN?",
    "BOGUS:COMMAND 1",
    "*ESR?",
    "SYST:ERR?",
    "SYST:ERR?",
    "*IDN?;*OPC?",
    "SYST:VERS?",
    "*STB?",
    "FUNC?",
]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"read_termination": None},
        {"read_termination": "\r\n", "write_termination": "\r\n"},
        {"encoding": "latin-1"},
    ],
    ids=["newline", "no-read-termination", "crlf", "latin-1"],
)
async def test_the_same_replies_as_bare_pyvisa_py_on_the_same_server(
    options: dict[str, Any], hislip_sim: Start
) -> None:
    sim = await hislip_sim("generic-dmm")
    await same_replies_as_bare_pyvisa_py(
        sim, visa_config(sim.hislip_resource, "generic-dmm", **options), _open
    )


async def same_replies_as_bare_pyvisa_py(
    sim: ScpiSimulator, config: VisaInstrument, open_link: Callable[[VisaInstrument], Any]
) -> None:
    """:data:`SCRIPT` gets the same replies through bare pyvisa-py and through etalon's link
    (``await open_link(config)``) to ``config.resource``, pyvisa-py's session closed before the
    link opens (a serial port is held by one side at a time)."""
    pyvisa_options: dict[str, Any] = {
        "read_termination": config.read_termination,
        "write_termination": config.write_termination,
        "encoding": config.encoding,
    }
    if config.serial is not None:
        pyvisa_options |= {"baud_rate": config.serial.baud_rate}
    with warnings.catch_warnings():  # pyvisa warns of a reply without the whole termination
        warnings.simplefilter("ignore", UserWarning)
        bare = await asyncio.to_thread(_bare_pyvisa, config.resource, SCRIPT, **pyvisa_options)
    link: Link = await open_link(config)
    try:
        await link.clear()
        ours = await _etalon(link, SCRIPT)
    finally:
        link.close()
    assert ours == bare
    # Without a read termination a reply keeps its newline (a serial one too: pyvisa-py still
    # ends it at LF).
    assert bare[2] == sim.instrument.idn + ("\n" if config.read_termination != "\n" else "")
    assert bare[10] is not None and bare[10].startswith("-113")  # the BOGUS command


async def test_a_driver_reads_every_profile_over_hislip_on_the_loop_without_a_thread(
    hislip_sim: Start, clock: Any
) -> None:
    for sim in await every_profile_on_the_loop(hislip_sim, lambda sim: sim.hislip_resource):
        assert sim.hislip is not None and sim.hislip.connections == 2  # two channels, one session


@pytest.mark.parametrize("socket_io", ["auto", "pyvisa"])
async def test_errors_writes_and_readings_alike_both_ways(
    socket_io: str, hislip_sim: Start, clock: Any
) -> None:
    sim = await hislip_sim("generic-dmm")
    config = visa_config(
        sim.hislip_resource,
        "generic-dmm",
        socket_io=socket_io,
        channels=[{"name": "v", "measurement": "voltage_dc"}],
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        assert driver._session is not None and driver._session.on_loop is (socket_io == "auto")
        (good,) = await driver.read(config.channels)
        assert good.quality is Quality.GOOD and good.value == pytest.approx(10, rel=1e-5)
        sim.push_error(-230, "Data corrupt or stale")
        (bad,) = await driver.read(config.channels)
        assert bad.quality is Quality.BAD
        assert bad.reason is not None and "Data corrupt or stale" in bad.reason
    finally:
        await driver.close()


async def test_a_hung_instrument_times_out_alone_and_the_next_read_reopens(
    hislip_sim: Start,
) -> None:
    hung, healthy = await hislip_sim("longscale-dmm"), await hislip_sim("longscale-dmm")
    await a_hung_instrument_times_out_alone(hung, healthy, lambda sim: sim.hislip_resource)
    assert hung.hislip is not None and hung.hislip.connections == 4  # re-opened


async def test_a_device_clear_drops_a_late_reply(hislip_sim: Start) -> None:
    sim = await hislip_sim("generic-dmm")
    link = await _open(visa_config(sim.hislip_resource, "generic-dmm"))
    try:
        sim.faults.delay_s = 0.3
        link.set_timeout(0.1)
        with pytest.raises(TimeoutError):
            await link.query("FUNC?")
        link.set_timeout(2.0)
        start = time.monotonic()
        await link.clear()  # while the instrument still works on FUNC?
        assert time.monotonic() - start < 0.25  # no 0.1 s sleep, no wait for the reply
        sim.faults.delay_s = 0.0
        await asyncio.sleep(0.35)  # FUNC?'s reply would have been sent by now
        assert await link.query("*IDN?") == sim.instrument.idn
        assert await link.query("*OPC?") == "1"
    finally:
        link.close()


async def test_the_query_delay_passes_between_the_write_and_the_read(hislip_sim: Start) -> None:
    sim = await hislip_sim("generic-dmm")
    link = await _open(visa_config(sim.hislip_resource, "generic-dmm", query_delay_s=0.2))
    try:
        start = time.monotonic()
        assert await link.query("*IDN?") == sim.instrument.idn  # it came during the delay
        assert time.monotonic() - start >= 0.2
    finally:
        link.close()


async def test_a_late_reply_to_a_cancelled_query_is_dropped_by_its_message_id(
    hislip_sim: Start,
) -> None:
    sim = await hislip_sim("generic-dmm")
    link = await _open(visa_config(sim.hislip_resource, "generic-dmm"))
    try:
        sim.faults.delay_s = 0.3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):  # the agent gives up on the read
                await link.query("FUNC?")
        sim.faults.delay_s = 0.0
        # FUNC?'s reply comes first, with the older message id: not taken for this one's.
        assert await link.query("*IDN?") == sim.instrument.idn
        assert await link.query("*OPC?") == "1"
    finally:
        link.close()


@pytest.mark.parametrize("socket_io", ["auto", "pyvisa"])
async def test_the_driver_reads_again_after_the_instrument_drops_the_connection(
    socket_io: str, hislip_sim: Start, clock: Any
) -> None:
    sim = await hislip_sim("longscale-dmm")
    config = visa_config(sim.hislip_resource, "longscale-dmm", timeout_s=2.0, socket_io=socket_io)
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        sim.drop_connections()
        await asyncio.sleep(0.05)
        start = time.monotonic()
        # pyvisa-py's HiSLIP client raises a bare RuntimeError here: mapped like any other.
        with pytest.raises(NotConnected, match=r"closed by the instrument|dropped by server"):
            await driver.read(config.channels)
        assert time.monotonic() - start < 0.5  # at once, not the 2 s timeout
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()


async def test_nothing_listening_is_not_connected(clock: Any) -> None:
    from tests.support.services import free_port

    config = visa_config(f"TCPIP::127.0.0.1::hislip0,{free_port()}::INSTR", "longscale-dmm")
    with pytest.raises(NotConnected, match="ConnectionRefusedError"):
        await VisaDriver(config, clock).connect()


async def test_a_long_reply_comes_in_data_pieces_and_a_stale_one_is_dropped(
    hislip_sim: Start,
) -> None:
    sim = await hislip_sim("generic-dmm")
    link = await _open(visa_config(sim.hislip_resource, "generic-dmm"))
    assert sim.hislip is not None
    try:
        for fault in ("pieces", "stale", "control_code"):
            sim.hislip.reply_fault = fault
            assert await link.query("*IDN?") == sim.instrument.idn
    finally:
        link.close()


async def test_a_long_command_goes_in_data_pieces_the_server_takes(hislip_sim: Start) -> None:
    sim = await hislip_sim("generic-dmm")
    assert sim.hislip is not None
    sim.hislip.max_message = 16 + 7  # 7 bytes of payload per message
    link = await _open(visa_config(sim.hislip_resource, "generic-dmm"))
    try:
        command = "*IDN?" + ";*OPC?" * 9
        assert await link.query(command) == ";".join([sim.instrument.idn] + ["1"] * 9)
        assert sim.transcript[-1][0] == command  # one program message, put together again
        await link.write("VOLT:RANG 100")
        assert await link.query("VOLT:RANG?") == "+1.00000E+02"
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
    assert sim.hislip is not None
    link = await _open(visa_config(sim.hislip_resource, "longscale-dmm"))
    counted = FAULTS[kind] if kind else 0
    try:
        sim.hislip.reply_fault = fault
        start = time.monotonic()
        with pytest.raises(LinkError, match=message):
            await link.query("*IDN?")
        assert time.monotonic() - start < 0.5  # not the timeout
        if kind is not None:
            assert FAULTS[kind] == counted + 1
        with pytest.raises(LinkError):  # the session is spent
            await link.query("*IDN?")
    finally:
        link.close()
    # The driver says so and re-opens at the next read.
    await _driver_recovers(sim, visa_config(sim.hislip_resource, "longscale-dmm"), fault, clock)


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
    await _driver_recovers(sim, config, fault, clock, error)


async def _driver_recovers(
    sim: ScpiSimulator,
    config: VisaInstrument,
    fault: str,
    clock: Any,
    error: type[Exception] = NotConnected,
    after: Callable[[], None] | None = None,
) -> None:
    """The driver of ``config`` meets ``fault`` in a reply (HiSLIP's, or on a pseudo-terminal
    when the simulator serves no HiSLIP): ``error``, then (``after`` the error, when given) the
    next read re-opens the session and is good."""
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        if sim.hislip is not None:
            sim.hislip.reply_fault = fault
        else:
            sim.pty_fault = fault
        with pytest.raises(error):
            await driver.read(config.channels)
        if after is not None:
            after()
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()


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
    link = await _open(visa_config(sim.hislip_resource, "longscale-dmm"))
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
    link = await _open(visa_config(sim.hislip_resource, "longscale-dmm"))
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
