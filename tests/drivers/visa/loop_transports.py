"""What the tests of etalon's asyncio links over the SCPI simulator's own servers share (HiSLIP,
VXI-11, the pseudo-terminal a serial link opens): a scripted exchange run through bare pyvisa-py
and through a link, each transport as the tests reach it (:class:`Transport`), a hostile reply
met by a link and the driver's recovery from it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import pyvisa

from core.errors import NotConnected
from drivers.reading import Quality
from drivers.sim.scpi import ScpiSimulator
from drivers.sim.scpi_hislip import HislipServer
from drivers.sim.scpi_vxi11 import Vxi11Server
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.hislip_link import HislipLink
from drivers.visa.hislip_wire import HEADER_SIZE
from drivers.visa.link import Link, LinkError
from drivers.visa.serial_link import SerialLink
from drivers.visa.vxi11_link import Vxi11Link
from tests.drivers.visa.conftest import visa_config

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
"""A generic DMM's exchange: ``?`` in a command makes it a query."""

TERMINATIONS = [
    pytest.param({}, id="newline"),
    pytest.param({"read_termination": None}, id="no-read-termination"),
    pytest.param({"read_termination": "\r\n", "write_termination": "\r\n"}, id="crlf"),
    pytest.param({"encoding": "latin-1"}, id="latin-1"),
]
"""Config overrides a same-replies test runs the script with (``options``)."""


def bare_pyvisa(resource: str, script: list[str], **options: Any) -> list[str | None]:
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


async def run_script(link: Link, script: list[str]) -> list[str | None]:
    """The script through one of etalon's links, as :func:`bare_pyvisa` runs it."""
    replies: list[str | None] = []
    for command in script:
        if "?" in command:
            replies.append(await link.query(command))
        else:
            await link.write(command)
            replies.append(None)
    return replies


async def same_replies_as_bare_pyvisa_py(
    transport: Transport, config: VisaInstrument
) -> list[str | None]:
    """:data:`SCRIPT` gets the same replies through bare pyvisa-py (the config's terminations,
    encoding and baud rate) and through the transport's link to ``config.resource``, cleared
    first, pyvisa-py's session closed before the link opens (a serial port is held by one side
    at a time); bare pyvisa-py's replies, for the caller's own checks."""
    pyvisa_options: dict[str, Any] = {
        "read_termination": config.read_termination,
        "write_termination": config.write_termination,
        "encoding": config.encoding,
    }
    if config.serial is not None:
        pyvisa_options["baud_rate"] = config.serial.baud_rate
    with warnings.catch_warnings():  # pyvisa warns of a reply without the whole termination
        warnings.simplefilter("ignore", UserWarning)
        bare = await asyncio.to_thread(bare_pyvisa, config.resource, SCRIPT, **pyvisa_options)
    link = await transport.open(config)
    try:
        await link.clear()
        ours = await run_script(link, SCRIPT)
    finally:
        link.close()
    assert ours == bare
    return bare


def the_script_s_replies_are_the_instrument_s(
    sim: ScpiSimulator, config: VisaInstrument, bare: list[str | None]
) -> None:
    """Bare pyvisa-py's replies to :data:`SCRIPT` (over HiSLIP, or a serial port) are the
    simulated instrument's: without a read termination a reply keeps its newline (a serial one
    too: pyvisa-py still ends it at LF), and the BOGUS command queued -113."""
    assert bare[2] == sim.instrument.idn + ("\n" if config.read_termination != "\n" else "")
    assert bare[10] is not None and bare[10].startswith("-113")


class Transport:
    """One of the simulator's ways in, as the tests reach it."""

    name = ""
    per_session = 1
    """The TCP connections one session opens."""
    sim_options: ClassVar[dict[str, bool]] = {}
    """What a simulator's config needs to serve this transport."""

    def connections(self, sim: ScpiSimulator) -> int | None:
        """The connections the simulator's server has accepted, or None where nothing counts
        them (a serial port is opened, not connected to)."""
        raise NotImplementedError

    def resource(self, sim: ScpiSimulator) -> str:
        """The resource name that reaches the simulator, for pyvisa-py and etalon alike."""
        raise NotImplementedError

    async def open(self, config: VisaInstrument) -> Link:
        """etalon's link of this transport, open."""
        raise NotImplementedError

    def spoil_next_reply(self, sim: ScpiSimulator, fault: str) -> None:
        """The simulator's next reply on this transport is ``fault`` (one of its reply faults)."""
        raise NotImplementedError

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        """The server takes a program message in pieces of ``size`` bytes at most."""
        raise NotImplementedError


