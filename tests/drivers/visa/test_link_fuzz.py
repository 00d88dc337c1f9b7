"""Seeded fuzzing of etalon's asyncio links against hostile instruments of our own
(:mod:`tests.drivers.visa.fuzz_peers`): each link (raw SOCKET, HiSLIP, VXI-11, serial) meets a
few hundred instruments that answer its first requests correctly and then send seeded-random
hostile bytes. For every case the link keeps its contract (:mod:`drivers.visa.link`): an open
fails with ``NotConnected`` only; a query ends within its timeout and a margin, with its reply,
``TimeoutError``, ``LinkError`` or ``UnicodeDecodeError`` (anything else is a bug); what the
link holds stays within its bounds; and a new link to the same instrument, good again, works.

The cases of a batch run concurrently (each on its own server or pseudo-terminal), so a case
that waits out its timeout costs the batch little. A failure names its seed: ``SEEDS`` and
:func:`~tests.drivers.visa.fuzz_peers.case_rng` replay it."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable

import pytest

from core.errors import NotConnected
from drivers.visa import hislip_wire
from drivers.visa.config import VisaInstrument
from drivers.visa.hislip_link import FAULTS as HISLIP_FAULTS
from drivers.visa.hislip_link import MAX_REPLY as HISLIP_MAX_REPLY
from drivers.visa.hislip_link import HislipLink, _Channel
from drivers.visa.hislip_wire import ANY_MESSAGE_ID, HEADER_SIZE, MAX_MESSAGE, Message
from drivers.visa.link import Link, LinkError
from drivers.visa.serial_link import SerialLink
from drivers.visa.socket_link import MAX_PENDING, SocketLink
from drivers.visa.vxi11_link import Vxi11Link
from drivers.visa.vxi11_wire import MAX_RECORD
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.fuzz_peers import (
    GOOD_REPLY,
    HostilePty,
    Peer,
    case_rng,
    hislip_good,
    hislip_good_async,
    hislip_message,
    hislip_peer,
    socket_hostile,
    socket_peer,
    vxi11_peer,
)

SEEDS = range(320)
"""The seeds of each link's cases."""
BATCHES = 4
CONCURRENT = 32
"""Cases of a batch running at once."""
TIMEOUT_S = 0.2
"""The links' I/O timeout (and open timeout) in the cases."""
MARGIN_S = 2.0
"""How far past its timeout a call may end (the cases of a batch share two cores with other
tests)."""
CHUNK = 256 * 1024
"""The most bytes one ``data_received`` brings (asyncio's selector transports)."""
ALLOWED = (TimeoutError, LinkError, UnicodeDecodeError)

Case = Callable[[int], Awaitable[None]]


def batch(n: int) -> list[int]:
    return [seed for seed in SEEDS if seed % BATCHES == n]


BATCH_IDS = pytest.mark.parametrize("n", range(BATCHES), ids=lambda n: f"batch{n}")


async def run_cases(seeds: list[int], case: Case) -> None:
    """Every case, ``CONCURRENT`` at a time; all failures reported with their seeds."""
    failures: list[str] = []
    limit = asyncio.Semaphore(CONCURRENT)

    async def one(seed: int) -> None:
        async with limit:
            try:
                await case(seed)
            except Exception as exc:  # noqa: BLE001 — any failure of a case, named by its seed
                trace = "".join(traceback.format_exception(exc)[-6:])
                failures.append(f"seed {seed}: {type(exc).__name__}: {exc}\n{trace}")

    await asyncio.gather(*(one(seed) for seed in seeds))
    assert not failures, f"{len(failures)} failing seeds:\n" + "\n".join(failures[:5])


async def within(call: Awaitable[object], seconds: float, what: str) -> BaseException | None:
    """Run ``call``: the exception it ended with (None when it returned); AssertionError when it
    outlives ``seconds`` and the margin (a hang)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds + MARGIN_S)
    if not done:
        task.cancel()
        raise AssertionError(f"{what} still running {seconds + MARGIN_S:g} s later (a hang)")
    return task.exception()


async def hostile_queries(link: Link, holds: Callable[[], None]) -> None:
    """Two queries, each ending in time with a reply or an allowed error; ``holds`` checks the
    link's bounds after each. Stops at the first error (the link is spent)."""
    for _ in range(2):
        error = await within(link.query("*IDN?"), TIMEOUT_S, "a query")
        holds()
        if error is None:
            continue
        if not isinstance(error, ALLOWED):
            raise AssertionError(f"a query raised {type(error).__name__}: {error}") from error
        return


async def opens(open_: Awaitable[Link]) -> Link | None:
    """The link, or None when the open failed as it may (NotConnected, in time)."""
    task = asyncio.ensure_future(open_)
    error = await within(task, TIMEOUT_S, "an open")
    if error is None:
        return task.result()
    if not isinstance(error, NotConnected):
        raise AssertionError(f"an open raised {type(error).__name__}: {error}") from error
    return None


