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
import contextlib
import os
import struct
import traceback
from collections.abc import Awaitable, Callable

import pytest

from core.clock import SystemClock
from core.errors import DriverError, NotConnected, ProtocolError
from drivers.reading import Quality
from drivers.visa import hislip_wire, vxi11_wire
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver
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
    MutatingProxy,
    Peer,
    case_rng,
    hislip_good,
    hislip_good_async,
    hislip_message,
    hislip_peer,
    rpc_call,
    socket_hostile,
    socket_peer,
    vxi11_peer,
)
from tests.drivers.visa.loop_transports import Start

SEEDS = range(int(os.environ.get("ETALON_FUZZ_SEEDS", "320")))
"""The seeds of each link's cases (ETALON_FUZZ_SEEDS=N runs N, to hunt further)."""
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


async def hostile_queries(link: Link, holds: Callable[[], None], clear: bool = False) -> None:
    """Two queries (after a device clear when ``clear``), each ending in time with a reply or an
    allowed error; ``holds`` checks the link's bounds after each. Stops at the first error (the
    link is spent)."""
    calls: list[Callable[[], Awaitable[object]]] = [lambda: link.query("*IDN?")] * 2
    if clear:
        calls.insert(0, link.clear)
    for call in calls:
        error = await within(call(), TIMEOUT_S, "a query")
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


async def survives(
    peers: list[Peer],
    open_: Callable[[], Awaitable[Link]],
    holds: Callable[[Link], None],
    clear: bool = False,
) -> None:
    """One case over TCP: the link to the (started) hostile ``peers`` opens as it may, meets
    :func:`hostile_queries`, and a new one reads its reply once the peers are good again; the
    peers stopped at the end."""
    try:
        link = await opens(open_())
        if link is not None:
            try:
                await hostile_queries(link, lambda: holds(link), clear)
            finally:
                link.close()
        for peer in peers:
            peer.good = True
        await reopens(open_)
    finally:
        for peer in peers:
            await peer.stop()


# -- raw SOCKET ---------------------------------------------------------------------------------


async def socket_case(seed: int) -> None:
    peer = await socket_peer(seed, flood=seed % 40 == 0).start()
    config = config_for(f"TCPIP::127.0.0.1::{peer.port}::SOCKET")
    address = ("127.0.0.1", peer.port)
    await survives(
        [peer], lambda: SocketLink.open(config, address, TIMEOUT_S), _socket_holds, seed % 4 == 0
    )


def _socket_holds(link: Link) -> None:
    assert isinstance(link, SocketLink | SerialLink)
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
    await survives(
        [peer], lambda: HislipLink.open(config, address, TIMEOUT_S), _hislip_holds, seed % 4 == 0
    )


def _hislip_holds(link: Link) -> None:
    assert isinstance(link, HislipLink)
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
    await survives([mapper, core], lambda: Vxi11Link.open(config, address, TIMEOUT_S), _vxi11_holds)


def _vxi11_holds(link: Link) -> None:
    assert isinstance(link, Vxi11Link)
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
            await hostile_queries(link, lambda: _socket_holds(link))
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


# -- the whole driver, over a link whose instrument's bytes are mutated -------------------------

DRIVER_SEEDS = range(int(os.environ.get("ETALON_FUZZ_DRIVER_SEEDS", "24")))


@pytest.mark.parametrize("transport", ["socket", "hislip", "vxi11"])
async def test_the_driver_over_a_mutated_link_reads_or_says_why(
    scpi_sim: Start, clock: SystemClock, transport: str
) -> None:
    """The driver's reads while the instrument's bytes are mutated on their way (flipped,
    inserted, deleted, doubled, cut, replaced, split): readings (good or bad) or a DriverError
    only, each within the read's timeout and a margin; once the bytes are clean again the
    driver reads good readings within a few reads (re-opening its session as it needs)."""
    sim = await scpi_sim("generic-dmm", hislip=True, vxi11=True)
    assert sim.hislip is not None and sim.vxi11 is not None
    upstream = {"socket": sim.port, "hislip": sim.hislip.port, "vxi11": sim.vxi11.port}
    resource = {
        "socket": "TCPIP::127.0.0.1::{port}::SOCKET",
        "hislip": "TCPIP::127.0.0.1::hislip0,{port}::INSTR",
        "vxi11": "TCPIP::127.0.0.1,{port}::INSTR",
    }

    async def case(seed: int) -> None:
        proxy = await MutatingProxy(upstream[transport]).start()
        config = visa_config(
            resource[transport].format(port=proxy.port),
            "generic-dmm",
            timeout_s=0.3,
            connect_timeout_s=1.0,
            channels=[{"name": "v", "measurement": "voltage_dc"}],
        )
        driver = VisaDriver(config, clock)
        try:
            await driver.connect()
            proxy.rng = case_rng(f"driver-{transport}", seed)
            for _ in range(3):
                error = await within(driver.read(config.channels), 1.3, "a read")
                if error is not None and not isinstance(error, DriverError):
                    raise AssertionError(f"a read raised {type(error).__name__}: {error}")
            proxy.rng = None
            # Once the bytes are clean, every transport reads GOOD again (a raw socket put out
            # of step re-opens: see test_a_stray_line_..._out_of_step_once).
            qualities = []
            for _ in range(4):
                with contextlib.suppress(DriverError):
                    (reading,) = await driver.read(config.channels)
                    qualities.append((reading.quality, reading.reason))
                    if reading.quality is Quality.GOOD:
                        break
            assert qualities[-1:] == [(Quality.GOOD, None)], qualities
        finally:
            await driver.close()
            await proxy.stop()

    await run_cases(list(DRIVER_SEEDS), case)


