"""VXI-11 on the event loop: etalon's asyncio VXI-11 link and the driver over it, against the SCPI
simulator's VXI-11 server (portmapper and core channel) on real loopback sockets — the same
replies as bare pyvisa-py on the same server (through the portmapper and past it), the device's
own timeout, replies in pieces and fragments, and hostile input on both sides. (What holds for
HiSLIP and the serial link alike — errors, timeouts, device clear, re-opening — is in
test_loop_links.py.)"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyvisa_py.protocols import rpc

from core.errors import DriverTimeout, NotConnected
from drivers.reading import Quality
from drivers.sim.scpi import ScpiSimulator, simulate_visa
from drivers.sim.scpi_vxi11 import REPLY_FAULTS, PortmapperServer, Vxi11Server
from drivers.visa.config import VisaInstrument, Vxi11Address
from drivers.visa.driver import VisaDriver
from drivers.visa.vxi11_link import FAULTS
from drivers.visa.vxi11_wire import (
    CORE_PROG,
    CORE_VERS,
    CREATE_LINK,
    DEVICE_READ,
    DEVICE_WRITE,
    FLAG_END,
    MARK,
    MSG_DENIED,
    REPLY,
    call,
    opaque,
    reply_body,
)
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.loop_transports import (
    VXI11,
    Start,
    driver_recovers,
    hostile_reply_fails_at_once,
    same_replies_as_bare_pyvisa_py,
    serving,
)


@pytest.fixture
def vxi11_sim(scpi_sim: Start) -> Start:
    """Start SCPI simulators that serve VXI-11 too."""
    return serving(scpi_sim, **VXI11.sim_options)


def _server(sim: ScpiSimulator) -> Vxi11Server:
    assert sim.vxi11 is not None
    return sim.vxi11


def _through_portmapper(sim: ScpiSimulator, profile: str, **overrides: Any) -> VisaInstrument:
    """A config of the instrument's ``TCPIP::127.0.0.1::inst0::INSTR``, its portmapper on the
    simulator's port."""
    server = _server(sim)
    return visa_config(
        server.portmapper_resource(),
        profile,
        vxi11_portmapper_port=server.portmapper_port,
        **overrides,
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"read_termination": None},
        {"read_termination": "\r\n", "write_termination": "\r\n"},
        {"read_termination": "?\n"},
        {"read_termination": "E"},
        {"encoding": "latin-1"},
    ],
    ids=["newline", "no-read-termination", "crlf", "two-characters", "mid-reply", "latin-1"],
)
async def test_the_same_replies_as_bare_pyvisa_py_through_the_portmapper(
    options: dict[str, Any], vxi11_sim: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await vxi11_sim("generic-dmm")
    server = _server(sim)
    config = _through_portmapper(sim, "generic-dmm", **options)
    # pyvisa-py asks the portmapper on port 111 (rpc.PMAP_PORT, read at each open): here the
    # simulator's, for this test only.
    monkeypatch.setattr(rpc, "PMAP_PORT", server.portmapper_port)
    bare = await same_replies_as_bare_pyvisa_py(VXI11, config)
    assert server.portmapper.connections == 2  # pyvisa-py asked the portmapper, and the link
    if config.read_termination == "E":  # the device stops at the first E: the rest is the
        assert bare[2:4] == ["", "TALON-SIM,DMM6500-SIM,SIM0001,1.7.12b\n"]  # next reply
        return
    if config.read_termination == "\n":
        assert bare[2] == sim.instrument.idn
    assert bare[10] is not None and bare[10].startswith("-113")  # the BOGUS command
    assert sum(server.protocol_faults.values()) == 0


async def test_the_same_replies_as_bare_pyvisa_py_straight_to_the_core_channel(
    vxi11_sim: Start,
) -> None:
    sim = await vxi11_sim("generic-dmm")
    config = visa_config(sim.vxi11_resource, "generic-dmm")
    assert config.vxi11_address() == Vxi11Address("127.0.0.1", "inst0", _server(sim).port, 111)
    await same_replies_as_bare_pyvisa_py(VXI11, config)
    assert _server(sim).portmapper.connections == 0
    await asyncio.sleep(0.05)
    assert _server(sim).links == {}  # destroy_link went out before the connection closed


async def test_the_device_says_io_timeout_when_its_reply_does_not_come(
    vxi11_sim: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The instrument's own error 15 at the io_timeout it was sent: the link's timer is later.
    sim = await vxi11_sim("generic-dmm")
    link = await VXI11.open(visa_config(sim.vxi11_resource, "generic-dmm"))
    try:
        link.set_timeout(0.2)
        monkeypatch.setattr(link._wire, "await_reply", _later(link._wire.await_reply))
        sim.unanswered.add("FUNC?")
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("FUNC?")
        assert 0.15 < time.monotonic() - start < 0.5
        assert link._wire.lost is None  # a timeout does not spend the connection
        sim.unanswered.clear()
        assert await link.query("*OPC?") == "1"
    finally:
        link.close()


def _later(await_reply: Callable[[Any, float], None]) -> Callable[[Any, float], None]:
    def later(waiter: Any, timeout_s: float) -> None:
        await_reply(waiter, timeout_s + 1.0)

    return later


async def test_nothing_listening_is_not_connected(clock: Any) -> None:
    from tests.support.services import free_port

    port = free_port()
    for config in (
        visa_config(f"TCPIP::127.0.0.1,{port}::INSTR", "longscale-dmm"),
        visa_config("TCPIP::127.0.0.1::INSTR", "longscale-dmm", vxi11_portmapper_port=port),
    ):
        with pytest.raises(NotConnected, match="ConnectionRefusedError"):
            await VisaDriver(config, clock).connect()


async def test_a_portmapper_without_the_core_channel_is_not_connected(clock: Any) -> None:
    portmapper = PortmapperServer(lambda: 0, "127.0.0.1", 0, FAULTS.copy())
    async with portmapper:
        config = visa_config(
            "TCPIP::127.0.0.1::INSTR", "longscale-dmm", vxi11_portmapper_port=portmapper.port
        )
        with pytest.raises(NotConnected, match="knows no VXI-11 core channel"):
            await VisaDriver(config, clock).connect()


async def test_a_device_name_the_instrument_does_not_have_is_error_3(
    vxi11_sim: Start, clock: Any
) -> None:
    sim = await vxi11_sim("longscale-dmm")
    resource = sim.vxi11_resource.replace("::INSTR", "::nosuch::INSTR")
    with pytest.raises(NotConnected, match=r"VXI-11 error 3 \(device not accessible\)"):
        await VisaDriver(visa_config(resource, "longscale-dmm"), clock).connect()
    # A GPIB instrument behind a LAN gateway is a device name too.
    gpib = visa_config(sim.vxi11_resource.replace("::INSTR", "::gpib0,22::INSTR"), "longscale-dmm")
    assert gpib.vxi11_address() is not None and gpib.vxi11_address().device == "gpib0,22"  # type: ignore[union-attr]
    driver = VisaDriver(gpib, clock)
    try:
        await driver.connect()
        (reading,) = await driver.read(gpib.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()


async def test_a_reply_in_pieces_fragments_or_after_a_stale_one_comes_whole(
    vxi11_sim: Start,
) -> None:
    sim = await vxi11_sim("generic-dmm")
    server = _server(sim)
    link = await VXI11.open(visa_config(sim.vxi11_resource, "generic-dmm"))
    try:
        for fault in ("fragments", "stale"):
            server.reply_fault = fault
            assert await link.query("*IDN?") == sim.instrument.idn
        server.read_size = 3  # device_read answers 3 bytes at a time (reason REQCNT)
        assert await link.query("*IDN?") == sim.instrument.idn
        assert await link.query("*IDN?;*OPC?") == sim.instrument.idn + ";1"
        assert link._wire.lost is None
    finally:
        link.close()


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        ("oversized", "oversized", "a record mark announcing"),
        ("short", "malformed reply", "no RPC reply"),
        ("not_a_reply", "malformed reply", "not a reply"),
        ("wrong_xid", "wrong xid", "no such call"),
        ("denied", "RPC denied", "RPC call denied: authentication error"),
        ("not_accepted", "RPC not accepted", "not accepted: system error"),
        ("bad_length", "malformed reply", "an XDR opaque of 4096 bytes"),
        ("device_error", "device error", r"VXI-11 error 17 \(I/O error\)"),
        ("close", None, "closed by the instrument"),
    ],
)
async def test_a_hostile_reply_is_a_link_error_at_once_and_counted(
    fault: str, kind: str | None, message: str, vxi11_sim: Start, clock: Any
) -> None:
    assert fault in REPLY_FAULTS
    sim = await vxi11_sim("longscale-dmm")
    await hostile_reply_fails_at_once(VXI11, sim, fault, kind, message, FAULTS, clock)


async def test_the_device_s_io_timeout_is_a_timeout_and_the_driver_recovers(
    vxi11_sim: Start, clock: Any
) -> None:
    sim = await vxi11_sim("longscale-dmm")
    link = await VXI11.open(visa_config(sim.vxi11_resource, "longscale-dmm"))
    try:
        _server(sim).reply_fault = "io_timeout"
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("*IDN?")
        assert time.monotonic() - start < 0.5  # the device said so at once
    finally:
        link.close()
    config = visa_config(sim.vxi11_resource, "longscale-dmm")
    await driver_recovers(VXI11, sim, config, "io_timeout", clock, DriverTimeout)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("short", NotConnected),
        ("not_a_reply", NotConnected),
        ("wrong_xid", NotConnected),
        ("denied", NotConnected),
        ("bad_length", NotConnected),
        ("device_error", NotConnected),
        ("close", NotConnected),
        ("io_timeout", DriverTimeout),
    ],
)
async def test_a_hostile_reply_through_pyvisa_is_an_error_and_the_next_read_reopens(
    fault: str, error: type[Exception], vxi11_sim: Start, clock: Any
) -> None:
    # pyvisa-py's RPC client raises its own RPCError, xdrlib's errors and EOFError for these:
    # each is worded like any other link error, never let through as a driver bug.
    sim = await vxi11_sim("longscale-dmm")
    config = visa_config(sim.vxi11_resource, "longscale-dmm", timeout_s=1.0, socket_io="pyvisa")
    await driver_recovers(VXI11, sim, config, fault, clock, error)


