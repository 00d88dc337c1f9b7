"""A VXI-11 server (ONC RPC over TCP, :mod:`drivers.visa.vxi11_wire`) in front of a simulated SCPI
instrument: a portmapper answering GETPORT for the core channel (program 0x0607AF version 1, TCP)
and the core channel itself, so the instrument is reached as ``TCPIP::127.0.0.1::INSTR`` through
the portmapper (on port 111 for bare pyvisa-py; any port for etalon's link with
``vxi11_portmapper_port``), or as ``TCPIP::127.0.0.1,PORT::INSTR`` straight to the core channel
(pyvisa-py's way past the portmapper, which etalon's link takes too).

What it serves (no abort or interrupt channel, locks granted at once): ``create_link`` (device
names ``inst0``… and ``gpib0,N``; any other is error 3, device not accessible; ``maxRecvSize``
:attr:`Vxi11Server.max_recv_size`), ``device_write`` (a program message in chunks up to the END
flag, then run by the instrument while the call returns), ``device_read`` (the reply, up to the
request size, the termination character when TERMCHAR_SET, or its END; error 15 when none comes
within the call's ``io_timeout``), ``device_clear`` (input and replies dropped, a reply in the
works never sent), ``device_readstb``, ``device_trigger``/``remote``/``local``/``lock``/
``unlock`` (answered), ``destroy_link``; links end with their connection.

Hostile or broken clients are answered as ONC RPC says, counted in
:attr:`Vxi11Server.protocol_faults` and never hang it: a record mark announcing more than 1 MiB
closes the connection (``oversized``), as does a message that is no call (``malformed call``) or
a record whose bytes do not follow within :attr:`Vxi11Server.message_timeout_s` (``incomplete
record``); another RPC version is denied (``RPC version``), another program ``program
unavailable``, another version ``version mismatch``, an unknown procedure ``procedure
unavailable``, arguments that do not decode ``garbage arguments``; an unknown link is VXI-11
error 4. Nothing a client does grows the server without bound: a connection holds at most
:data:`MAX_LINKS` links (``create_link`` beyond them is error 9, out of resources: ``too many
links``), and a link at most 1 MiB of replies not read yet (newer ones are dropped: ``replies
unread``).

Fault hook for client tests, :attr:`Vxi11Server.reply_fault` (one-shot, the next device_read):
see :data:`REPLY_FAULTS`; :attr:`Vxi11Server.read_size` serves replies in pieces.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from drivers.sim.faults import FaultHooks
from drivers.sim.serving import StreamServed
from drivers.visa.vxi11_wire import (
    CALL,
    CORE_PROG,
    CORE_VERS,
    CREATE_LINK,
    DESTROY_LINK,
    DEVICE_CLEAR,
    DEVICE_LOCAL,
    DEVICE_LOCK,
    DEVICE_READ,
    DEVICE_READSTB,
    DEVICE_REMOTE,
    DEVICE_TRIGGER,
    DEVICE_UNLOCK,
    DEVICE_WRITE,
    FLAG_END,
    FLAG_TERMCHAR_SET,
    GETPORT,
    IO_TIMEOUT,
    IPPROTO_TCP,
    LAST_FRAGMENT,
    MARK,
    MAX_RECORD,
    MSG_DENIED,
    PORTMAPPER_PROG,
    PORTMAPPER_VERS,
    REASON_CHR,
    REASON_END,
    REASON_REQCNT,
    REPLY,
    REPLY_HEADER,
    RPC_VERSION,
    WireError,
    accepted,
    opaque,
    record,
    unpack_opaque,
)

log = logging.getLogger("etalon.drivers.sim.scpi")

MESSAGE_TIMEOUT_S = 10.0
"""How long a record's bytes may take to arrive once its first record mark has (a client that
stalls inside a record is closed: it holds its own connection, never the server)."""

MAX_RECV_SIZE = 1 << 20
"""The largest chunk of a program message the server takes in one device_write (it says so in
create_link; a test may make clients write in chunks)."""

MAX_WAIT_S = 3600.0
"""The longest a device_read waits for a reply, whatever its io_timeout says."""

MAX_LINKS = 16
"""The links one connection may hold: ``create_link`` beyond them is VXI-11 error 9 (out of
resources), as an instrument's limit — else a client calling it in a loop grows the server
without bound."""

REPLY_COST = 16
"""What a reply held for device_read counts beyond its bytes (:attr:`_Link.held`): empty
replies are bounded in number too."""

_PROG_UNAVAIL = 1
_PROG_MISMATCH = 2
_PROC_UNAVAIL = 3
_GARBAGE_ARGS = 4

_DEVICE = re.compile(r"^(inst\d+|gpib\d+,\d+)$", re.IGNORECASE)

REPLY_FAULTS = {
    "oversized": "a record mark announcing 2 GiB (nothing follows)",
    "short": "a record of 4 bytes: no RPC reply",
    "not_a_reply": "a record carrying an RPC call with the reply's xid",
    "wrong_xid": "the reply with an xid no call had (1000 ahead)",
    "stale": "a reply to an older call first (xid one less), then the reply",
    "fragments": "the reply record in fragments of 5 bytes",
    "denied": "MSG_DENIED (authentication error) instead of the reply",
    "not_accepted": "MSG_ACCEPTED with status 5 (system error) instead of the reply",
    "bad_length": "a device_read result whose data length runs past the record",
    "device_error": "device_read's result with VXI-11 error 17 (I/O error)",
    "io_timeout": "device_read's result with VXI-11 error 15 (I/O timeout), at once",
    "close": "the connection closed instead of the reply",
    "truncated": "a record mark announcing 100 bytes more than follow (a stalled server)",
}
"""What :attr:`Vxi11Server.reply_fault` makes of the next device_read's reply."""

