"""Seeded hostile clients against the SCPI simulator's HiSLIP and VXI-11 servers (and the
portmapper): random bytes, valid openings followed by random messages and calls, huge lengths,
records in random fragments, half-open and abandoned connections, many at once. Each batch runs
its clients concurrently and leaves some connected; then a well-behaved client (etalon's link, and
bare pyvisa-py over HiSLIP) still gets the instrument's replies, the servers counted the hostile
input, and what they hold stays bounded. A failure names its seed (:func:`case_rng` replays
it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
from typing import Any

import pytest

from drivers.sim import scpi_vxi11
from drivers.sim.scpi import ScpiSimulator
from drivers.sim.scpi_vxi11 import MAX_LINKS, REPLY_COST
from drivers.visa import hislip_wire, vxi11_wire
from drivers.visa.hislip_wire import HEADER, Message
from drivers.visa.vxi11_wire import MARK
from tests.drivers.visa.conftest import visa_config
from tests.drivers.visa.fuzz_peers import (
    case_rng,
    fragmented,
    garbage,
    hislip_record,
    split,
    weird_int,
)
from tests.drivers.visa.loop_transports import HISLIP, VXI11, Start, Transport, bare_pyvisa

SEEDS = range(int(os.environ.get("ETALON_FUZZ_SEEDS", "240")))
BATCHES = 4
WAIT_S = 0.3
"""How long a hostile client reads what the server answers before it goes."""


def hislip_client(rng: random.Random, session_ids: list[int]) -> bytes:
    """What a hostile HiSLIP client sends on one connection."""
    opening = rng.randrange(5)
    if opening == 0:
        data = b""
    elif opening <= 2:  # a session, then anything
        sub_address = rng.choice([b"hislip0", garbage(rng, 20)])
        data = hislip_wire.pack(Message.INITIALIZE, 0, weird_int(rng), sub_address)
    elif opening == 3:  # an asynchronous channel to a session (maybe someone else's)
        session = rng.choice([*session_ids, weird_int(rng, 16)]) if session_ids else 1
        data = hislip_wire.pack(Message.ASYNC_INITIALIZE, 0, session)
    else:
        data = garbage(rng, 64)
    for n in range(rng.randint(0, 6)):
        kind = rng.randrange(6)
        if kind == 0:  # a program message in pieces, maybe past 1 MiB
            piece = hislip_wire.pack(Message.DATA, 0, 0, b"x" * 60_000)
            data += piece * rng.choice([1, 3, 18])
        elif kind == 1:
            data += hislip_wire.pack(
                rng.choice(list(Message)), weird_int(rng, 8), weird_int(rng), garbage(rng, 16)
            )
        elif kind == 2:
            data += hislip_wire.pack(Message.ASYNC_MAX_MSG_SIZE, 0, 0, garbage(rng, 12))
        else:
            data += hislip_record(rng, weird_int(rng), last=n == 5)
    if rng.random() < 0.2:
        data += HEADER.pack(b"HS", Message.DATA_END, 0, 0, weird_int(rng, 64))
    return data


def rpc_client(rng: random.Random, core: bool) -> bytes:
    """What a hostile ONC RPC client sends to the core channel (or the portmapper)."""
    prog, vers = (
        (vxi11_wire.CORE_PROG, vxi11_wire.CORE_VERS)
        if core
        else (vxi11_wire.PORTMAPPER_PROG, vxi11_wire.PORTMAPPER_VERS)
    )
    data = b""
    if core and rng.random() < 0.6:
        link = struct.pack("!iiI", 1, 0, 0) + vxi11_wire.opaque(rng.choice([b"inst0", b"x"]))
        data += vxi11_wire.call(1, prog, vers, vxi11_wire.CREATE_LINK, link)
    for _ in range(rng.randint(0, 6)):
        kind = rng.randrange(8)
        xid = weird_int(rng)
        proc = rng.choice([3, 10, 11, 12, 13, 15, 16, 18, 22, 23, 25, 0, weird_int(rng)])
        link_id = rng.choice([1, 1, 0, -1, weird_int(rng) - (1 << 31)])
        if kind == 0:  # random arguments
            data += vxi11_wire.call(xid, prog, vers, proc, garbage(rng, 40))
        elif kind == 1:  # a device_write, any length
            chunk = garbage(rng, 30)
            length = rng.choice([len(chunk), weird_int(rng)])
            arguments = struct.pack("!iIIiI", link_id, 10, 0, rng.choice([0, 8]), length) + chunk
            data += vxi11_wire.call(xid, prog, vers, vxi11_wire.DEVICE_WRITE, arguments)
        elif kind == 2:  # a device_read, any size and timeout
            arguments = struct.pack(
                "!iIIIii", link_id, weird_int(rng), rng.choice([0, 5, 20]), 0, 128, 10
            )
            data += vxi11_wire.call(xid, prog, vers, vxi11_wire.DEVICE_READ, arguments)
        elif kind == 3:  # another program, version or RPC version
            header = [xid, 0, weird_int(rng), weird_int(rng), weird_int(rng), proc, 0, 0, 0, 0]
            data += fragmented(rng, struct.pack("!10I", *header) + garbage(rng, 8))
        elif kind == 4:  # a call in random fragments, credentials of any length
            body = struct.pack("!8I", xid, 0, 2, prog, vers, proc, 1, weird_int(rng))
            data += fragmented(rng, body + garbage(rng, 20))
        elif kind == 5:  # fragments that never end
            data += MARK.pack(0) * rng.randint(1, 300)
        elif kind == 6:
            data += garbage(rng, 40)
        else:  # a reply, not a call
            data += vxi11_wire.accepted(xid, garbage(rng, 12))
    if rng.random() < 0.2:
        data += MARK.pack(weird_int(rng) | rng.choice([0, vxi11_wire.LAST_FRAGMENT]))
    return data


async def hostile(
    port: int, data: bytes, rng: random.Random, held: list[asyncio.StreamWriter]
) -> bytes:
    """One hostile client: ``data`` in pieces, then it closes, resets, half-closes, or stays
    connected (``held``, closed by the test later); what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answered = b""
    try:
        for piece in split(rng, data):
            writer.write(piece)
            await writer.drain()
        how = rng.choice(["close", "abort", "half", "stay"])
        if how == "half":
            writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT_S):
                while chunk := await reader.read(1 << 16):
                    answered += chunk
        if how == "stay":
            held.append(writer)
            return answered
        if how == "abort":
            writer.transport.abort()
    except ConnectionError:
        pass
    writer.close()
    return answered


