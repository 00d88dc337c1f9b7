"""A :class:`~drivers.visa.link.Link` for ``TCPIP[n]::host[::inst0|::gpib0,N|::name]::INSTR``:
VXI-11 (ONC RPC over TCP, :mod:`drivers.visa.vxi11_wire`) with asyncio, on the event loop — no
worker thread, no pyvisa. Why: as for raw sockets and HiSLIP (:mod:`drivers.visa.socket_link`,
:mod:`drivers.visa.hislip_link`), each RPC is a ``send`` and one wake-up when its reply arrives,
where pyvisa costs a hop to the session's worker thread and back per read; and the reply's wait
is a timer on the loop, which nothing can ignore.

What it keeps of pyvisa-py 0.8's VXI-11 client (``pyvisa_py/tcpip.py`` ``TCPIPInstrVxi11`` over
``protocols/vxi11.py`` and ``rpc.py``, under pyvisa 1.16's ``MessageBasedResource``), so a config
reads the same either way:

- the session: the portmapper's GETPORT (TCP, port 111 — ``vxi11_portmapper_port`` for a
  simulator) for the core channel (program 0x0607AF version 1), or the port given in the resource
  as ``host,port`` (pyvisa-py's way past the portmapper); ``create_link`` with a random 31-bit
  client id, no lock, ``lock_timeout`` 10,000 ms and the device name (``inst0`` when the resource
  names none); the device's ``maxRecvSize`` (at most 1 GiB) bounds the chunks written;
- a write is the command, then ``write_termination``, encoded with ``encoding``, sent by
  ``device_write`` in chunks of ``maxRecvSize``, the END flag on the last; ``io_timeout`` is the
  link's timeout in ms; a device that takes fewer bytes than sent is an error;
- a query is that write, then ``query_delay_s`` of sleep when it is not zero, then a read;
- a read calls ``device_read`` until a reply's reason says END or the termination character:
  with ``read_termination`` set, ``termChar`` is its last character and the TERMCHAR_SET flag is
  on (pyvisa's ``termchar_enabled``); with ``read_termination: null`` the read ends at END alone.
  The request size is at most 1 MiB (and ``maxRecvSize``), each call's ``io_timeout`` what is left
  of the read's timeout. The reply is decoded and ``read_termination`` stripped when it ends with
  it (else returned as it came, as pyvisa does after its warning);
- device clear is ``device_clear``; closing sends ``destroy_link`` (without waiting for its
  answer: the connection's end destroys the link too) and closes the connection;
- an RPC reply is matched by its ``xid`` (one per call, from a random start, going up by 1): a
  reply to an older call (a cancelled or timed-out one) is dropped, as pyvisa-py drops it; a reply
  from the future is an error (pyvisa-py's ``wrong xid``).

Errors: a device error code is a ``LinkError`` naming the code and its meaning (``VXI-11 error
17 (I/O error)``), except ``io_timeout`` (15), which is a ``TimeoutError`` — as is no reply within
the link's timeout (pyvisa-py waits a second longer for the RPC; here the job's budget is kept).
Hostile input is refused as it arrives — a record mark announcing a fragment beyond 1 MiB
(refused before its bytes are waited for), a reply to no call of ours, a record that is no RPC
reply, a call denied or not accepted, a read reply of more than 1 MiB in pieces — each a
``LinkError``, the connection given up and the fault counted in :data:`FAULTS`; a device error is
counted too (``device error``). A closed connection fails the read at once.

Not done: the abort channel (``device_abort``, VXI-11's way to stop a call in progress): a call
that takes too long is given up by its timer, and the session re-opens on a new link; no locks,
SRQ, triggers or ``docmd``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections import Counter
from typing import NamedTuple

from core.errors import NotConnected
from drivers.faults import fault_counter
from drivers.visa.config import VisaInstrument, Vxi11Address
from drivers.visa.link import LinkError
from drivers.visa.loop_link import OTHER_LOOP, LoopLink, ReplyDeadline
from drivers.visa.vxi11_wire import (
    CORE_PROG,
    CORE_VERS,
    CREATE_LINK,
    DESTROY_LINK,
    DEVICE_CLEAR,
    DEVICE_READ,
    DEVICE_WRITE,
    FLAG_END,
    FLAG_TERMCHAR_SET,
    GETPORT,
    IO_TIMEOUT,
    IPPROTO_TCP,
    LAST_FRAGMENT,
    LOCK_TIMEOUT_MS,
    MARK,
    MAX_RECORD,
    PORTMAPPER_PROG,
    PORTMAPPER_VERS,
    REASON_CHR,
    REASON_END,
    REPLY,
    REPLY_HEADER,
    REPLY_HEADER_SIZE,
    WireError,
    call,
    error_text,
    opaque,
    reply_body,
    unpack_opaque,
)

log = logging.getLogger("etalon.drivers.visa")

MAX_REPLY = 1 << 20
"""The most bytes of one reply a read collects (in ``device_read`` pieces), and the request size
it asks for."""

FAULTS: Counter[str] = fault_counter("VXI-11")
"""VXI-11 faults seen by every link of this process, by kind (``malformed reply``, ``oversized``,
``wrong xid``, ``RPC denied``, ``RPC not accepted``, ``device error``): each also logged once,
as a warning naming the instrument; the agent's ``protocol_faults`` self-metric counts them
(:mod:`drivers.faults`)."""

_WRITE = struct.Struct("!iIIiI")
"""device_write's arguments before the data: link, io_timeout, lock_timeout, flags, length."""
_READ = struct.Struct("!iIIIii")
"""device_read's arguments: link, requestSize, io_timeout, lock_timeout, flags, termChar."""
_GENERIC = struct.Struct("!iiII")
"""device_clear's arguments: link, flags, lock_timeout, io_timeout."""
_READ_REPLY = struct.Struct("!iiI")
"""device_read's result before the data: error, reason, length."""
_ERROR_SIZE = struct.Struct("!iI")
"""device_write's result: error, size."""
_ANY_END = REASON_END | REASON_CHR
_LINK = struct.Struct("!i")
"""destroy_link's argument: the link id create_link gave (signed, any of its values)."""


