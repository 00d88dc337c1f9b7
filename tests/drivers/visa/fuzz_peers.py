"""Hostile peers for fuzzing etalon's asyncio links (test_link_fuzz.py): an instrument of our own
on loopback — a TCP server, or the master side of a pseudo-terminal — that answers a link's
first requests correctly (the HiSLIP handshake, the portmapper and ``create_link``, the query's
write) and then sends seeded-random hostile bytes built with the links' own wire modules; and a
proxy in front of the SCPI simulator that mutates what it relays, for the whole driver.

Everything a case does follows from its seed (:func:`case_rng`): a failure prints the seed, and
the seed replays it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from drivers.visa import hislip_wire, vxi11_wire
from drivers.visa.hislip_wire import HEADER, HEADER_SIZE, Message
from drivers.visa.vxi11_wire import LAST_FRAGMENT, MARK

GOOD_REPLY = b"ok\n"
"""What a peer in good mode answers every query with."""


def case_rng(kind: str, seed: int) -> random.Random:
    """The random source of one case (``kind`` keeps the links' cases apart)."""
    return random.Random(f"{kind}-{seed}")


def garbage(rng: random.Random, most: int = 64) -> bytes:
    return rng.randbytes(rng.randint(0, most))


def split(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` cut at random byte boundaries (often not at all)."""
    if len(data) < 2 or rng.random() < 0.3:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def weird_int(rng: random.Random, bits: int = 32) -> int:
    """An unsigned field's value: small, at the edges, or anything."""
    top = (1 << bits) - 1
    return rng.choice(
        [0, 1, 2, 3, 4, 7, 8, 15, 16, top, top - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1]
        + [rng.randint(0, top)] * 4
    )


@dataclass
class Ending:
    """How a hostile peer leaves once its bytes are out."""

    how: str
    """``close`` (FIN), ``abort`` (RST) or ``stay`` (silent until the client leaves)."""
    pause_s: float
    """A pause between the pieces (0: back to back)."""


def ending(rng: random.Random) -> Ending:
    return Ending(
        rng.choice(["close", "close", "abort", "stay", "stay"]), rng.choice([0.0, 0.0, 0.002])
    )


async def send(rng: random.Random, writer: asyncio.StreamWriter, data: bytes, end: Ending) -> None:
    """``data`` in random pieces, then ``end``; a client gone meanwhile is fine."""
    try:
        for piece in split(rng, data):
            writer.write(piece)
            await writer.drain()
            if end.pause_s:
                await asyncio.sleep(end.pause_s)
    except ConnectionError:
        return
    if end.how == "close":
        writer.close()
    elif end.how == "abort":
        writer.transport.abort()


# -- TCP peers --------------------------------------------------------------------------------

Talk = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Peer:
    """A TCP server on loopback whose connections run ``talk`` (hostile, or good once
    :attr:`good` is set); every connection's task is ended by :meth:`stop`."""

    talk: Talk
    good_talk: Talk
    good: bool = False
    port: int = 0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> Peer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.append(writer)
        try:
            await (self.good_talk if self.good else self.talk)(reader, writer)
            if not writer.is_closing():
                with contextlib.suppress(ConnectionError):
                    await reader.read()  # ``stay``: until the client leaves
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.transport.abort()  # each connection's talk ends (its reads fail)
        if self.tasks:
            await asyncio.wait(self.tasks)
        if self.server is not None:
            await self.server.wait_closed()


# Raw SCPI ------------------------------------------------------------------------------------


def socket_hostile(rng: random.Random, flood: bool) -> bytes:
    """Bytes a raw-SCPI instrument might answer a query with, at its worst."""
    pieces = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        if kind == 0:
            pieces.append(garbage(rng, 300))
        elif kind == 1:
            pieces.append(rng.randbytes(rng.randint(0, 40)).replace(b"\n", b"") + b"\n")
        elif kind == 2:
            pieces.append(b"+1.0E+00\n" * rng.randint(1, 50))
        elif kind == 3:
            pieces.append(bytes(range(128, 256)) + b"\n")
        elif kind == 4:
            pieces.append(b"\n" * rng.randint(1, 20))
        elif kind == 5:
            pieces.append(b"\r\n\0\xff")
        elif kind == 6:
            pieces.append(b"1.5")  # no termination
        else:
            pieces.append(b"")
    if flood:
        filler = rng.choice([b"x", b"1\n"])
        pieces.append(filler * ((1 << 20) // len(filler) + rng.randint(1, 70_000)))
    return b"".join(pieces)


def socket_peer(seed: int, flood: bool) -> Peer:
    rng = case_rng("socket", seed)

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n")
        await send(rng, writer, socket_hostile(rng, flood), ending(rng))

    async def good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\n")
            writer.write(GOOD_REPLY)

    return Peer(talk, good)


# HiSLIP --------------------------------------------------------------------------------------


async def hislip_message(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    kind, control, parameter, length = hislip_wire.unpack_header(
        await reader.readexactly(HEADER_SIZE), hislip_wire.MAX_MESSAGE
    )
    return kind, control, parameter, await reader.readexactly(length)


def hislip_record(rng: random.Random, message_id: int, last: bool) -> bytes:
    """One hostile HiSLIP message (or something that is none) for a reply to ``message_id``;
    ``last``: the case's final one (a header that promises more than follows)."""
    payload = garbage(rng, 40)
    ids = [message_id, message_id, hislip_wire.ANY_MESSAGE_ID, (message_id - 2) & 0xFFFF_FFFF]
    ids.append(weird_int(rng))
    kind = rng.randrange(13)
    if kind == 0:  # the reply, valid
        return hislip_wire.pack(Message.DATA_END, 0, rng.choice(ids), payload)
    if kind == 1:  # a piece of it
        return hislip_wire.pack(Message.DATA, rng.randrange(2), rng.choice(ids), payload)
    if kind == 2:  # any type, any fields
        return (
            HEADER.pack(b"HS", rng.randrange(256), rng.randrange(256), weird_int(rng), len(payload))
            + payload
        )
    if kind == 3:
        return hislip_wire.pack(
            rng.choice([Message.ERROR, Message.FATAL_ERROR]), rng.randrange(256), 0, payload
        )
    if kind == 4:  # harmless ones, in a flood
        harmless = hislip_wire.pack(rng.choice([Message.INTERRUPTED, Message.DATA]), 0, 7)
        return harmless * rng.randint(1, 300)
    if kind == 5:  # a length beyond anything
        return HEADER.pack(b"HS", Message.DATA_END, 0, message_id, weird_int(rng, 64))
    if kind == 6:
        return b"HT" + HEADER.pack(b"HS", 7, 0, 0, 0)[2:]
    if kind == 7:
        return hislip_wire.pack(Message.DATA_END, 0, rng.choice(ids))  # zero length
    if kind == 8:
        return garbage(rng, 40)
    if kind == 9 and last:  # a header promising more than follows
        return HEADER.pack(b"HS", Message.DATA_END, 0, message_id, len(payload) + 50) + payload
    if kind == 10:  # replies nobody asked for
        stale = hislip_wire.pack(Message.DATA_END, 0, hislip_wire.ANY_MESSAGE_ID, b"1\n")
        return stale * rng.randint(1, 200)
    if kind == 11:  # non-ASCII reply
        return hislip_wire.pack(Message.DATA_END, 0, message_id, bytes([0xC3, 0x28]) + payload)
    return hislip_wire.pack(rng.choice([Message.ASYNC_SERVICE_REQUEST, 100, 200]), 0, 0)


def hislip_hostile(rng: random.Random, message_id: int) -> bytes:
    count = rng.randint(1, 6)
    return b"".join(hislip_record(rng, message_id, n == count - 1) for n in range(count))


HISLIP_PHASES = ["initialize", "async initialize", "max size", "async", *["reply"] * 7]


def hislip_peer(seed: int) -> tuple[Peer, str]:
    """A HiSLIP server hostile in one phase (handshake, the asynchronous channel, or the reply);
    the phase."""
    rng = case_rng("hislip", seed)
    phase = rng.choice(HISLIP_PHASES)
    session_id = 7
    takes = rng.choice([hislip_wire.MAX_MESSAGE] * 3 + [HEADER_SIZE + 1, HEADER_SIZE + 4])
    """The largest message it says it takes (small: the query comes in Data pieces)."""

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, _, _, _ = await hislip_message(reader)
        if kind == Message.INITIALIZE:
            if phase == "initialize":
                await send(rng, writer, hislip_hostile(rng, 0), ending(rng))
                return
            writer.write(hislip_wire.pack(Message.INITIALIZE_RESPONSE, 0, 0x0100_0000 | session_id))
            kind = Message.DATA
            while kind != Message.DATA_END:
                kind, _, message_id, _ = await hislip_message(reader)
            if phase == "reply":
                await send(rng, writer, hislip_hostile(rng, message_id), ending(rng))
            return
        if phase == "async initialize":
            await send(rng, writer, hislip_hostile(rng, 0), ending(rng))
            return
        writer.write(hislip_wire.pack(Message.ASYNC_INITIALIZE_RESPONSE, 0, 0x4554))
        await hislip_message(reader)
        if phase == "max size":
            size = rng.choice([b"", b"\0" * 7, struct.pack("!Q", weird_int(rng, 64))])
            answer = hislip_wire.pack(Message.ASYNC_MAX_MSG_SIZE_RESPONSE, 0, 0, size)
            await send(rng, writer, rng.choice([answer, hislip_hostile(rng, 0)]), ending(rng))
            return
        size = struct.pack("!Q", takes)
        writer.write(hislip_wire.pack(Message.ASYNC_MAX_MSG_SIZE_RESPONSE, 0, 0, size))
        if phase == "async":
            await asyncio.sleep(rng.choice([0.0, 0.01]))
            await send(rng, writer, hislip_hostile(rng, 0), ending(rng))

    return Peer(talk, hislip_good), phase


async def hislip_good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    kind, _, _, _ = await hislip_message(reader)
    if kind == Message.INITIALIZE:
        writer.write(hislip_wire.pack(Message.INITIALIZE_RESPONSE, 0, 0x0100_0000 | 9))
        while True:
            kind, _, message_id, _ = await hislip_message(reader)
            if kind == Message.DATA_END:
                writer.write(hislip_wire.pack(Message.DATA_END, 0, message_id, GOOD_REPLY))
    await hislip_good_async(reader, writer)


async def hislip_good_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The asynchronous channel's handshake, its AsyncInitialize read already."""
    writer.write(hislip_wire.pack(Message.ASYNC_INITIALIZE_RESPONSE, 0, 0x4554))
    await hislip_message(reader)
    size = struct.pack("!Q", hislip_wire.MAX_MESSAGE)
    writer.write(hislip_wire.pack(Message.ASYNC_MAX_MSG_SIZE_RESPONSE, 0, 0, size))


# VXI-11 --------------------------------------------------------------------------------------


async def rpc_call(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(xid, procedure, arguments) of the next call a client sends."""
    whole = b""
    while True:
        (mark,) = MARK.unpack(await reader.readexactly(4))
        whole += await reader.readexactly(mark & ~LAST_FRAGMENT)
        if mark & LAST_FRAGMENT:
            break
    xid, _, _, _, _, proc = struct.unpack_from("!IIIIII", whole)
    return xid, proc, whole[vxi11_wire.CALL_HEADER_SIZE :]


def fragmented(rng: random.Random, body: bytes) -> bytes:
    """``body`` as one record, in random fragments (some empty)."""
    if rng.random() < 0.5:
        return vxi11_wire.record(body)
    out = b""
    start = 0
    while True:
        size = rng.choice([0, 1, 3, 8, 50])
        piece = body[start : start + size]
        start += size
        if start >= len(body):
            return out + MARK.pack(LAST_FRAGMENT | len(piece)) + piece
        out += MARK.pack(len(piece)) + piece


def read_result(rng: random.Random) -> bytes:
    """device_read's result (error, reason, data) at its worst."""
    data = garbage(rng, 40)
    error = rng.choice([0, 0, 0, 15, 17, 4, -1, weird_int(rng)]) & 0xFFFF_FFFF
    reason = rng.choice([4, 2, 6, 1, 0, weird_int(rng)])
    length = rng.choice([len(data), len(data), len(data) + 4, 0xFFFF_FFFF, weird_int(rng)])
    result = struct.pack("!III", error, reason, length) + data + bytes(-len(data) % 4)
    return result[: rng.choice([len(result)] * 4 + [rng.randint(0, len(result))])]


def vxi11_reply(rng: random.Random, xid: int, result: bytes) -> bytes:
    """A hostile reply (records, or bytes that are none) to the call ``xid`` whose honest result
    would be ``result``."""
    kind = rng.randrange(12)
    xids = [xid, xid, (xid - 1) & 0xFFFF_FFFF, (xid + 1) & 0xFFFF_FFFF, weird_int(rng)]
    if kind <= 3:
        return fragmented(
            rng, vxi11_wire.REPLY_HEADER.pack(rng.choice(xids), 1, 0, 0, 0, 0) + result
        )
    if kind == 4:  # any reply header
        fields = [weird_int(rng) if rng.random() < 0.3 else v for v in (xid, 1, 0, 0, 0, 0)]
        return fragmented(rng, struct.pack("!6I", *fields) + result)
    if kind == 5:  # denied
        denied = vxi11_wire.record(struct.pack("!IIII", xid, 1, 1, weird_int(rng)))
        return denied[: rng.randint(4, 20)]
    if kind == 6:  # a verifier with a body of any length
        return vxi11_wire.record(struct.pack("!IIIII", xid, 1, 0, 1, weird_int(rng)) + garbage(rng))
    if kind == 7:  # a record mark beyond anything
        return MARK.pack(weird_int(rng) | rng.choice([0, LAST_FRAGMENT]))
    if kind == 8:  # fragments that never end
        return MARK.pack(rng.choice([0, 4])) * rng.randint(1, 500)
    if kind == 9:
        return garbage(rng, 40)
    if kind == 10:  # a short record
        return vxi11_wire.record(garbage(rng, 24))
    stale = vxi11_wire.accepted((xid - 1) & 0xFFFF_FFFF, struct.pack("!iiI", 0, 4, 2) + b"1\n\0\0")
    return stale * rng.randint(1, 50) + vxi11_wire.accepted(xid, result)


VXI11_PHASES = ["getport", "create_link", "write", *["read"] * 7]


def vxi11_peer(seed: int) -> tuple[Peer, Peer, str]:
    """A portmapper and a core channel hostile in one phase; the phase."""
    rng = case_rng("vxi11", seed)
    phase = rng.choice(VXI11_PHASES)

    async def portmapper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        xid, _, _ = await rpc_call(reader)
        answer = MARK.pack(core_peer.port)
        if phase == "getport":
            answer = rng.choice([b"", MARK.pack(weird_int(rng)), read_result(rng)])
            await send(rng, writer, vxi11_reply(rng, xid, answer), ending(rng))
            return
        writer.write(vxi11_wire.accepted(xid, answer))

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        xid, _, _ = await rpc_call(reader)
        link_id = rng.choice([1, 0, -1, 0x7FFF_FFFF, -(1 << 31)])
        takes = rng.choice([1 << 20] * 3 + [1, 2, 5, weird_int(rng)])
        """Its maxRecvSize (small: the query comes in device_write chunks)."""
        created = struct.pack("!iiII", 0, link_id, weird_int(rng), takes)
        if phase == "create_link":
            answer = rng.choice([created, created[: rng.randrange(16)], read_result(rng)])
            await send(rng, writer, vxi11_reply(rng, xid, answer), ending(rng))
            return
        writer.write(vxi11_wire.accepted(xid, created))
        flags = 0
        while not flags & vxi11_wire.FLAG_END:  # the query's chunks but the last
            xid, _, arguments = await rpc_call(reader)
            _, _, _, flags, length = struct.unpack_from("!iIIiI", arguments)
            if not flags & vxi11_wire.FLAG_END:
                writer.write(vxi11_wire.accepted(xid, struct.pack("!iI", 0, length)))
        if phase == "write":
            answer = struct.pack("!iI", rng.choice([0, 0, 4, 15, -5]), weird_int(rng))
            await send(rng, writer, vxi11_reply(rng, xid, answer[: rng.randint(0, 8)]), ending(rng))
            return
        writer.write(vxi11_wire.accepted(xid, struct.pack("!iI", 0, length)))
        for _ in range(rng.randint(1, 4)):  # a read goes on while reasons say nothing of END
            xid, _, _ = await rpc_call(reader)
            writer.write(vxi11_reply(rng, xid, read_result(rng)))
        await send(rng, writer, b"", ending(rng))

    async def good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            xid, proc, arguments = await rpc_call(reader)
            if proc == vxi11_wire.CREATE_LINK:
                result = struct.pack("!iiII", 0, 1, 0, 1 << 20)
            elif proc == vxi11_wire.DEVICE_WRITE:
                result = struct.pack("!iI", 0, struct.unpack_from("!I", arguments, 16)[0])
            elif proc == vxi11_wire.DEVICE_READ:
                result = struct.pack("!iiI", 0, 4, len(GOOD_REPLY)) + GOOD_REPLY + b"\0"
            else:
                result = struct.pack("!i", 0)
            writer.write(vxi11_wire.accepted(xid, result))

    async def good_portmapper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        xid, _, _ = await rpc_call(reader)
        writer.write(vxi11_wire.accepted(xid, MARK.pack(core_peer.port)))

    core_peer = Peer(talk, good)
    return Peer(portmapper, good_portmapper), core_peer, phase


# Serial --------------------------------------------------------------------------------------


class HostilePty:
    """The master side of a raw pseudo-terminal: waits for a query's line, answers with
    hostile bytes (or ``ok`` in good mode), may hang up (closes the master)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.closed = False

    async def line(self, timeout_s: float) -> bool:
        """Wait for a query's termination from the link; False if none came."""
        loop = asyncio.get_running_loop()
        got = b""
        deadline = loop.time() + timeout_s
        while b"\n" not in got and loop.time() < deadline:
            try:
                got += os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                await asyncio.sleep(0.002)
            except OSError:
                return False
        return b"\n" in got

    async def write(self, data: bytes, timeout_s: float) -> None:
        """All of ``data`` to the link, as fast as the pty takes it (within ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        view = memoryview(data)
        while view and loop.time() < deadline and not self.closed:
            try:
                view = view[os.write(self.master, view) :]
            except (BlockingIOError, InterruptedError):
                await asyncio.sleep(0.001)
            except OSError:
                return

    def hang_up(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.master)

    def close(self) -> None:
        self.hang_up()
        with contextlib.suppress(OSError):
            os.close(self.slave)


# -- a mutating proxy, for the whole driver ----------------------------------------------------


def mutate(rng: random.Random, chunk: bytes) -> list[bytes] | None:
    """What becomes of one chunk the instrument sent: pieces to pass on, None to cut the
    connection there (after what came before)."""
    if not chunk or rng.random() < 0.4:
        return [chunk]
    kind = rng.randrange(8)
    at = rng.randrange(len(chunk))
    if kind == 0:  # bytes flipped
        data = bytearray(chunk)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return [bytes(data)]
    if kind == 1:
        return [chunk[:at] + garbage(rng, 20) + chunk[at:]]
    if kind == 2:
        return [chunk[:at] + chunk[at + rng.randint(1, 20) :]]
    if kind == 3:
        return [chunk, chunk]
    if kind == 4:
        return None if rng.random() < 0.5 else [chunk[:at], b""]  # b"": then cut
    if kind == 5:
        return [garbage(rng, len(chunk) + 8)]
    if kind == 6:
        return [chunk[:at] + b"\xff\xff\xff\xff" + chunk[at:]]
    return split(rng, chunk)


@dataclass
class MutatingProxy:
    """Relays loopback connections to ``upstream``; while :attr:`rng` is set, what the
    instrument sends passes through :func:`mutate`."""

    upstream: int
    rng: random.Random | None = None
    once: Callable[[bytes], list[bytes] | None] | None = None
    """What becomes of the instrument's next chunk alone (a named case's mutation)."""
    port: int = 0
    server: asyncio.Server | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> MutatingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers += [writer, up_writer]
        ahead = asyncio.create_task(self._pump(reader, up_writer, mutating=False))
        back = asyncio.create_task(self._pump(up_reader, writer, mutating=True))
        self.tasks |= {ahead, back}
        await asyncio.wait({ahead, back}, return_when=asyncio.FIRST_COMPLETED)
        writer.transport.abort()
        up_writer.transport.abort()
        await asyncio.wait({ahead, back})
        self.tasks -= {ahead, back}

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mutating: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1 << 16):
                rng = self.rng if mutating else None
                once, self.once = (self.once, None) if mutating else (None, self.once)
                if once is not None:
                    pieces = once(chunk)
                else:
                    pieces = [chunk] if rng is None else mutate(rng, chunk)
                if pieces is None:
                    return
                for piece in pieces:
                    if not piece:
                        return
                    writer.write(piece)
                    await writer.drain()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        if self.tasks:
            await asyncio.wait(self.tasks)
        if self.server is not None:
            await self.server.wait_closed()