async def identified(
    sim: ScpiSimulator, transport: Transport, resource: str, **config: Any
) -> None:
    """etalon's link of ``transport`` to ``resource`` reads the instrument's ``*IDN?``."""
    link = await transport.open(visa_config(resource, "generic-dmm", **config))
    try:
        assert await link.query("*IDN?") == sim.instrument.idn
    finally:
        link.close()


async def well_behaved(sim: ScpiSimulator) -> None:
    """etalon's HiSLIP and VXI-11 links (the latter through the portmapper) read ``*IDN?``."""
    assert sim.vxi11 is not None
    await identified(sim, HISLIP, sim.hislip_resource)
    portmapper = sim.vxi11.portmapper_port
    await identified(sim, VXI11, "TCPIP::127.0.0.1::inst0::INSTR", vxi11_portmapper_port=portmapper)


@pytest.mark.parametrize("n", range(BATCHES), ids=lambda n: f"batch{n}")
async def test_the_servers_survive_hostile_clients(scpi_sim: Start, n: int) -> None:
    sim = await scpi_sim("generic-dmm", hislip=True, vxi11=True)
    assert sim.hislip is not None and sim.vxi11 is not None
    sim.hislip.message_timeout_s = sim.vxi11.message_timeout_s = 0.5
    sim.vxi11.portmapper.message_timeout_s = 0.5
    held: list[asyncio.StreamWriter] = []
    session_ids: list[int] = []
    seeds = [seed for seed in SEEDS if seed % BATCHES == n]
    cases = []
    for seed in seeds:
        rng = case_rng("server", seed)
        server = rng.choice(["hislip", "hislip", "core", "core", "portmapper"])
        if server == "hislip":
            port, data = sim.hislip.port, hislip_client(rng, session_ids)
        else:
            port = sim.vxi11.port if server == "core" else sim.vxi11.portmapper_port
            data = rpc_client(rng, server == "core")
        cases.append((seed, port, data, rng))
    await well_behaved(sim)  # (a session id a hostile client may name)
    session_ids.extend(sim.hislip.sessions)
    results = await asyncio.gather(
        *(hostile(port, data, rng, held) for _, port, data, rng in cases),
        return_exceptions=True,
    )
    failures = [
        f"seed {seed}: {type(result).__name__}: {result}"
        for (seed, *_), result in zip(cases, results, strict=True)
        if isinstance(result, BaseException)
    ]
    assert not failures, failures[:5]
    try:
        await well_behaved(sim)  # with hostile connections still open
        assert sum(sim.hislip.protocol_faults.values()) > 0
        assert sum(sim.vxi11.protocol_faults.values()) > 0
        assert len(sim.vxi11.links) <= len(held) + 1, len(sim.vxi11.links)
    finally:
        for writer in held:
            writer.transport.abort()
    for _ in range(200):  # every session and link ends with its connection
        if not sim.hislip.sessions and not sim.vxi11.links:
            break
        await asyncio.sleep(0.01)
    assert not sim.hislip.sessions, sim.hislip.sessions
    assert not sim.vxi11.links, sim.vxi11.links
    await well_behaved(sim)