class _Rpc(asyncio.Protocol, ReplyDeadline):
    """One TCP connection to an RPC program: calls out, replies cut from the record marks and
    matched by xid; one call waited for at a time (see :class:`~drivers.visa.loop_link.
    ReplyDeadline`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, prog: int, vers: int) -> None:
        ReplyDeadline.__init__(self, loop)
        self.name = name
        self.prog = prog
        self.vers = vers
        self.transport: asyncio.Transport | None = None
        self.xid = random.getrandbits(32)
        """The xid of the last call sent (the one whose reply is waited for)."""
        self.buffer = bytearray()
        self.fragments = bytearray()
        """The record so far (its fragments before the last)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.lost is not None:
            return
        if not self.buffer and not self.fragments and len(data) >= 4 + REPLY_HEADER_SIZE:
            (mark,) = MARK.unpack_from(data)
            if mark == LAST_FRAGMENT | (len(data) - 4):  # usual: one whole record of one fragment
                self._record(data[4:])
                return
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 4 and self.lost is None:
            (mark,) = MARK.unpack_from(buffer)
            length = mark & ~LAST_FRAGMENT
            if len(self.fragments) + length > MAX_RECORD:
                self.give_up(
                    "oversized",
                    f"a record mark announcing {len(self.fragments) + length} bytes (at most "
                    f"{MAX_RECORD})",
                )
                return
            if len(buffer) < 4 + length:
                return
            self.fragments += buffer[4 : 4 + length]
            del buffer[: 4 + length]
            if mark & LAST_FRAGMENT:
                whole = bytes(self.fragments)
                self.fragments.clear()
                self._record(whole)

    def _record(self, whole: bytes) -> None:
        """A whole reply record: the result handed to the call waiting for it."""
        waiter = self.waiter
        expected = self.xid
        if len(whole) >= REPLY_HEADER_SIZE:
            xid, kind, status, flavor, length, accept = REPLY_HEADER.unpack_from(whole)
            if (  # usual: the reply waited for, accepted, with an empty verifier
                xid == expected
                and kind == REPLY
                and not (status or flavor or length or accept)
                and waiter is not None
            ):
                self.waiter = None
                if not waiter.done():
                    waiter.set_result(whole[REPLY_HEADER_SIZE:])
                return
        try:
            xid, result = reply_body(whole)
        except WireError as exc:
            self.give_up(exc.kind, str(exc))
            return
        if xid != expected:
            if 0 < (expected - xid) & 0xFFFF_FFFF < 1 << 31:
                return  # a reply to an older call, given up (pyvisa-py drops it too)
            self.give_up("wrong xid", f"a reply with xid {xid}, not {expected} (no such call)")
            return
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(result)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:  # our own abort after a fault keeps its reason
            self.lost = "connection closed by the instrument" if exc is None else f"{exc}"
        self.stop_timer()
        self.fail_waiter(LinkError(self.lost))

    def give_up(self, kind: str, reason: str) -> None:
        """A protocol fault: counted, logged, the call waiting failed, the connection closed."""
        if self.lost is not None:
            return
        FAULTS[kind] += 1
        log.warning("VXI-11 link given up", extra={"instrument": self.name, "reason": reason})
        self.lost = reason
        self.fail_waiter(LinkError(reason))
        self._abort()

    def _abort(self) -> None:
        self.stop_timer()
        transport, self.transport = self.transport, None
        if transport is not None and not self.loop.is_closed():
            transport.abort()

    def call(self, proc: int, arguments: bytes, timeout_s: float) -> asyncio.Future[bytes]:
        """Send a call; a future of its result, failing with TimeoutError after ``timeout_s``
        (LinkError when the connection ends)."""
        waiter = self.loop.create_future()
        transport = self.transport
        if self.lost is not None or transport is None:
            waiter.set_exception(LinkError(self.lost or "link closed"))
            return waiter
        self.xid = xid = (self.xid + 1) & 0xFFFF_FFFF
        transport.write(call(xid, self.prog, self.vers, proc, arguments))
        self.await_reply(waiter, timeout_s)
        return waiter

    def close(self) -> None:
        """Close the connection now; a call waiting fails with LinkError."""
        if self.lost is None:
            self.lost = "link closed"
        self.fail_waiter(LinkError("link closed"))
        self._abort()


