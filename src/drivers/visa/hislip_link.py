"""A :class:`~drivers.visa.link.Link` for ``TCPIP[n]::host::hislipN[,port]::INSTR``: HiSLIP
(IVI-6.1, :mod:`drivers.visa.hislip_wire`) with asyncio, on the event loop — no worker thread, no
pyvisa. Why: as for raw sockets (:mod:`drivers.visa.socket_link`), a query is a ``send`` and one
wake-up when its reply's ``DataEnd`` arrives, where pyvisa costs a hop to the session's worker
thread and back per read; and the reply's wait is a timer on the loop, which nothing can ignore.

What it keeps of pyvisa-py 0.8's HiSLIP client (``pyvisa_py/protocols/hislip.py`` under pyvisa
1.16's ``MessageBasedResource``), so a config reads the same either way:

- the session: ``Initialize`` (version 1.0, the sub-address ``hislipN``) on the synchronous
  channel, ``AsyncInitialize`` with the session id on the asynchronous one, then
  ``AsyncMaxMsgSize`` announcing 1 MiB; the server's answer bounds the messages sent to it;
- a write is the command, then ``write_termination``, encoded with ``encoding``, sent as one
  ``DataEnd`` (``Data`` messages first when it is longer than the server takes); message ids start
  at ``0xFFFFFF00`` and go up by 2; the RMT-delivered bit is set on the first message after a
  whole reply was read;
- a query is that write, then ``query_delay_s`` of sleep when it is not zero, then a read;
- a read collects ``Data`` up to the ``DataEnd`` that carries the query's message id (or
  ``0xFFFFFFFF``) and drops messages with other ids. **HiSLIP marks END itself: a reply ends at
  its DataEnd, not at a termination character** (``read_termination`` is only stripped when the
  reply ends with it, else the reply is returned as it came, as pyvisa does after its warning;
  ``read_termination: null`` works here, unlike on a SOCKET);
- a read that sees no ``DataEnd`` within the timeout fails with ``TimeoutError``;
- device clear: ``AsyncDeviceClear``, its acknowledgement, ``DeviceClearComplete`` with the
  feature bits, ``DeviceClearAcknowledge``; message ids start again at ``0xFFFFFF00``.

Differences: pyvisa-py sleeps 0.1 s in a device clear before ``DeviceClearComplete`` (for the
server's messages in flight); here whatever arrives on the synchronous channel until
``DeviceClearAcknowledge`` is dropped, which TCP's order makes exact, so a clear takes one round
trip per channel. pyvisa-py skips ``Error`` and ``FatalError`` messages and waits out its
timeout; here they fail the read at once (``LinkError`` quoting the server), as does a closed
connection, and the session is given up. Hostile input is refused as it arrives — a header
without ``HS``, a length beyond 1 MiB (refused before its payload is waited for), a reply of more
than 1 MiB in ``Data`` pieces, a message type that has no business on its channel — each a
``LinkError``, the connection given up and the fault counted in :data:`FAULTS`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import Counter

from core.errors import NotConnected
from drivers.faults import fault_counter
from drivers.visa.config import VisaInstrument
from drivers.visa.hislip_wire import (
    ANY_MESSAGE_ID,
    FIRST_MESSAGE_ID,
    HEADER,
    HEADER_SIZE,
    MAX_MESSAGE,
    VERSION,
    Message,
    WireError,
    error_text,
    pack,
    type_name,
    unpack_header,
)
from drivers.visa.link import LinkError
from drivers.visa.loop_link import OTHER_LOOP, LoopLink, ReplyDeadline

log = logging.getLogger("etalon.drivers.visa")

MAX_REPLY = 1 << 20
"""The most bytes of replies a link holds: one reply in ``Data`` pieces, or replies nobody asked
for (as :data:`drivers.visa.socket_link.MAX_PENDING`)."""

MAX_PAYLOAD = MAX_MESSAGE - HEADER_SIZE

FAULTS: Counter[str] = fault_counter("HiSLIP")
"""HiSLIP protocol faults seen by every link of this process, by kind (``malformed header``,
``oversized``, ``unexpected message``, ``FatalError``, ``Error``): each also logged once, as a
warning naming the instrument; the agent's ``protocol_faults`` self-metric counts them
(:mod:`drivers.faults`)."""

_VENDOR = b"ET"
"""The vendor id etalon's client sends in ``Initialize``."""

