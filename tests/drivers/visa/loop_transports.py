"""What the tests of etalon's asyncio links over the SCPI simulator's own protocol servers (HiSLIP,
VXI-11) share: a scripted exchange run through bare pyvisa-py and through a link, each transport
as the tests reach it (:class:`Transport`), a hostile reply met by a link and the driver's
recovery from it."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

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


Server = HislipServer | Vxi11Server


class Transport:
    """One of the simulator's protocol servers, as the tests reach it."""

    name = ""
    per_session = 1
    """The TCP connections one session opens."""

    def server(self, sim: ScpiSimulator) -> Server:
        """The simulator's server of this protocol (its connections, its reply faults)."""
        raise NotImplementedError

    def resource(self, sim: ScpiSimulator) -> str:
        """The resource name that reaches the simulator, for pyvisa-py and etalon alike."""
        raise NotImplementedError

    async def open(self, config: VisaInstrument) -> Link:
        """etalon's link of this protocol, open."""
        raise NotImplementedError

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        """The server takes a program message in pieces of ``size`` bytes at most."""
        raise NotImplementedError


class Hislip(Transport):
    name = "hislip"
    per_session = 2  # the synchronous and the asynchronous channel

    def server(self, sim: ScpiSimulator) -> HislipServer:
        assert sim.hislip is not None
        return sim.hislip

    def resource(self, sim: ScpiSimulator) -> str:
        return sim.hislip_resource

    async def open(self, config: VisaInstrument) -> HislipLink:
        address = config.hislip_address()
        assert address is not None
        return await HislipLink.open(config, address, 2.0)

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        self.server(sim).max_message = HEADER_SIZE + size


class Vxi11(Transport):
    name = "vxi11"

    def server(self, sim: ScpiSimulator) -> Vxi11Server:
        assert sim.vxi11 is not None
        return sim.vxi11

    def resource(self, sim: ScpiSimulator) -> str:
        return sim.vxi11_resource

    async def open(self, config: VisaInstrument) -> Vxi11Link:
        address = config.vxi11_address()
        assert address is not None
        return await Vxi11Link.open(config, address, 2.0)

    def take_pieces(self, sim: ScpiSimulator, size: int) -> None:
        self.server(sim).max_recv_size = size


HISLIP = Hislip()
VXI11 = Vxi11()
TRANSPORTS: dict[str, Transport] = {"hislip": HISLIP, "vxi11": VXI11}

Start = Callable[..., Any]


def serving(scpi_sim: Start, **options: Any) -> Start:
    """A starter of SCPI simulators (the ``scpi_sim`` fixture's) with ``options`` on: those
    that serve HiSLIP or VXI-11 too."""

    async def start(personality: str, **config: Any) -> ScpiSimulator:
        simulator: ScpiSimulator = await scpi_sim(personality, **options, **config)
        return simulator

    return start


async def driver_recovers(
    server: Server,
    config: VisaInstrument,
    fault: str,
    clock: Any,
    error: type[Exception] = NotConnected,
) -> None:
    """The driver of ``config`` meets ``fault`` in a reply of ``server``: ``error``, then the
    next read re-opens the session and is good."""
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        server.reply_fault = fault
        with pytest.raises(error):
            await driver.read(config.channels)
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
    server = transport.server(sim)
    link = await transport.open(visa_config(transport.resource(sim), "longscale-dmm"))
    counted = faults[kind] if kind else 0
    try:
        server.reply_fault = fault
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
    await driver_recovers(server, config, fault, clock)