class Hislip(Transport):
    name = "hislip"
    per_session = 2  # the synchronous and the asynchronous channel
    sim_options: ClassVar[dict[str, bool]] = {"hislip": True}

    def server(self, sim: ScpiSimulator) -> HislipServer:
        assert sim.hislip is not None
        return sim.hislip

    def connections(self, sim: ScpiSimulator) -> int:
        return self.server(sim).connections

    def resource(self, sim: ScpiSimulator) -> str:
        return sim.hislip_resource

    async def open(self, config: VisaInstrument) -> HislipLink:
        address = config.hislip_address()
        assert address is not None
        return await HislipLink.open(config, address, 2.0)

    def spoil_next_reply(self, sim: ScpiSimulator, fault: str) -> None:
        self.server(sim).reply_fault = fault

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        self.server(sim).max_message = HEADER_SIZE + size


class Vxi11(Transport):
    name = "vxi11"
    sim_options: ClassVar[dict[str, bool]] = {"vxi11": True}

    def server(self, sim: ScpiSimulator) -> Vxi11Server:
        assert sim.vxi11 is not None
        return sim.vxi11

    def connections(self, sim: ScpiSimulator) -> int:
        return self.server(sim).connections

    def resource(self, sim: ScpiSimulator) -> str:
        return sim.vxi11_resource

    async def open(self, config: VisaInstrument) -> Vxi11Link:
        address = config.vxi11_address()
        assert address is not None
        return await Vxi11Link.open(config, address, 2.0)

    def spoil_next_reply(self, sim: ScpiSimulator, fault: str) -> None:
        self.server(sim).reply_fault = fault

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        self.server(sim).max_recv_size = size


class Serial(Transport):
    """The simulator's pseudo-terminal (no TCP server beside it), through a serial link."""

    name = "serial"
    per_session = 0
    sim_options: ClassVar[dict[str, bool]] = {"tcp": False, "pty": True}

    def connections(self, sim: ScpiSimulator) -> None:
        return None

    def resource(self, sim: ScpiSimulator) -> str:
        return sim.asrl_resource

    async def open(self, config: VisaInstrument) -> SerialLink:
        port = config.serial_port()
        assert port is not None
        return await SerialLink.open(config, port)

    def spoil_next_reply(self, sim: ScpiSimulator, fault: str) -> None:
        sim.pty_fault = fault


HISLIP = Hislip()
VXI11 = Vxi11()
SERIAL = Serial()
TRANSPORTS: dict[str, Transport] = {"hislip": HISLIP, "serial": SERIAL, "vxi11": VXI11}


def on_the_loop(**not_for: str) -> pytest.MarkDecorator:
    """Parametrize a test over every transport (``transport``); ``not_for`` names those it does
    not apply to, each with why (the test is skipped there, saying so)."""
    assert set(not_for) <= set(TRANSPORTS), not_for
    return pytest.mark.parametrize(
        "transport",
        [
            pytest.param(
                transport,
                id=name,
                marks=[pytest.mark.skip(reason=not_for[name])] if name in not_for else [],
            )
            for name, transport in sorted(TRANSPORTS.items())
        ],
    )


Start = Callable[..., Any]


def serving(scpi_sim: Start, **options: Any) -> Start:
    """A starter of SCPI simulators (the ``scpi_sim`` fixture's) with ``options`` on: those
    that serve HiSLIP or VXI-11 too."""

    async def start(personality: str, **config: Any) -> ScpiSimulator:
        simulator: ScpiSimulator = await scpi_sim(personality, **options, **config)
        return simulator

    return start


async def driver_recovers(
    transport: Transport,
    sim: ScpiSimulator,
    config: VisaInstrument,
    fault: str,
    clock: Any,
    error: type[Exception] = NotConnected,
    after: Callable[[], None] | None = None,
) -> None:
    """The driver of ``config`` meets ``fault`` in a reply of the simulator on ``transport``:
    ``error``, then (``after`` the error, when given) the next read re-opens the session and is
    good."""
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        transport.spoil_next_reply(sim, fault)
        with pytest.raises(error):
            await driver.read(config.channels)
        if after is not None:
            after()
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
    finally:
        await driver.close()


async def hostile_reply_fails_at_once(
    transport: Transport,
    sim: ScpiSimulator,
    fault: str,
    kind: str | None,
    message: str,
    faults: Counter[str],
    clock: Any,
) -> None:
    """The transport's link meets the reply ``fault``: a LinkError matching ``message`` at once
    (not the timeout), counted under ``kind`` in the link module's ``faults`` (None: not a
    protocol fault), the link spent; then the driver says so and re-opens at the next read."""
    link = await transport.open(visa_config(transport.resource(sim), "longscale-dmm"))
    counted = faults[kind] if kind else 0
    try:
        transport.spoil_next_reply(sim, fault)
        start = time.monotonic()
        with pytest.raises(LinkError, match=message):
            await link.query("*IDN?")
        assert time.monotonic() - start < 0.5  # not the timeout
        if kind is not None:
            assert faults[kind] == counted + 1
        with pytest.raises(LinkError):  # the session is spent
            await link.query("*IDN?")
    finally:
        link.close()
    config = visa_config(transport.resource(sim), "longscale-dmm")
    await driver_recovers(transport, sim, config, fault, clock)