_DATA = int(Message.DATA)
_DATA_END = int(Message.DATA_END)
"""The data message types as plain ints, for the path every query takes: an IntEnum member costs
0.4 µs a lookup on Python 3.11, ten times a module global's."""

Expected = tuple[int, "asyncio.Future[tuple[int, int, bytes]]"]
"""A control message waited for: its type, and the future of its (control, parameter, payload)."""


class _Channel(asyncio.Protocol):
    """One of a session's two connections: cuts the bytes into messages for :class:`_Session`."""

    def __init__(self, session: _Session, sync: bool) -> None:
        self.session = session
        self.sync = sync
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session.lost is not None:
            return
        buffer = self.buffer
        if not buffer and len(data) >= HEADER_SIZE:  # usual: one whole message
            prologue, kind, control, parameter, length = HEADER.unpack_from(data)
            if prologue == b"HS" and len(data) == HEADER_SIZE + length <= MAX_MESSAGE:
                waiter = session.waiter
                if (  # most usual: the reply waited for, in one DataEnd
                    kind == _DATA_END
                    and parameter == session.expected_id
                    and waiter is not None
                    and not session.pieces
                    and not waiter.done()
                    and self.sync
                ):
                    session.waiter = None
                    session.rmt = 1
                    waiter.set_result(data[HEADER_SIZE:])
                    return
                session.deliver(self.sync, kind, control, parameter, data[HEADER_SIZE:])
                return
        buffer += data
        while len(buffer) >= HEADER_SIZE:
            try:
                kind, control, parameter, length = unpack_header(buffer, MAX_PAYLOAD)
            except WireError as exc:
                buffer.clear()
                session.give_up(exc.kind, str(exc))
                return
            end = HEADER_SIZE + length
            if len(buffer) < end:
                return
            payload = bytes(buffer[HEADER_SIZE:end])
            del buffer[:end]
            session.deliver(self.sync, kind, control, parameter, payload)
            if session.lost is not None:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        channel = "synchronous" if self.sync else "asynchronous"
        self.session.closed(
            f"{channel} channel closed by the instrument" if exc is None else f"{channel}: {exc}"
        )