class _Opened(NamedTuple):
    rpc: _Rpc
    link_id: int
    max_recv_size: int


def _ms(seconds: float) -> int:
    """A timeout as VXI-11 sends it: whole ms (pyvisa-py's ``int(timeout * 1000)``)."""
    return min(max(0, int(seconds * 1000)), 0xFFFF_FFFF)


async def _connect(
    loop: asyncio.AbstractEventLoop, name: str, host: str, port: int, prog: int, vers: int
) -> _Rpc:
    _, rpc = await loop.create_connection(lambda: _Rpc(loop, name, prog, vers), host, port)
    return rpc


async def _core_port(name: str, host: str, port: int, open_s: float) -> int:
    """The core channel's TCP port, as the portmapper at ``host``:``port`` says."""
    loop = asyncio.get_running_loop()
    portmapper = await _connect(loop, name, host, port, PORTMAPPER_PROG, PORTMAPPER_VERS)
    try:
        mapping = struct.pack("!IIII", CORE_PROG, CORE_VERS, IPPROTO_TCP, 0)
        result = await portmapper.call(GETPORT, mapping, open_s)
    finally:
        portmapper.close()
    if len(result) < 4:
        raise LinkError(f"the portmapper's GETPORT answered {result!r}")
    (core,) = MARK.unpack_from(result)
    if not 0 < core < 65536:
        raise LinkError(f"the portmapper on port {port} knows no VXI-11 core channel")
    return int(core)