async def reopens(open_: Callable[[], Awaitable[Link]]) -> None:
    """A new link to the instrument, good again, opens and reads its reply."""
    link = await open_()
    try:
        assert await link.query("*IDN?") == GOOD_REPLY.decode().strip()
    finally:
        link.close()


def config_for(resource: str, **overrides: object) -> VisaInstrument:
    return visa_config(resource, "generic-dmm", **{"timeout_s": TIMEOUT_S, **overrides})


# -- raw SOCKET ---------------------------------------------------------------------------------


async def socket_case(seed: int) -> None:
    peer = await socket_peer(seed, flood=seed % 40 == 0).start()
    config = config_for(f"TCPIP::127.0.0.1::{peer.port}::SOCKET")
    address = ("127.0.0.1", peer.port)
    try:
        link = await opens(SocketLink.open(config, address, TIMEOUT_S))
        assert link is not None
        assert isinstance(link, SocketLink)
        try:
            await hostile_queries(link, lambda: _socket_holds(link))
        finally:
            link.close()
        peer.good = True
        await reopens(lambda: SocketLink.open(config, address, TIMEOUT_S))
    finally:
        await peer.stop()


def _socket_holds(link: SocketLink) -> None:
    assert len(link._wire.buffer) <= MAX_PENDING


@BATCH_IDS
async def test_socket_link_survives_hostile_instruments(n: int) -> None:
    await run_cases(batch(n), socket_case)


# -- HiSLIP -------------------------------------------------------------------------------------


async def hislip_case(seed: int) -> None:
    peer, _ = hislip_peer(seed)
    await peer.start()
    config = config_for(f"TCPIP::127.0.0.1::hislip0,{peer.port}::INSTR")
    address = ("127.0.0.1", peer.port, "hislip0")
    try:
        link = await opens(HislipLink.open(config, address, TIMEOUT_S))
        if link is not None:
            assert isinstance(link, HislipLink)
            try:
                await hostile_queries(link, lambda: _hislip_holds(link))
            finally:
                link.close()
        peer.good = True
        await reopens(lambda: HislipLink.open(config, address, TIMEOUT_S))
    finally:
        await peer.stop()


def _hislip_holds(link: HislipLink) -> None:
    session = link._wire
    held = len(session.pieces) + sum(map(len, session.ready))
    assert held <= HISLIP_MAX_REPLY, held
    # Empty replies cost a list entry each: their number is bounded too.
    assert len(session.ready) * HEADER_SIZE <= HISLIP_MAX_REPLY, len(session.ready)
    for transport in (session.sync, session.async_):
        if transport is not None:
            channel = transport.get_protocol()
            if isinstance(channel, _Channel):  # (None once closed)
                assert len(channel.buffer) <= MAX_MESSAGE + CHUNK, len(channel.buffer)


@BATCH_IDS
async def test_hislip_link_survives_hostile_instruments(n: int) -> None:
    await run_cases(batch(n), hislip_case)


# -- VXI-11 -------------------------------------------------------------------------------------


async def vxi11_case(seed: int) -> None:
    mapper, core, phase = vxi11_peer(seed)
    await core.start()
    await mapper.start()
    if phase == "getport" or seed % 2:  # through the portmapper
        config = config_for("TCPIP::127.0.0.1::inst0::INSTR", vxi11_portmapper_port=mapper.port)
    else:
        config = config_for(f"TCPIP::127.0.0.1,{core.port}::INSTR")
    address = config.vxi11_address()
    assert address is not None
    try:
        link = await opens(Vxi11Link.open(config, address, TIMEOUT_S))
        if link is not None:
            assert isinstance(link, Vxi11Link)
            try:
                await hostile_queries(link, lambda: _vxi11_holds(link))
            finally:
                link.close()
        mapper.good = core.good = True
        await reopens(lambda: Vxi11Link.open(config, address, TIMEOUT_S))
    finally:
        await mapper.stop()
        await core.stop()


def _vxi11_holds(link: Vxi11Link) -> None:
    rpc = link._wire
    assert len(rpc.fragments) <= MAX_RECORD, len(rpc.fragments)
    assert len(rpc.buffer) <= MAX_RECORD + 4 + CHUNK, len(rpc.buffer)


@BATCH_IDS
async def test_vxi11_link_survives_hostile_instruments(n: int) -> None:
    await run_cases(batch(n), vxi11_case)


# -- serial -------------------------------------------------------------------------------------


async def serial_case(seed: int) -> None:
    rng = case_rng("serial", seed)
    pty = HostilePty()
    try:
        config = config_for(f"ASRL{pty.path}::INSTR")
        link = await opens(SerialLink.open(config, pty.path))
        assert isinstance(link, SerialLink)
        hostile = socket_hostile(rng, flood=seed % 40 == 0)
        hang_up = rng.random() < 0.3

        async def instrument() -> None:
            if await pty.line(TIMEOUT_S + MARGIN_S):
                await pty.write(hostile, TIMEOUT_S + MARGIN_S)
            if hang_up:
                pty.hang_up()

        answering = asyncio.create_task(instrument())
        try:
            await hostile_queries(link, lambda: _serial_holds(link))
        finally:
            link.close()
            await answering
    finally:
        pty.close()
    good = HostilePty()  # the port again (a new one when the other end hung up)
    try:

        async def answer() -> None:
            if await good.line(TIMEOUT_S + MARGIN_S):
                await good.write(GOOD_REPLY, TIMEOUT_S)

        answering = asyncio.create_task(answer())
        await reopens(lambda: SerialLink.open(config_for(f"ASRL{good.path}::INSTR"), good.path))
        await answering
    finally:
        good.close()