async def test_a_stray_line_on_a_raw_socket_puts_the_session_out_of_step_once(
    scpi_sim: Start, clock: SystemClock
) -> None:
    """Found by fuzzing the driver over a mutating proxy (``driver-socket`` seeds 7, 12, 13, 15,
    19 …): one reply doubled on its way (an instrument that sends a line nobody asked for does
    the same) shifts every later reply of a raw SOCKET (or serial) session by one — the bytes
    after a reply wait for the next read, as pyvisa-py keeps them
    (test_socket_link.py::test_replies_split_or_joined_on_the_wire_are_read_one_at_a_time).
    Before, nothing re-opened the session: ``SYST:ERR?`` got the measurement, and every reading
    after was BAD ("instrument error: +1.0000004E+01") for as long as the session lived. Now
    the error query's reply that is no error-queue entry (the profile's ``errors.entry``) fails
    that read, saying the replies are out of step, and the next read is on a fresh connection,
    in step. (HiSLIP and VXI-11 frame each reply by its message id / xid.)"""
    sim = await scpi_sim("generic-dmm")
    proxy = await MutatingProxy(sim.port).start()
    config = visa_config(
        f"TCPIP::127.0.0.1::{proxy.port}::SOCKET",
        "generic-dmm",
        timeout_s=0.3,
        channels=[{"name": "v", "measurement": "voltage_dc"}],
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        proxy.once = lambda chunk: [chunk, chunk]  # the next reply, twice
        with pytest.raises(ProtocolError, match=r"'SYST:ERR\?' answered .*out of step"):
            await driver.read(config.channels)
        readings = [(await driver.read(config.channels))[0] for _ in range(3)]
        assert all(r.quality is Quality.GOOD for r in readings), [r.reason for r in readings]
    finally:
        await driver.close()
        await proxy.stop()


async def test_an_error_queue_of_other_entries_is_taken_as_it_comes_with_entry_null(
    scpi_sim: Start, clock: SystemClock
) -> None:
    """``errors.entry: null`` (an instrument whose error entries are no SCPI ones): every reply
    of the error query is an entry, as before the out-of-step check. The same doubled reply then
    marks the readings BAD with it, read after read, and the session is never re-opened."""
    sim = await scpi_sim("generic-dmm")
    proxy = await MutatingProxy(sim.port).start()
    config = visa_config(
        f"TCPIP::127.0.0.1::{proxy.port}::SOCKET",
        "generic-dmm",
        timeout_s=0.3,
        errors={"query": "SYST:ERR?", "check": "after_each_read", "entry": None},
        channels=[{"name": "v", "measurement": "voltage_dc"}],
    )
    driver = VisaDriver(config, clock)
    try:
        await driver.connect()
        proxy.once = lambda chunk: [chunk, chunk]
        await driver.read(config.channels)
        readings = [(await driver.read(config.channels))[0] for _ in range(3)]
        assert all(r.quality is Quality.BAD for r in readings), readings
        assert all("instrument error" in (r.reason or "") for r in readings), readings
        assert sim.connections == 1  # never re-opened
    finally:
        await driver.close()
        await proxy.stop()


@pytest.mark.parametrize("link_id", [-1, -(1 << 31)])
async def test_a_vxi11_link_with_a_negative_id_closes_without_raising(link_id: int) -> None:
    """Found by fuzzing VXI-11 (a create_link answering link id -1, any seed whose peer gave a
    negative one): ``close`` packed the id as an unsigned word for destroy_link and raised
    ``struct.error`` — a close that must never raise, out of the driver's close. A Device_Link
    is an XDR int (signed): it goes back as the device gave it."""
    destroyed: list[bytes] = []

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            xid, proc, arguments = await rpc_call(reader)
            if proc == vxi11_wire.CREATE_LINK:
                result = struct.pack("!iiII", 0, link_id, 0, 1 << 20)
            elif proc == vxi11_wire.DEVICE_WRITE:
                result = struct.pack("!iI", 0, struct.unpack_from("!I", arguments, 16)[0])
            elif proc == vxi11_wire.DEVICE_READ:
                result = struct.pack("!iiI", 0, 4, len(GOOD_REPLY)) + GOOD_REPLY + b"\0"
            else:
                destroyed.append(arguments)
                result = struct.pack("!i", 0)
            writer.write(vxi11_wire.accepted(xid, result))

    peer = await Peer(talk, talk).start()
    config = config_for(f"TCPIP::127.0.0.1,{peer.port}::INSTR", timeout_s=1.0)
    address = config.vxi11_address()
    assert address is not None
    try:
        link = await Vxi11Link.open(config, address, 1.0)
        assert await link.query("*IDN?") == "ok"
        link.close()
        for _ in range(100):
            if destroyed:
                break
            await asyncio.sleep(0.01)
        assert destroyed == [struct.pack("!i", link_id)]
    finally:
        await peer.stop()
