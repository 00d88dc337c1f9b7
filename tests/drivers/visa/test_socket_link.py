"""The two links to a SOCKET resource behave alike: etalon's asyncio socket against pyvisa-py, on
the same scripted instrument over a real loopback socket — terminations, replies split or
joined, query delay, encoding, timeouts. And which resources take which way."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import NotConnected
from drivers.reading import Quality
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.link import Link, LinkError, drive
from drivers.visa.pyvisa_link import PyvisaLink
from drivers.visa.socket_link import MAX_PENDING, SocketLink
from tests.drivers.visa.conftest import visa_config

Script = Callable[[bytes], list[bytes] | None]
"""What the scripted instrument sends back for each command it receives (as chunks; None: it
closes the connection)."""


class Scripted:
    """A TCP instrument on loopback that answers each received line by its script, logging what
    it received; a chunk ``b""`` is a 50 ms pause."""

    def __init__(self, script: Script, line_end: bytes = b"\n") -> None:
        self.script = script
        self.line_end = line_end
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readuntil(self.line_end)
                self.received.append(line)
                chunks = self.script(line)
                if chunks is None:
                    break
                for chunk in chunks:
                    if chunk:
                        writer.write(chunk)
                        await writer.drain()
                    else:
                        await asyncio.sleep(0.05)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Any]]:
    """Start scripted instruments; all closed at the end."""
    started: list[Scripted] = []

    async def start(script: Script, line_end: bytes = b"\n") -> Scripted:
        instrument = Scripted(script, line_end)
        instrument.server = await asyncio.start_server(instrument._serve, "127.0.0.1", 0)
        started.append(instrument)
        return instrument

    yield start
    for instrument in started:
        assert instrument.server is not None
        instrument.server.close()


def _config(port: int, **overrides: Any) -> VisaInstrument:
    return visa_config(f"TCPIP::127.0.0.1::{port}::SOCKET", "longscale-dmm", **overrides)


class Way:
    """One link, opened and used the way the driver does (pyvisa's on a thread)."""

    def __init__(self, name: str, link: Link) -> None:
        self.name = name
        self.link = link

    @classmethod
    async def open(cls, name: str, config: VisaInstrument) -> Way:
        if name == "asyncio":
            address = config.socket_address()
            assert address is not None
            return cls(name, await SocketLink.open(config, address, 2.0))
        return cls(name, await asyncio.to_thread(PyvisaLink.open, config, 2.0))

    @classmethod
    @asynccontextmanager
    async def opened(cls, name: str, config: VisaInstrument) -> AsyncIterator[Way]:
        """:meth:`open`, closed when the block ends."""
        way = await cls.open(name, config)
        try:
            yield way
        finally:
            way.link.close()

    async def query(self, command: str) -> str:
        if self.name == "asyncio":
            return await self.link.query(command)
        return await asyncio.to_thread(drive, self.link.query(command))

    async def write(self, command: str) -> None:
        if self.name == "asyncio":
            await self.link.write(command)
        else:
            await asyncio.to_thread(drive, self.link.write(command))


WAYS = pytest.mark.parametrize("way", ["asyncio", "pyvisa"])


@WAYS
async def test_a_multi_character_termination_is_stripped_and_a_short_one_kept(
    way: str, scripted: Callable[..., Any]
) -> None:
    replies = iter([[b"+1.5\r\n"], [b"+2.5\n"]])  # the second lacks the \r
    instrument = await scripted(lambda _: next(replies), line_end=b"\r\n")
    config = _config(instrument.port, read_termination="\r\n", write_termination="\r\n")
    async with Way.opened(way, config) as link:
        assert await link.query("READ?") == "+1.5"
        # The read stops at the termination's last character; pyvisa returns the reply as it
        # came when the whole termination is not there (and warns).
        warned = (
            pytest.warns(UserWarning, match="termination") if way == "pyvisa" else nullcontext()
        )
        with warned:
            assert await link.query("READ?") == "+2.5\n"
    assert instrument.received == [b"READ?\r\n", b"READ?\r\n"]


@WAYS
async def test_replies_split_or_joined_on_the_wire_are_read_one_at_a_time(
    way: str, scripted: Callable[..., Any]
) -> None:
    scripts = iter([[b"+1.2", b"", b"34\n"], [b"+1\n+2\n"], []])
    instrument = await scripted(lambda _: next(scripts))
    async with Way.opened(way, _config(instrument.port)) as link:
        assert await link.query("A?") == "+1.234"
        assert await link.query("B?") == "+1"
        assert await link.query("C?") == "+2"  # already there: the bytes after the first reply


@WAYS
async def test_the_query_delay_passes_between_the_write_and_the_read(
    way: str, scripted: Callable[..., Any]
) -> None:
    instrument = await scripted(lambda _: [b"+1\n"])
    async with Way.opened(way, _config(instrument.port, query_delay_s=0.2)) as link:
        start = time.monotonic()
        assert await link.query("READ?") == "+1"
        assert time.monotonic() - start >= 0.2


@WAYS
async def test_encoding_applies_both_ways_and_an_undecodable_reply_says_so(
    way: str, scripted: Callable[..., Any]
) -> None:
    replies = iter([["5 µV\n".encode("latin-1")], [b"\xff\xfe\n"]])
    instrument = await scripted(lambda _: next(replies))
    async with Way.opened(way, _config(instrument.port, encoding="latin-1")) as link:
        assert await link.query("UNIT µ") == "5 µV"
        assert instrument.received == ["UNIT µ\n".encode("latin-1")]
    async with Way.opened(way, _config(instrument.port)) as ascii_link:
        with pytest.raises(UnicodeDecodeError):
            await ascii_link.query("READ?")


@WAYS
async def test_no_reply_is_a_timeout_after_the_links_timeout(
    way: str, scripted: Callable[..., Any]
) -> None:
    instrument = await scripted(lambda _: [b"+1"])  # no termination: never a whole reply
    async with Way.opened(way, _config(instrument.port)) as link:
        link.link.set_timeout(0.2)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await link.query("READ?")
        assert 0.15 < time.monotonic() - start < 1.5


async def test_a_closed_connection_fails_the_read_at_once_on_the_asyncio_way(
    scripted: Callable[..., Any],
) -> None:
    # pyvisa-py takes a closed socket for silence (a timeout); the asyncio way knows.
    instrument = await scripted(lambda line: None if line == b"BYE?\n" else [b"+1\n"])
    async with Way.opened("asyncio", _config(instrument.port)) as link:
        start = time.monotonic()
        with pytest.raises(LinkError, match="connection closed by the instrument"):
            await link.query("BYE?")
        assert time.monotonic() - start < 0.5  # not the 1 s timeout
        with pytest.raises(LinkError):
            await link.query("READ?")


async def test_an_endless_reply_gives_the_connection_up_instead_of_filling_memory(
    scripted: Callable[..., Any],
) -> None:
    flood = [b"1" * 65536] * (MAX_PENDING // 65536 + 2)  # no termination, ever
    instrument = await scripted(lambda _: flood)
    async with Way.opened("asyncio", _config(instrument.port)) as link:
        with pytest.raises(LinkError, match="bytes unread"):
            await link.query("READ?")
        with pytest.raises(LinkError):  # the session is spent: the driver re-opens
            await link.query("READ?")


async def test_replies_nobody_asked_for_give_the_connection_up_instead_of_filling_memory(
    scripted: Callable[..., Any],
) -> None:
    # An instrument left in talk-only mode answers one query with an endless stream of whole
    # lines: each is terminated, so only the unread total can tell.
    line = b"+1.23456789E+00\n"
    flood = [line * 4096] * (MAX_PENDING // (len(line) * 4096) + 2)
    instrument = await scripted(lambda _: flood)
    async with Way.opened("asyncio", _config(instrument.port)) as link:
        assert isinstance(link.link, SocketLink)
        replies = link.link._wire
        assert await link.query("READ?") == "+1.23456789E+00"
        async with asyncio.timeout(5):
            while replies.lost is None:  # noqa: ASYNC110 - the protocol sets no event
                await asyncio.sleep(0.01)
        assert "bytes unread" in replies.lost and len(replies.buffer) == 0
        with pytest.raises(LinkError):  # the session is spent: the driver re-opens
            await link.query("READ?")


async def test_a_socket_session_runs_on_the_loop_without_a_thread(
    scpi_sim: Callable[..., Any], clock: Any
) -> None:
    sim = await scpi_sim("longscale-dmm")
    config = visa_config(sim.tcp_resource, "longscale-dmm")
    before = {t.name for t in threading.enumerate()}
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        (reading,) = await driver.read(config.channels)
        assert reading.quality is Quality.GOOD
        assert {t.name for t in threading.enumerate()} <= before  # no worker thread made
    finally:
        await driver.close()


@pytest.mark.parametrize("medium", ["tcp", "pty"])
async def test_a_driver_on_the_loop_connects_again_under_another_event_loop(
    medium: str, scpi_sim: Callable[..., Any], clock: Any
) -> None:
    sim = await scpi_sim("longscale-dmm", pty=medium == "pty")
    config = visa_config(
        sim.tcp_resource if medium == "tcp" else sim.asrl_resource, "longscale-dmm"
    )
    driver = VisaDriver(config, clock)

    async def use() -> list[Quality]:
        await driver.connect()
        try:
            # Two reads at once: they take turns (the turn is this loop's, not an ended one's).
            first, second = await asyncio.gather(*(driver.read(config.channels) for _ in "ab"))
            return [first[0].quality, second[0].quality]
        finally:
            await driver.close()

    def scenario() -> list[list[Quality]]:  # one asyncio.run after another, as a CLI would
        return [asyncio.run(use()), asyncio.run(use())]

    assert await asyncio.to_thread(scenario) == [[Quality.GOOD] * 2] * 2


async def test_an_undecodable_reply_spoils_only_its_reading_on_the_asyncio_way(
    scripted: Callable[..., Any], clock: Any
) -> None:
    replies = {b"*IDN?\n": b"ACME,DMM,1,2\n", b"READ?\n": b"\xff+1\n"}
    instrument = await scripted(lambda line: [replies.get(line, b'+0,"No error"\n')])
    config = visa_config(
        f"TCPIP::127.0.0.1::{instrument.port}::SOCKET",
        "longscale-dmm",
        init=[],
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        (reading,) = await driver.read(config.channels)
    finally:
        await driver.close()
    assert reading.quality is Quality.BAD
    assert reading.reason is not None and "reply is not ascii" in reading.reason


async def test_nothing_listening_is_not_connected_on_the_asyncio_way(clock: Any) -> None:
    from tests.support.services import free_port

    config = visa_config(f"TCPIP::127.0.0.1::{free_port()}::SOCKET", "longscale-dmm")
    with pytest.raises(NotConnected, match="ConnectionRefusedError"):
        await VisaDriver(config, clock).connect()


# -- which way a config takes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "overrides", "address"),
    [
        ("TCPIP::10.0.0.5::5025::SOCKET", {}, ("10.0.0.5", 5025)),
        ("tcpip0::dmm.lab::5025::socket", {}, ("dmm.lab", 5025)),
        ("TCPIP0::[fe80::1]::5025::SOCKET", {}, ("fe80::1", 5025)),
        ("TCPIP::10.0.0.5::5025::SOCKET", {"socket_io": "pyvisa"}, None),
        ("TCPIP::10.0.0.5::5025::SOCKET", {"backend": "@ivi"}, None),
        ("TCPIP::10.0.0.5::5025::SOCKET", {"read_termination": None}, None),
        ("TCPIP::10.0.0.5::inst0::INSTR", {}, None),
        ("TCPIP::10.0.0.5::hislip0::INSTR", {}, None),
        ("GPIB0::22::INSTR", {}, None),
        ("ASRL/dev/ttyUSB0::INSTR", {}, None),
    ],
)
def test_only_socket_resources_on_pyvisa_py_take_the_asyncio_way(
    resource: str, overrides: dict[str, Any], address: tuple[str, int] | None
) -> None:
    assert visa_config(resource, "longscale-dmm", **overrides).socket_address() == address


@pytest.mark.parametrize("value", ["asyncio", "", 1, None, "PYVISA"])
def test_a_bad_socket_io_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        visa_config("TCPIP::10.0.0.5::5025::SOCKET", "longscale-dmm", socket_io=value)
    assert refused.value.errors()[0]["loc"] == ("socket_io",)
    assert "'auto' or 'pyvisa'" in refused.value.errors()[0]["msg"]