Answer = Callable[[bytes], Awaitable[list[bytes]]]
"""The instrument: one program message in, its replies out (none: it says nothing)."""


class _Closed(Exception):
    """The connection is to be closed (counted already)."""


class _Garbage(Exception):
    """A procedure's arguments do not decode."""


@dataclass
class _Link:
    """One client's link to the instrument and what is in flight on it."""

    link_id: int
    pending: bytearray = field(default_factory=bytearray)
    """The program message so far (its device_write chunks)."""
    replies: deque[bytearray] = field(default_factory=deque)
    """Response messages not read yet (the first one perhaps in part)."""
    held: int = 0
    """What :attr:`replies` holds: their bytes, and :data:`REPLY_COST` each; at most
    :data:`~drivers.visa.vxi11_wire.MAX_RECORD` (a client that writes queries and never reads
    their replies loses the newer ones, counted as ``replies unread``)."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a reply comes (or the link ends)."""
    generation: int = 0
    """Bumped by a device clear: a reply worked out before it is not kept."""
    ended: bool = False


@dataclass
class _Call:
    xid: int
    prog: int
    vers: int
    proc: int
    arguments: bytes


class _RpcServer(StreamServed):
    """ONC RPC over TCP: records in, calls parsed and checked, :meth:`_dispatch`'s replies out."""

    prog = 0
    vers = 0

    def __init__(self, host: str, port: int, protocol_faults: Counter[str]) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.connections = 0
        """TCP connections accepted so far."""
        self.protocol_faults = protocol_faults
        self.message_timeout_s = MESSAGE_TIMEOUT_S

    async def start(self) -> None:
        """Listen (a free port for 0)."""
        self.port = await self._listen(self._serve, self.host, self.port)

    async def stop(self) -> None:
        """Close every connection and the listener; idempotent."""
        await self._shut(cancel=lambda _: False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        quiet = (ConnectionError, asyncio.IncompleteReadError, TimeoutError, _Closed)
        await self._converse(writer, self._talk(reader, writer), quiet, wait_closed=True)

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            reply = await self._dispatch(await self._call(reader), writer)
            if reply is None:
                return
            writer.write(reply)
            await writer.drain()

    def _refuse(self, kind: str, text: str) -> _Closed:
        self.protocol_faults[kind] += 1
        log.info("vxi11 client refused", extra={"reason": text})
        return _Closed(text)

    async def _record(self, reader: asyncio.StreamReader) -> bytes:
        mark = await reader.readexactly(4)  # idle: a client may wait as long as it likes
        whole = bytearray()
        try:
            async with asyncio.timeout(self.message_timeout_s):
                while True:
                    (value,) = MARK.unpack(mark)
                    length = value & ~LAST_FRAGMENT
                    if len(whole) + length > MAX_RECORD:
                        raise self._refuse(
                            "oversized", f"a record mark announcing {len(whole) + length} bytes"
                        )
                    whole += await reader.readexactly(length)
                    if value & LAST_FRAGMENT:
                        return bytes(whole)
                    mark = await reader.readexactly(4)
        except TimeoutError:
            self.protocol_faults["incomplete record"] += 1
            raise

    async def _call(self, reader: asyncio.StreamReader) -> _Call | bytes:
        """The next call, or the reply refusing it."""
        whole = await self._record(reader)
        if len(whole) < 24:
            raise self._refuse("malformed call", f"a record of {len(whole)} bytes is no call")
        xid, kind, version, prog, vers, proc = struct.unpack_from("!IIIIII", whole)
        if kind != CALL:
            raise self._refuse("malformed call", f"an RPC message of type {kind}, not a call")
        if version != RPC_VERSION:
            self.protocol_faults["RPC version"] += 1  # MSG_DENIED, RPC_MISMATCH 2..2
            return record(struct.pack("!IIIIII", xid, REPLY, MSG_DENIED, 0, 2, 2))
        try:
            _, offset = unpack_opaque(whole, 28)  # the credential's body, after its flavor
            _, offset = unpack_opaque(whole, offset + 4)  # the verifier's
        except WireError as exc:
            raise self._refuse("malformed call", f"an RPC call cut short: {exc}") from exc
        if prog != self.prog:
            self.protocol_faults["program unavailable"] += 1
            return accepted(xid, b"", _PROG_UNAVAIL)
        if vers != self.vers:
            self.protocol_faults["version mismatch"] += 1
            return accepted(xid, struct.pack("!II", self.vers, self.vers), _PROG_MISMATCH)
        return _Call(xid, prog, vers, proc, whole[offset:])

    async def _dispatch(self, call: _Call | bytes, writer: asyncio.StreamWriter) -> bytes | None:
        """The reply to send (None: close the connection)."""
        if isinstance(call, bytes):
            return call
        try:
            return await self._procedure(call, writer)
        except _Garbage:
            self.protocol_faults["garbage arguments"] += 1
            return accepted(call.xid, b"", _GARBAGE_ARGS)
        except struct.error:
            self.protocol_faults["garbage arguments"] += 1
            return accepted(call.xid, b"", _GARBAGE_ARGS)

    async def _procedure(self, call: _Call, writer: asyncio.StreamWriter) -> bytes | None:
        raise NotImplementedError

    def _unavailable(self, call: _Call) -> bytes:
        self.protocol_faults["procedure unavailable"] += 1
        return accepted(call.xid, b"", _PROC_UNAVAIL)


class PortmapperServer(_RpcServer):
    """The portmapper (program 100000 version 2): NULL, and GETPORT for the core channel."""

    prog = PORTMAPPER_PROG
    vers = PORTMAPPER_VERS

    def __init__(
        self, core_port: Callable[[], int], host: str, port: int, faults: Counter[str]
    ) -> None:
        super().__init__(host, port, faults)
        self.core_port = core_port

    async def _procedure(self, call: _Call, writer: asyncio.StreamWriter) -> bytes | None:
        if call.proc == 0:
            return accepted(call.xid, b"")
        if call.proc != GETPORT:
            return self._unavailable(call)
        prog, vers, protocol, _ = struct.unpack_from("!IIII", call.arguments)
        found = (prog, vers, protocol) == (CORE_PROG, CORE_VERS, IPPROTO_TCP)
        return accepted(call.xid, MARK.pack(self.core_port() if found else 0))


class Vxi11Server(_RpcServer):
    """Serves VXI-11's core channel for one instrument (``answer``), and its portmapper;
    ``async with`` starts and stops both."""

    prog = CORE_PROG
    vers = CORE_VERS

    def __init__(
        self,
        answer: Answer,
        faults: FaultHooks,
        status: Callable[[], int],
        host: str = "127.0.0.1",
        portmapper_port: int = 0,
    ) -> None:
        super().__init__(host, 0, Counter())
        self.answer = answer
        self.faults = faults
        self.status = status
        self.portmapper = PortmapperServer(
            lambda: self.port, host, portmapper_port, self.protocol_faults
        )
        self.links: dict[int, _Link] = {}
        self.reply_fault: str | None = None
        """One-shot: what the next device_read's reply is made into (see
        :data:`REPLY_FAULTS`)."""
        self.read_size: int | None = None
        """Serve replies in device_read pieces of at most this many bytes (a small output
        buffer; reason REQCNT until the last piece)."""
        self.max_recv_size = MAX_RECV_SIZE
        """The maxRecvSize create_link announces (a test may make clients write in chunks); it
        takes up to 1 MiB in one device_write whatever it says."""
        self._last_id = 0

    async def start(self) -> None:
        """Listen on the core channel's port, then the portmapper's (free ports for 0)."""
        await super().start()
        await self.portmapper.start()

    async def stop(self) -> None:
        """Close every connection and both listeners; idempotent."""
        self._end_links()
        await self.portmapper.stop()
        await super().stop()

    def resource(self, host: str | None = None) -> str:
        """The VISA resource name straight to the core channel (``host,port``, as pyvisa-py
        reads it): no portmapper needed."""
        return f"TCPIP::{host or self.host},{self.port}::INSTR"

    def portmapper_resource(self, host: str | None = None) -> str:
        """The VISA resource name through the portmapper (on :attr:`portmapper_port`)."""
        return f"TCPIP::{host or self.host}::inst0::INSTR"

    @property
    def portmapper_port(self) -> int:
        """The portmapper's TCP port."""
        return self.portmapper.port

    def drop_connections(self) -> None:
        """Close every open connection now (the device rebooted its network stack)."""
        self._end_links()
        super().drop_connections()
        self.portmapper.drop_connections()

    def _end_links(self) -> None:
        for link in list(self.links.values()):
            link.ended = True
            link.ready.set()  # a device_read waiting returns

    # -- the core channel --------------------------------------------------------------------

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.faults.refresh()
        if self.faults.disconnected:
            return
        own: list[_Link] = []
        try:
            while True:
                call = await self._call(reader)
                self.faults.refresh()
                if self.faults.disconnected:
                    return
                reply: bytes | None
                if isinstance(call, _Call) and call.proc == CREATE_LINK:
                    reply = self._create_link(call, own)
                else:
                    reply = await self._dispatch(call, writer)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
        finally:
            for link in own:  # links end with their connection
                link.ended = True
                link.ready.set()
                self.links.pop(link.link_id, None)

    def _create_link(self, call: _Call, own: list[_Link]) -> bytes:
        try:
            _, _, _ = struct.unpack_from("!iiI", call.arguments)
            name, _ = unpack_opaque(call.arguments, 12)
        except (struct.error, WireError):
            self.protocol_faults["garbage arguments"] += 1
            return accepted(call.xid, b"", _GARBAGE_ARGS)
        device = name.decode("latin-1")
        if not _DEVICE.match(device):
            return accepted(call.xid, struct.pack("!iiII", 3, 0, 0, 0))  # device not accessible
        own[:] = [link for link in own if not link.ended]  # (destroyed ones go)
        if len(own) >= MAX_LINKS:
            self.protocol_faults["too many links"] += 1
            return accepted(call.xid, struct.pack("!iiII", 9, 0, 0, 0))  # out of resources
        link_id = self._last_id
        for _ in range(1 << 16):
            link_id = link_id % 0x7FFF_FFFF + 1
            if link_id not in self.links:
                break
        self._last_id = link_id
        link = self.links[link_id] = _Link(link_id)
        own.append(link)
        return accepted(call.xid, struct.pack("!iiII", 0, link_id, 0, self.max_recv_size))

    async def _procedure(self, call: _Call, writer: asyncio.StreamWriter) -> bytes | None:
        proc = call.proc
        arguments = call.arguments
        if len(arguments) < 4:
            raise _Garbage
        (link_id,) = struct.unpack_from("!i", arguments)
        link = self.links.get(link_id)
        if proc == DEVICE_WRITE:
            _, _, _, flags = struct.unpack_from("!iIIi", arguments)
            data, _ = self._opaque(arguments, 16)
            if link is None:
                return accepted(call.xid, struct.pack("!iI", 4, 0))
            link.pending += data
            if len(link.pending) > MAX_RECORD:
                link.pending.clear()
                return accepted(call.xid, struct.pack("!iI", 9, 0))  # out of resources
            if flags & FLAG_END:
                message = bytes(link.pending)
                link.pending.clear()
                self._spawn(self._run(link, message))
            return accepted(call.xid, struct.pack("!iI", 0, len(data)))
        if proc == DEVICE_READ:
            _, size, io_ms, _, flags, term = struct.unpack_from("!iIIIii", arguments)
            if link is None:
                return accepted(call.xid, struct.pack("!iiI", 4, 0, 0))
            return await self._read(call.xid, link, size, io_ms, flags, term, writer)
        if proc == DESTROY_LINK:
            if link is None:
                return accepted(call.xid, struct.pack("!i", 4))
            link.ended = True
            link.ready.set()
            del self.links[link_id]
            return accepted(call.xid, struct.pack("!i", 0))
        if proc in (DEVICE_CLEAR, DEVICE_READSTB, DEVICE_TRIGGER, DEVICE_REMOTE, DEVICE_LOCAL):
            struct.unpack_from("!iiII", arguments)
        elif proc in (DEVICE_LOCK, DEVICE_UNLOCK):
            pass
        else:
            return self._unavailable(call)
        if link is None:
            error = struct.pack("!iI", 4, 0) if proc == DEVICE_READSTB else struct.pack("!i", 4)
            return accepted(call.xid, error)
        if proc == DEVICE_CLEAR:
            link.generation += 1
            link.pending.clear()
            link.replies.clear()
            link.held = 0
            link.ready.clear()
        if proc == DEVICE_READSTB:
            return accepted(call.xid, struct.pack("!iI", 0, self.status() & 0xFF))
        return accepted(call.xid, struct.pack("!i", 0))

    @staticmethod
    def _opaque(arguments: bytes, offset: int) -> tuple[bytes, int]:
        try:
            return unpack_opaque(arguments, offset)
        except WireError as exc:
            raise _Garbage from exc

    async def _run(self, link: _Link, message: bytes) -> None:
        """The instrument works on one program message; its replies are kept for device_read
        (unless the link was cleared or ended meanwhile)."""
        generation = link.generation
        replies = await self.answer(message)
        if replies and link.generation == generation and not link.ended:
            size = sum(len(reply) + REPLY_COST for reply in replies)
            if link.held + size > MAX_RECORD:
                self.protocol_faults["replies unread"] += 1
                log.info("vxi11 reply dropped", extra={"reason": "replies unread"})
                return
            link.replies.extend(bytearray(reply) for reply in replies)
            link.held += size
            link.ready.set()

    async def _read(
        self,
        xid: int,
        link: _Link,
        size: int,
        io_ms: int,
        flags: int,
        term: int,
        writer: asyncio.StreamWriter,
    ) -> bytes | None:
        if not link.replies:
            link.ready.clear()
            try:
                async with asyncio.timeout(min(io_ms / 1000, MAX_WAIT_S)):
                    await link.ready.wait()
            except TimeoutError:
                pass
        if not link.replies:  # none within io_timeout (or the link ended)
            return accepted(xid, struct.pack("!iiI", IO_TIMEOUT, 0, 0))
        reply = link.replies[0]
        end = min(len(reply), max(1, size), self.read_size or len(reply))
        reason = REASON_REQCNT if end < len(reply) else REASON_END
        if flags & FLAG_TERMCHAR_SET:
            found = reply.find(term & 0xFF, 0, end)
            if found >= 0:
                end = found + 1
                reason = REASON_CHR | (REASON_END if end == len(reply) else 0)
        data = bytes(reply[:end])
        del reply[:end]
        link.held -= end
        if not reply:
            link.replies.popleft()
            link.held -= REPLY_COST
        result = struct.pack("!ii", 0, reason) + opaque(data)
        return self._faulty(xid, result, writer)

    def _faulty(self, xid: int, result: bytes, writer: asyncio.StreamWriter) -> bytes | None:
        """The reply record of a device_read, made into :attr:`reply_fault` if one is set."""
        fault, self.reply_fault = self.reply_fault, None
        if fault is None:
            return accepted(xid, result)
        log.info("vxi11 reply fault", extra={"reason": fault})
        if fault == "oversized":
            return MARK.pack(LAST_FRAGMENT | 0x7FFF_FFF0)
        if fault == "short":
            return record(b"\0\0\0\1")
        if fault == "not_a_reply":
            return record(struct.pack("!IIIIII", xid, CALL, RPC_VERSION, CORE_PROG, 1, 12))
        if fault == "wrong_xid":
            return accepted((xid + 1000) & 0xFFFF_FFFF, result)
        if fault == "stale":
            stale = struct.pack("!ii", 0, REASON_END) + opaque(b"stale\n")
            return accepted((xid - 1) & 0xFFFF_FFFF, stale) + accepted(xid, result)
        if fault == "fragments":
            whole = accepted(xid, result)[4:]
            marked = [MARK.pack(5) + whole[start : start + 5] for start in range(0, len(whole), 5)]
            last = whole[(len(marked) - 1) * 5 :]
            return b"".join(marked[:-1]) + MARK.pack(LAST_FRAGMENT | len(last)) + last
        if fault == "denied":
            return record(struct.pack("!IIIII", xid, REPLY, MSG_DENIED, 1, 1))
        if fault == "not_accepted":
            return accepted(xid, b"", 5)
        if fault == "bad_length":
            return accepted(xid, struct.pack("!iiI", 0, REASON_END, 4096) + b"1\n\0\0")
        if fault == "device_error":
            return accepted(xid, struct.pack("!iiI", 17, 0, 0))
        if fault == "io_timeout":
            return accepted(xid, struct.pack("!iiI", IO_TIMEOUT, 0, 0))
        if fault == "close":
            return None
        if fault == "truncated":
            body = REPLY_HEADER.pack(xid, REPLY, 0, 0, 0, 0) + result
            return MARK.pack(LAST_FRAGMENT | (len(body) + 100)) + body
        raise ValueError(f"unknown reply fault {fault!r} (known: {', '.join(REPLY_FAULTS)})")