class _Session(ReplyDeadline):
    """Both channels of one HiSLIP session and what is waited for on them (a reply's deadline:
    see :class:`~drivers.visa.loop_link.ReplyDeadline`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        super().__init__(loop)
        self.name = name
        self.sync: asyncio.Transport | None = None
        self.async_: asyncio.Transport | None = None
        self.max_payload = MAX_PAYLOAD
        """The largest payload the server takes (its ``AsyncMaxMsgSizeResponse``)."""
        self.message_id = FIRST_MESSAGE_ID
        self.expected_id = -1
        """The message id of the last Data/DataEnd sent: the id its reply carries."""
        self.rmt = 0
        """1 once a whole reply was read since the last message sent (RMT-delivered)."""
        self.pieces = bytearray()
        """The reply's ``Data`` payloads so far."""
        self.ready: list[bytes] = []
        """Whole replies nobody waits for yet (one came during the query delay)."""
        self.ready_size = 0
        """What :attr:`ready` holds, counted as bytes with a header's worth per reply: kept as
        it changes (summing the list at each message made a flood of small replies quadratic,
        the event loop held for seconds), and bounding empty replies' number too."""
        self.sync_expected: Expected | None = None
        self.async_expected: Expected | None = None

    # -- receiving -------------------------------------------------------------------------

    def deliver(self, sync: bool, kind: int, control: int, parameter: int, payload: bytes) -> None:
        """One message from the server (see the module doc for what each does)."""
        if sync:
            if kind in (_DATA_END, _DATA):
                if self.sync_expected is None:  # else: a device clear (or the handshake) drops it
                    self._data(kind == _DATA_END, parameter, payload)
                return
            if kind == Message.INTERRUPTED:
                return
            expected = self.sync_expected
        else:
            if kind == Message.ASYNC_SERVICE_REQUEST or kind == Message.ASYNC_INTERRUPTED:
                return
            expected = self.async_expected
        if expected is not None and kind == expected[0]:
            if not expected[1].done():
                expected[1].set_result((control, parameter, payload))
            return
        if kind == Message.FATAL_ERROR or kind == Message.ERROR:
            self.give_up(type_name(kind), f"instrument sent {error_text(kind, control, payload)}")
            return
        channel = "synchronous" if sync else "asynchronous"
        self.give_up("unexpected message", f"unexpected {type_name(kind)} on the {channel} channel")

    def _data(self, end: bool, message_id: int, payload: bytes) -> None:
        if message_id != self.expected_id and message_id != ANY_MESSAGE_ID:
            return  # a reply to an older message (pyvisa-py drops it too)
        pieces = self.pieces
        if end and not pieces:
            reply = payload
        else:
            pieces += payload
            if len(pieces) + self.ready_size > MAX_REPLY:
                self.give_up("oversized", f"a reply of more than {MAX_REPLY} bytes")
                return
            if not end:
                return
            reply = bytes(pieces)
            pieces.clear()
        self.rmt = 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_result(reply)
            return
        self.ready.append(reply)
        self.ready_size += len(reply) + HEADER_SIZE
        if self.ready_size > MAX_REPLY:
            self.give_up("oversized", f"more than {MAX_REPLY} bytes of replies not asked for")

    def closed(self, reason: str) -> None:
        """A channel's connection ended."""
        if self.lost is None:
            self.lost = reason
        self._fail(LinkError(self.lost))
        self._abort()

    def give_up(self, kind: str, reason: str) -> None:
        """A protocol fault: counted, logged, every wait failed, both connections closed."""
        if self.lost is not None:
            return
        FAULTS[kind] += 1
        log.warning("HiSLIP session given up", extra={"instrument": self.name, "reason": reason})
        self.lost = reason
        self._fail(LinkError(reason))
        self._abort()

    def _fail(self, error: Exception) -> None:
        self.fail_waiter(error)
        for expected in (self.sync_expected, self.async_expected):
            if expected is not None and not expected[1].done():
                expected[1].set_exception(error)

    def _abort(self) -> None:
        self.stop_timer()
        if self.loop.is_closed():  # its event loop ended without closing the driver first
            return
        for transport in (self.sync, self.async_):
            if transport is not None:
                transport.abort()

    # -- waiting -----------------------------------------------------------------------------

    def reply(self, timeout_s: float) -> asyncio.Future[bytes]:
        """A future of the next reply, failing with TimeoutError after ``timeout_s``."""
        waiter = self.loop.create_future()
        if self.ready:
            reply = self.ready.pop(0)
            self.ready_size -= len(reply) + HEADER_SIZE
            waiter.set_result(reply)
            return waiter
        if self.lost is not None:
            waiter.set_exception(LinkError(self.lost))
            return waiter
        self.await_reply(waiter, timeout_s)
        return waiter

    async def request(
        self, sync: bool, message: bytes, answer: Message, timeout_s: float | None
    ) -> tuple[int, int, bytes]:
        """Send a control message on a channel and wait for its answer: (control, parameter,
        payload). TimeoutError after ``timeout_s``; LinkError when the session ends."""
        transport = self.sync if sync else self.async_
        if self.lost is not None or transport is None:
            raise LinkError(self.lost or "session closed")
        expected: Expected = (answer, self.loop.create_future())
        if sync:
            self.sync_expected = expected
        else:
            self.async_expected = expected
        try:
            transport.write(message)
            async with asyncio.timeout(timeout_s):
                return await expected[1]
        finally:
            if sync:
                self.sync_expected = None
            else:
                self.async_expected = None

    # -- sending -----------------------------------------------------------------------------

    def put(self, payload: bytes) -> asyncio.Transport:
        """One program message: ``DataEnd`` (after ``Data`` pieces when it is long); the
        synchronous channel's transport."""
        transport = self.sync
        assert transport is not None
        if self.pieces:
            self.pieces.clear()
        if self.ready:
            self.ready.clear()  # replies to older messages: a read takes its own (as pyvisa-py)
            self.ready_size = 0
        step = self.max_payload
        if len(payload) <= step:  # usual: one DataEnd
            message_id = self.expected_id = self.message_id
            transport.write(
                HEADER.pack(b"HS", _DATA_END, self.rmt, message_id, len(payload)) + payload
            )
            self.message_id = (message_id + 2) & 0xFFFF_FFFF
            self.rmt = 0
            return transport
        start = 0
        while True:
            piece = payload[start : start + step]
            start += step
            end = start >= len(payload)
            message_id = self.message_id
            header = HEADER.pack(
                b"HS", _DATA_END if end else _DATA, self.rmt, message_id, len(piece)
            )
            transport.write(header + piece)
            self.expected_id = message_id
            self.message_id = (message_id + 2) & 0xFFFF_FFFF
            self.rmt = 0
            if end:
                return transport

    def cleared(self) -> None:
        """After a device clear: nothing buffered, message ids from the start."""
        self.pieces.clear()
        self.ready.clear()
        self.ready_size = 0
        self.message_id = FIRST_MESSAGE_ID
        self.expected_id = -1
        self.rmt = 0

    def close(self) -> None:
        """Close both connections; a wait in progress fails with LinkError."""
        if self.lost is None:
            self.lost = "session closed"
        self._fail(LinkError("session closed"))
        self._abort()
        self.sync = self.async_ = None