async def test_a_server_that_stalls_inside_a_reply_is_a_timeout(vxi11_sim: Start) -> None:
    sim = await vxi11_sim("longscale-dmm")
    link = await VXI11.open(visa_config(sim.vxi11_resource, "longscale-dmm"))
    try:
        link.set_timeout(0.2)
        _server(sim).reply_fault = "truncated"  # the record never comes whole
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("*IDN?")
        assert 0.15 < time.monotonic() - start < 1.0
    finally:
        link.close()


async def test_a_simulated_vxi11_instrument_stays_on_vxi11(clock: Any) -> None:
    config = visa_config("TCPIP::192.0.2.31::INSTR", "longscale-dmm")
    async with simulate_visa(config) as simulated:
        address = simulated.vxi11_address()
        assert address is not None and address.core_port is not None
        driver = VisaDriver(simulated, clock)
        try:
            await driver.connect()
            (reading,) = await driver.read(simulated.channels)
            assert reading.quality is Quality.GOOD
        finally:
            await driver.close()


# -- the server against hostile clients -----------------------------------------------------------


async def _exchange(sim: ScpiSimulator, data: bytes, port: int | None = None) -> bytes:
    """Send ``data`` to the core channel (or ``port``); the next reply record, or b"" when the
    server closes the connection instead."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port or _server(sim).port)
    try:
        writer.write(data)
        async with asyncio.timeout(2):
            try:
                (mark,) = MARK.unpack(await reader.readexactly(4))
            except asyncio.IncompleteReadError:
                return b""
            return await reader.readexactly(mark & 0x7FFF_FFFF)
    finally:
        writer.close()


def _result(reply: bytes, xid: int) -> bytes:
    found, result = reply_body(reply)
    assert found == xid
    return result


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "oversized"),
        (MARK.pack(0x8000_0000 | 8) + b"\0\0\0\1\0\0\0\1", "malformed call"),
        (MARK.pack(0x8000_0018) + struct.pack("!IIIIII", 7, REPLY, 0, 0, 0, 0), "malformed call"),
    ],
    ids=["http", "short", "a-reply"],
)
async def test_the_server_closes_a_connection_that_speaks_no_rpc_and_counts_it(
    first: bytes, kind: str, vxi11_sim: Start
) -> None:
    sim = await vxi11_sim("longscale-dmm")
    assert await _exchange(sim, first) == b""  # closed
    assert _server(sim).protocol_faults[kind] == 1
    link = await VXI11.open(visa_config(sim.vxi11_resource, "longscale-dmm"))  # serves the next
    try:
        assert await link.query("*IDN?") == sim.instrument.idn
    finally:
        link.close()


async def test_the_server_answers_bad_calls_as_onc_rpc_says(vxi11_sim: Start) -> None:
    sim = await vxi11_sim("longscale-dmm")
    faults = _server(sim).protocol_faults
    # Another RPC version: MSG_DENIED, RPC_MISMATCH.
    bad_version = bytearray(call(1, CORE_PROG, CORE_VERS, CREATE_LINK, b""))
    bad_version[12:16] = struct.pack("!I", 3)
    reply = await _exchange(sim, bytes(bad_version))
    assert struct.unpack_from("!III", reply) == (1, REPLY, MSG_DENIED)
    for data, text in (
        (call(2, 0x1234, 1, 0, b""), "program unavailable"),
        (call(3, CORE_PROG, 9, 0, b""), "program version mismatch"),
        (call(4, CORE_PROG, CORE_VERS, 99, b"\0\0\0\1"), "procedure unavailable"),
        (call(5, CORE_PROG, CORE_VERS, CREATE_LINK, b"\0\0"), "garbage arguments"),
        (call(6, CORE_PROG, CORE_VERS, DEVICE_WRITE, struct.pack("!iIIi", 1, 1, 1, 8)), "garbage"),
    ):
        with pytest.raises(Exception, match=text):
            reply_body(await _exchange(sim, data))
    assert faults["RPC version"] == 1
    assert faults["program unavailable"] == faults["version mismatch"] == 1
    assert faults["procedure unavailable"] == 1 and faults["garbage arguments"] == 2
    # A link that does not exist: VXI-11 error 4.
    write = struct.pack("!iIIi", 4242, 1000, 0, FLAG_END) + opaque(b"*IDN?\n")
    result = _result(await _exchange(sim, call(7, CORE_PROG, CORE_VERS, DEVICE_WRITE, write)), 7)
    assert struct.unpack("!iI", result) == (4, 0)
    read = struct.pack("!iIIIii", 4242, 100, 1000, 0, 0, 0)
    result = _result(await _exchange(sim, call(8, CORE_PROG, CORE_VERS, DEVICE_READ, read)), 8)
    assert struct.unpack("!iiI", result) == (4, 0, 0)


async def test_the_server_closes_a_client_that_stalls_inside_a_record(vxi11_sim: Start) -> None:
    sim = await vxi11_sim("longscale-dmm")
    server = _server(sim)
    server.message_timeout_s = 0.2
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(MARK.pack(0x8000_0000 | 100) + b"\0\0\0\1")
        async with asyncio.timeout(2):
            assert await reader.read() == b""  # closed after 0.2 s
    finally:
        writer.close()
    assert server.protocol_faults["incomplete record"] == 1


async def test_the_portmapper_answers_getport_for_the_core_channel_only(vxi11_sim: Start) -> None:
    sim = await vxi11_sim("longscale-dmm")
    server = _server(sim)
    port = server.portmapper_port
    core = struct.pack("!IIII", CORE_PROG, CORE_VERS, 6, 0)
    other = struct.pack("!IIII", 100003, 3, 6, 0)  # NFS: not here
    assert _result(await _exchange(sim, call(1, 100000, 2, 3, core), port), 1) == MARK.pack(
        server.port
    )
    assert _result(await _exchange(sim, call(2, 100000, 2, 3, other), port), 2) == MARK.pack(0)
    with pytest.raises(Exception, match="procedure unavailable"):
        reply_body(await _exchange(sim, call(3, 100000, 2, 4, b""), port))


# -- which way a config takes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "overrides", "address"),
    [
        ("TCPIP::10.0.0.5::INSTR", {}, ("10.0.0.5", "inst0", None, 111)),
        ("TCPIP0::10.0.0.5::inst0::INSTR", {}, ("10.0.0.5", "inst0", None, 111)),
        ("tcpip1::dmm.lab::inst1::instr", {}, ("dmm.lab", "inst1", None, 111)),
        ("TCPIP::10.0.0.5::gpib0,22::INSTR", {}, ("10.0.0.5", "gpib0,22", None, 111)),
        ("TCPIP::10.0.0.5,1024::INSTR", {}, ("10.0.0.5", "inst0", 1024, 111)),
        ("TCPIP::h::INSTR", {"vxi11_portmapper_port": 1111}, ("h", "inst0", None, 1111)),
        ("TCPIP0::[fe80::1]::INSTR", {}, ("fe80::1", "inst0", None, 111)),
        ("TCPIP::10.0.0.5::INSTR", {"read_termination": None}, ("10.0.0.5", "inst0", None, 111)),
        ("TCPIP::10.0.0.5::INSTR", {"socket_io": "pyvisa"}, None),
        ("TCPIP::10.0.0.5::INSTR", {"backend": "@ivi"}, None),
        ("TCPIP::10.0.0.5::hislip0::INSTR", {}, None),
        ("TCPIP::10.0.0.5::hislip0,4881::INSTR", {}, None),
        ("TCPIP::10.0.0.5::5025::SOCKET", {}, None),
        ("GPIB0::22::INSTR", {}, None),
        ("USB0::0x2A8D::0x0101::MY1::INSTR", {}, None),
    ],
)
def test_vxi11_resources_on_pyvisa_py_take_the_asyncio_way(
    resource: str, overrides: dict[str, Any], address: tuple[str, str, int | None, int] | None
) -> None:
    config = visa_config(resource, "longscale-dmm", **overrides)
    assert config.vxi11_address() == address
    if address is not None:
        assert config.socket_address() is None and config.hislip_address() is None