async def test_bare_pyvisa_py_is_served_after_hostile_clients(scpi_sim: Start) -> None:
    """A hostile HiSLIP client of each kind first, then bare pyvisa-py's session works."""
    sim = await scpi_sim("generic-dmm", hislip=True)
    assert sim.hislip is not None
    held: list[asyncio.StreamWriter] = []
    for seed in range(20):
        rng = case_rng("pyvisa", seed)
        await hostile(sim.hislip.port, hislip_client(rng, []), rng, held)
    try:
        replies = await asyncio.to_thread(
            bare_pyvisa, sim.hislip_resource, ["*IDN?"], read_termination="\n"
        )
        assert replies == [sim.instrument.idn]
    finally:
        for writer in held:
            writer.transport.abort()


# -- what the fuzzing found, as named cases ----------------------------------------------------


class RpcClient:
    """A raw ONC RPC client of the core channel: one call, its reply's result."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.xid = 0

    @classmethod
    async def connect(cls, port: int) -> RpcClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def call(self, proc: int, arguments: bytes) -> bytes:
        self.xid += 1
        self.writer.write(
            vxi11_wire.call(self.xid, vxi11_wire.CORE_PROG, vxi11_wire.CORE_VERS, proc, arguments)
        )
        (mark,) = MARK.unpack(await self.reader.readexactly(4))
        whole = await self.reader.readexactly(mark & ~vxi11_wire.LAST_FRAGMENT)
        xid, result = vxi11_wire.reply_body(whole)
        assert xid == self.xid
        return result

    async def create_link(self) -> tuple[int, int]:
        """(error, link id)."""
        arguments = struct.pack("!iiI", 1, 0, 0) + vxi11_wire.opaque(b"inst0")
        error, link_id = struct.unpack_from(
            "!ii", await self.call(vxi11_wire.CREATE_LINK, arguments)
        )
        return error, link_id

    def close(self) -> None:
        self.writer.transport.abort()


async def test_one_connection_holds_a_bounded_number_of_vxi11_links(scpi_sim: Start) -> None:
    """Found by fuzzing the VXI-11 server: ``create_link`` in a loop on one connection made a
    link each time (20,000 calls, 20,000 links held until the connection ended). Now a
    connection holds at most MAX_LINKS: beyond them error 9 (out of resources), counted; links
    destroyed make room again."""
    sim = await scpi_sim("generic-dmm", vxi11=True)
    assert sim.vxi11 is not None
    client = await RpcClient.connect(sim.vxi11.port)
    try:
        errors = [(await client.create_link())[0] for _ in range(MAX_LINKS + 40)]
        assert errors == [0] * MAX_LINKS + [9] * 40
        assert len(sim.vxi11.links) == MAX_LINKS
        assert sim.vxi11.protocol_faults["too many links"] == 40
        for _ in range(100):  # destroyed links make room (and are not kept)
            link_id = next(iter(sim.vxi11.links))
            destroyed = await client.call(vxi11_wire.DESTROY_LINK, struct.pack("!i", link_id))
            assert destroyed == struct.pack("!i", 0)
            assert (await client.create_link())[0] == 0
        assert len(sim.vxi11.links) == MAX_LINKS
        await identified(sim, VXI11, sim.vxi11_resource)  # another connection is served
    finally:
        client.close()


async def test_replies_never_read_are_bounded(
    scpi_sim: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by fuzzing the VXI-11 server: a client writing queries and never calling
    device_read had every reply kept (20,000 ``*IDN?`` writes, 20,000 replies held). Now a
    link holds at most MAX_RECORD bytes of them (each counting REPLY_COST more): newer replies
    are dropped, counted as ``replies unread``; the oldest is still read. (The bound is made
    4 KiB here to keep the test short.)"""
    monkeypatch.setattr(scpi_vxi11, "MAX_RECORD", 4096)
    sim = await scpi_sim("generic-dmm", vxi11=True)
    assert sim.vxi11 is not None
    client = await RpcClient.connect(sim.vxi11.port)
    try:
        _, link_id = await client.create_link()
        query = b"*IDN?\n"
        write = struct.pack("!iIIiI", link_id, 1000, 0, vxi11_wire.FLAG_END, len(query))
        for _ in range(300):
            await client.call(vxi11_wire.DEVICE_WRITE, write + query + b"\0\0")
            await asyncio.sleep(0)  # (the instrument answers each)
        for _ in range(100):
            if sim.vxi11.protocol_faults["replies unread"]:
                break
            await asyncio.sleep(0.01)
        link = sim.vxi11.links[link_id]
        assert 0 < link.held <= 4096
        assert link.held == sum(len(reply) + REPLY_COST for reply in link.replies)
        assert sim.vxi11.protocol_faults["replies unread"] > 0
        read = struct.pack("!iIIIii", link_id, 1 << 20, 1000, 0, 128, 10)
        result = await client.call(vxi11_wire.DEVICE_READ, read)
        data, _ = vxi11_wire.unpack_opaque(result, 8)
        assert data.decode().strip() == sim.instrument.idn
        assert link.held == sum(len(reply) + REPLY_COST for reply in link.replies)
    finally:
        client.close()