class HislipLink(LoopLink[_Session]):
    """One HiSLIP session to an instrument (see the module doc)."""

    @classmethod
    async def open(
        cls, config: VisaInstrument, address: tuple[str, int, str], open_s: float
    ) -> HislipLink:
        """Connect both channels and initialize the session within ``open_s``; NotConnected
        says why it cannot."""
        loop = asyncio.get_running_loop()
        host, port, sub_address = address
        session = _Session(loop, config.name)
        where = f"cannot open {config.resource}"
        try:
            async with asyncio.timeout(open_s):
                session.sync, _ = await loop.create_connection(
                    lambda: _Channel(session, True), host, port
                )
                major, minor = VERSION
                parameter = (major << 24) | (minor << 16) | int.from_bytes(_VENDOR, "big")
                initialize = pack(Message.INITIALIZE, 0, parameter, sub_address.encode("ascii"))
                _, answer, _ = await session.request(
                    True, initialize, Message.INITIALIZE_RESPONSE, None
                )
                session.async_, _ = await loop.create_connection(
                    lambda: _Channel(session, False), host, port
                )
                await session.request(
                    False,
                    pack(Message.ASYNC_INITIALIZE, 0, answer & 0xFFFF),
                    Message.ASYNC_INITIALIZE_RESPONSE,
                    None,
                )
                size = struct.pack("!Q", MAX_MESSAGE)
                _, _, payload = await session.request(
                    False,
                    pack(Message.ASYNC_MAX_MSG_SIZE, 0, 0, size),
                    Message.ASYNC_MAX_MSG_SIZE_RESPONSE,
                    None,
                )
        except TimeoutError as exc:
            session.close()
            raise NotConnected(
                config.name, f"{where}: no HiSLIP session within {open_s:g} s"
            ) from exc
        except OSError as exc:
            session.close()
            raise NotConnected(config.name, f"{where}: {type(exc).__name__}: {exc}") from exc
        except LinkError as exc:
            session.close()
            raise NotConnected(config.name, f"{where}: {exc}") from exc
        except BaseException:  # cancelled: nothing left open
            session.close()
            raise
        if len(payload) != 8 or struct.unpack("!Q", payload)[0] <= HEADER_SIZE:
            session.give_up("malformed header", f"AsyncMaxMsgSizeResponse {payload!r}")
            raise NotConnected(config.name, f"{where}: the server's maximum message size")
        session.max_payload = min(struct.unpack("!Q", payload)[0], 1 << 62) - HEADER_SIZE
        return cls(config, session)

    async def clear(self) -> None:
        """Device clear over both channels (see the module doc)."""
        session = self._wire
        if session.loop is not asyncio.get_running_loop():
            raise LinkError(OTHER_LOOP)
        features, _, _ = await session.request(
            False,
            pack(Message.ASYNC_DEVICE_CLEAR),
            Message.ASYNC_DEVICE_CLEAR_ACKNOWLEDGE,
            self._timeout_s,
        )
        await session.request(
            True,
            pack(Message.DEVICE_CLEAR_COMPLETE, features),
            Message.DEVICE_CLEAR_ACKNOWLEDGE,
            self._timeout_s,
        )
        session.cleared()

    def close(self) -> None:
        """Close both connections now; a read waiting fails with LinkError. Never raises."""
        self._wire.close()