async def _create_link(config: VisaInstrument, address: Vxi11Address, open_s: float) -> _Opened:
    loop = asyncio.get_running_loop()
    core = address.core_port
    if core is None:
        core = await _core_port(config.name, address.host, address.portmapper_port, open_s)
    rpc = await _connect(loop, config.name, address.host, core, CORE_PROG, CORE_VERS)
    try:
        arguments = struct.pack("!iiI", random.getrandbits(31), 0, LOCK_TIMEOUT_MS) + opaque(
            address.device.encode("ascii")
        )
        result = await rpc.call(CREATE_LINK, arguments, open_s)
        if len(result) < 16:
            raise LinkError(f"create_link answered {result!r}")
        error, link_id, _, max_recv_size = struct.unpack_from("!iiII", result)
        if error:
            raise LinkError(f"create_link {address.device!r}: {error_text(error)}")
        if max_recv_size < 1:
            raise LinkError("create_link: the device takes writes of 0 bytes (maxRecvSize 0)")
    except BaseException:
        rpc.close()
        raise
    return _Opened(rpc, link_id, min(max_recv_size, 1 << 30))


class Vxi11Link(LoopLink[_Rpc]):
    """One VXI-11 link to an instrument (see the module doc)."""

    def __init__(self, config: VisaInstrument, opened: _Opened) -> None:
        super().__init__(config, opened.rpc)
        self._link_id = opened.link_id
        self._max_recv = opened.max_recv_size
        term = config.read_termination
        self._read_flags = FLAG_TERMCHAR_SET if term else 0
        self._term_char = ord(term[-1]) if term else 0  # pyvisa's termchar attribute
        self._request = min(MAX_REPLY, self._max_recv)
        self._io_ms = -1
        self._write_head = b""
        self._read_arguments = b""
        self.set_timeout(self._timeout_s)

    @classmethod
    async def open(cls, config: VisaInstrument, address: Vxi11Address, open_s: float) -> Vxi11Link:
        """Find the core channel, connect and create the link within ``open_s``; NotConnected
        says why it cannot."""
        where = f"cannot open {config.resource}"
        try:
            async with asyncio.timeout(open_s):
                opened = await _create_link(config, address, open_s)
        except TimeoutError as exc:
            raise NotConnected(config.name, f"{where}: no VXI-11 link within {open_s:g} s") from exc
        except OSError as exc:
            raise NotConnected(config.name, f"{where}: {type(exc).__name__}: {exc}") from exc
        except LinkError as exc:
            raise NotConnected(config.name, f"{where}: {exc}") from exc
        return cls(config, opened)

    def set_timeout(self, seconds: float) -> None:
        """The timeout of the next calls (sent to the device as their ``io_timeout``)."""
        self._timeout_s = seconds
        io_ms = _ms(seconds)
        if io_ms != self._io_ms:
            self._io_ms = io_ms
            self._write_head = struct.pack("!iII", self._link_id, io_ms, LOCK_TIMEOUT_MS)
            self._read_arguments = self._read_call(io_ms)

    def _read_call(self, io_ms: int) -> bytes:
        return _READ.pack(
            self._link_id, self._request, io_ms, LOCK_TIMEOUT_MS, self._read_flags, self._term_char
        )

    def _check(self, what: str, error: int) -> None:
        """A device error in a result: TimeoutError (15) or LinkError, the connection given up."""
        if error == IO_TIMEOUT:
            raise TimeoutError
        self._wire.give_up("device error", f"{what}: {error_text(error)}")
        raise LinkError(f"{what}: {error_text(error)}")

    async def write(self, command: str) -> None:
        """Send a command (``device_write``, see the module doc)."""
        self._usable()
        await self._write(self._command_bytes(command))

    async def _write(self, data: bytes) -> None:
        wire = self._wire
        step = self._max_recv
        start = 0
        while True:
            chunk = data[start : start + step]
            start += len(chunk)
            flags = FLAG_END if start >= len(data) else 0
            arguments = (
                self._write_head
                + struct.pack("!iI", flags, len(chunk))
                + chunk
                + bytes(-len(chunk) % 4)
            )
            result = await wire.call(DEVICE_WRITE, arguments, self._timeout_s)
            if len(result) < 8:
                wire.give_up("malformed reply", f"device_write answered {result!r}")
                raise LinkError(wire.lost or "")
            error, size = _ERROR_SIZE.unpack_from(result)
            if error:
                self._check("device_write", error)
            if size < len(chunk):
                wire.give_up(
                    "device error", f"device_write: the device took {size} of {len(chunk)} bytes"
                )
                raise LinkError(wire.lost or "")
            if flags:
                return

    async def query(self, command: str) -> str:
        """Send a query, wait the query delay, read one reply: decoded, the read termination
        stripped when it ends with it (see the module doc)."""
        wire = self._wire  # _usable written out, as in LoopLink.query: every read comes here
        if wire.lost is not None:
            raise LinkError(wire.lost)
        if wire.loop is not asyncio.get_running_loop():
            raise LinkError(OTHER_LOOP)
        data = self._encoded.get(command)
        await self._write(self._command_bytes(command) if data is None else data)
        if self._delay:
            await asyncio.sleep(self._delay)
        result = await wire.call(DEVICE_READ, self._read_arguments, self._timeout_s)
        if len(result) >= 12:
            error, reason, length = _READ_REPLY.unpack_from(result)
            if not error and reason & _ANY_END and length == len(result) - 12 - (-length % 4):
                reply = result[12 : 12 + length]  # usual: the whole reply in one device_read
            else:
                reply = await self._read_on(result)
        else:
            reply = await self._read_on(result)
        message = reply.decode(self._encoding)
        term = self._read_term
        if term and message.endswith(term):
            return message[: -len(term)]
        return message

    async def _read_on(self, result: bytes) -> bytes:
        """The reply of which ``result`` (a device_read's) is the first piece: device_read called
        again until END or the termination character, within what is left of the timeout."""
        wire = self._wire
        loop = wire.loop
        deadline = loop.time() + self._timeout_s
        pieces = bytearray()
        while True:
            if len(result) < 12:
                wire.give_up("malformed reply", f"device_read answered {result!r}")
                raise LinkError(wire.lost or "")
            error, reason, _ = _READ_REPLY.unpack_from(result)
            if error:
                self._check("device_read", error)
            try:
                data, _ = unpack_opaque(result, 8)
            except WireError as exc:
                wire.give_up(exc.kind, f"device_read: {exc}")
                raise LinkError(wire.lost or "") from exc
            pieces += data
            if len(pieces) > MAX_REPLY:
                wire.give_up("oversized", f"a reply of more than {MAX_REPLY} bytes")
                raise LinkError(wire.lost or "")
            if reason & _ANY_END:
                return bytes(pieces)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            result = await wire.call(DEVICE_READ, self._read_call(_ms(left)), left)

    async def clear(self) -> None:
        """Device clear (``device_clear``)."""
        wire = self._wire
        if wire.loop is not asyncio.get_running_loop():
            raise LinkError(OTHER_LOOP)
        arguments = _GENERIC.pack(self._link_id, 0, LOCK_TIMEOUT_MS, self._io_ms)
        result = await wire.call(DEVICE_CLEAR, arguments, self._timeout_s)
        if len(result) < 4:
            wire.give_up("malformed reply", f"device_clear answered {result!r}")
            raise LinkError(wire.lost or "")
        (error,) = struct.unpack_from("!i", result)
        if error:
            self._check("device_clear", error)

    def close(self) -> None:
        """``destroy_link`` sent (its answer not waited for), the connection closed; a read
        waiting fails with LinkError. Never raises."""
        wire = self._wire
        transport = wire.transport
        if (
            wire.lost is None
            and transport is not None
            and not wire.loop.is_closed()
            and not transport.get_write_buffer_size()  # else the device takes nothing: abort
        ):
            wire.xid = xid = (wire.xid + 1) & 0xFFFF_FFFF
            destroy = _LINK.pack(self._link_id)  # (a Device_Link is signed: XDR int)
            transport.write(call(xid, wire.prog, wire.vers, DESTROY_LINK, destroy))
            wire.transport = None
            wire.lost = "link closed"
            wire.stop_timer()
            wire.fail_waiter(LinkError("link closed"))
            transport.close()  # after what is buffered: the destroy_link goes out first
            return
        wire.close()