def _serial_holds(link: SerialLink) -> None:
    assert len(link._wire.buffer) <= MAX_PENDING


@BATCH_IDS
async def test_serial_link_survives_hostile_instruments(n: int) -> None:
    await run_cases(batch(n)[: len(batch(n)) // 2], serial_case)


# -- what a peer of these tests does ------------------------------------------------------------


async def test_a_good_peer_answers_every_link() -> None:
    """The fuzzing's instruments in good mode are instruments the links read (else every
    re-open above would prove nothing)."""
    peer = socket_peer(0, flood=False)
    peer.good = True
    await peer.start()
    try:
        config = config_for(f"TCPIP::127.0.0.1::{peer.port}::SOCKET")
        await reopens(lambda: SocketLink.open(config, ("127.0.0.1", peer.port), TIMEOUT_S))
    finally:
        await peer.stop()
    peers: list[Peer] = []
    try:
        hislip, _ = hislip_peer(0)
        peers.append(await hislip.start())
        hislip.good = True
        config = config_for(f"TCPIP::127.0.0.1::hislip0,{hislip.port}::INSTR")
        address = ("127.0.0.1", hislip.port, "hislip0")
        await reopens(lambda: HislipLink.open(config, address, TIMEOUT_S))
        mapper, core, _ = vxi11_peer(0)
        peers += [await core.start(), await mapper.start()]
        mapper.good = core.good = True
        vxi11 = config_for("TCPIP::127.0.0.1::inst0::INSTR", vxi11_portmapper_port=mapper.port)
        vxi11_address = vxi11.vxi11_address()
        assert vxi11_address is not None
        await reopens(lambda: Vxi11Link.open(vxi11, vxi11_address, TIMEOUT_S))
    finally:
        for started in peers:
            await started.stop()


# -- what the fuzzing found, as named cases ----------------------------------------------------


async def loop_lag_during(call: Awaitable[object]) -> float:
    """The longest the event loop went without running a 1 ms ticker while ``call`` ran."""
    loop = asyncio.get_running_loop()
    longest = 0.0
    running = True

    async def ticker() -> None:
        nonlocal longest
        last = loop.time()
        while running:
            await asyncio.sleep(0.001)
            longest = max(longest, loop.time() - last)
            last = loop.time()

    ticking = asyncio.create_task(ticker())
    try:
        await call
    finally:
        running = False
        await ticking
    return longest


async def test_a_flood_of_empty_hislip_replies_neither_holds_the_loop_nor_piles_up() -> None:
    """Found by fuzzing HiSLIP (a flood of small replies nobody asked for): the link summed
    the lengths of every reply it held at each new one — 65,536 empty ``DataEnd`` messages
    (1 MiB on the wire) after a reply held the event loop about 40 s, every instrument of the
    agent with it, and no bound counted them (their bytes summed to 0). Now each held reply
    counts a header's worth too: the flood is refused as oversized at once, and counted."""
    flood = hislip_wire.pack(Message.DATA_END, 0, ANY_MESSAGE_ID) * 70_000

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, _, _, _ = await hislip_message(reader)
        if kind != Message.INITIALIZE:
            await hislip_good_async(reader, writer)
            return
        writer.write(hislip_wire.pack(Message.INITIALIZE_RESPONSE, 0, 0x0100_0000 | 9))
        _, _, message_id, _ = await hislip_message(reader)
        writer.write(hislip_wire.pack(Message.DATA_END, 0, message_id, b"1\n") + flood)

    peer = await Peer(talk, hislip_good).start()
    config = config_for(f"TCPIP::127.0.0.1::hislip0,{peer.port}::INSTR", timeout_s=1.0)
    counted = HISLIP_FAULTS["oversized"]
    try:
        link = await HislipLink.open(config, ("127.0.0.1", peer.port, "hislip0"), 1.0)
        try:
            assert await link.query("*IDN?") == "1"

            async def flooded() -> None:
                for _ in range(1000):  # (nothing to wait on: the session's state is polled)
                    if link._wire.lost is not None:
                        return
                    await asyncio.sleep(0.005)

            lag = await loop_lag_during(asyncio.wait_for(flooded(), 5.0))
            assert lag < 0.5, lag
            assert "replies not asked for" in (link._wire.lost or "")
            assert HISLIP_FAULTS["oversized"] == counted + 1
            with pytest.raises(LinkError):
                await link.query("*IDN?")
        finally:
            link.close()
    finally:
        await peer.stop()
