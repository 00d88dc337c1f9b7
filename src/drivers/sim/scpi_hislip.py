"""A HiSLIP server (IVI-6.1, :mod:`drivers.visa.hislip_wire`) in front of a simulated SCPI
instrument, so it is reached as ``TCPIP::127.0.0.1::hislip0,PORT::INSTR`` — by pyvisa-py (which
reads the port after the comma) and by etalon's own HiSLIP link alike.

What it serves (HiSLIP 1.0, synchronized mode, no locking beyond answering, no TLS):
``Initialize`` / ``AsyncInitialize`` (a session id ties the two connections), ``AsyncMaxMsgSize``
(the client's size bounds the replies: longer ones go in ``Data`` pieces), program messages in
``Data``/``DataEnd`` (each reply a ``DataEnd`` with the query's message id), device clear
(``AsyncDeviceClear`` … ``DeviceClearAcknowledge``: input and a reply in progress dropped),
``AsyncStatusQuery`` (the status byte), ``AsyncLockInfo``, ``AsyncLock``,
``AsyncRemoteLocalControl``.

Hostile or broken clients are refused, counted in :attr:`HislipServer.protocol_faults` and never
hang it: a header without ``HS`` or a length beyond 1 MiB gets ``FatalError`` and the connection
closed; a program message beyond 1 MiB in pieces, or a message type it does not serve, an
``Error``; a connection that does not initialize within :data:`INIT_TIMEOUT_S`, or whose
message's payload does not follow its header within :attr:`HislipServer.message_timeout_s`, or an
``AsyncInitialize`` naming no session, is closed. Either channel ending ends the session.

Fault hook for client tests, :attr:`HislipServer.reply_fault` (one-shot, the next reply): see
:data:`REPLY_FAULTS`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

from drivers.sim.faults import FaultHooks
from drivers.sim.serving import StreamServed
from drivers.visa.hislip_wire import (
    HEADER,
    HEADER_SIZE,
    MAX_MESSAGE,
    VERSION,
    Message,
    WireError,
    pack,
    type_name,
    unpack_header,
)

log = logging.getLogger("etalon.drivers.sim.scpi")

INIT_TIMEOUT_S = 5.0
"""How long a new connection may take to send its Initialize or AsyncInitialize."""

MESSAGE_TIMEOUT_S = 10.0
"""How long a message's payload may take to arrive once its header has (a client that sends a
header and stalls is closed: it holds its own connection, never the server)."""

MAX_PAYLOAD = MAX_MESSAGE - HEADER_SIZE

REPLY_FAULTS = {
    "bad_header": "a header without the 'HS' prologue",
    "oversized": "a DataEnd header announcing 1 TiB of payload (none follows)",
    "wrong_type": "an AsyncStatusResponse on the synchronous channel",
    "fatal_error": "a FatalError instead of the reply",
    "error": "an Error instead of the reply",
    "close": "both connections closed instead of the reply",
    "truncated": "a DataEnd header announcing 100 bytes more than follow (a stalled server)",
    "stale": "a DataEnd with another message id first, then the reply",
    "pieces": "the reply in Data pieces of 3 bytes, then its DataEnd",
    "control_code": "the reply's DataEnd with a control code of 1 (a server sends 0)",
}
"""What :attr:`HislipServer.reply_fault` makes of the next reply."""

Answer = Callable[[bytes], Awaitable[list[bytes]]]
"""The instrument: one program message in, its replies out (none: it says nothing)."""


class _Refused(Exception):
    """The connection is to be closed (the reason was counted and sent already)."""


@dataclass
class _Session:
    """One client's two connections and what is in flight on them."""

    session_id: int
    sync: asyncio.StreamWriter
    async_: asyncio.StreamWriter | None = None
    client_max: int = MAX_MESSAGE
    """The largest message the client takes (its AsyncMaxMsgSize)."""
    pending: bytearray = field(default_factory=bytearray)
    """The program message so far (its Data pieces)."""
    generation: int = 0
    """Bumped by a device clear: a reply computed before it is not sent."""


class HislipServer(StreamServed):
    """Serves HiSLIP on one port for one instrument (``answer``); ``async with`` starts and
    stops it."""

    def __init__(
        self,
        answer: Answer,
        faults: FaultHooks,
        status: Callable[[], int],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__()
        self.answer = answer
        self.faults = faults
        self.status = status
        self.host = host
        self.port = port
        self.sessions: dict[int, _Session] = {}
        self.connections = 0
        """TCP connections accepted so far (two per HiSLIP session)."""
        self.protocol_faults: Counter[str] = Counter()
        """Hostile or broken client input, by kind."""
        self.reply_fault: str | None = None
        """One-shot: what the next reply is made into (see :data:`REPLY_FAULTS`)."""
        self.message_timeout_s = MESSAGE_TIMEOUT_S
        self.max_message = MAX_MESSAGE
        """The largest message it says it takes (``AsyncMaxMsgSizeResponse``; a test may make
        clients send in pieces). It takes up to 1 MiB whatever it says."""
        self._last_id = 0

    async def start(self) -> None:
        """Listen (a free port for 0)."""
        self.port = await self._listen(self._serve, self.host, self.port)

    async def stop(self) -> None:
        """Close every connection and the listener; idempotent."""
        # Connection tasks end by themselves once their sockets are closed (as the SCPI
        # simulator's TCP ones).
        await self._shut(cancel=lambda _: False)
        self.sessions.clear()

    def resource(self, host: str | None = None) -> str:
        """The VISA resource name (the port after the comma, as pyvisa-py reads it)."""
        return f"TCPIP::{host or self.host}::hislip0,{self.port}::INSTR"

    # -- connections -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        quiet = (ConnectionError, asyncio.IncompleteReadError, TimeoutError, _Refused)
        await self._converse(writer, self._talk(reader, writer), quiet, wait_closed=True)

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.faults.refresh()
        if self.faults.disconnected:
            return
        try:
            async with asyncio.timeout(INIT_TIMEOUT_S):
                kind, _, parameter, _ = await self._read(reader, writer)
        except TimeoutError:
            self.protocol_faults["no initialization"] += 1
            raise
        if kind == Message.INITIALIZE:
            session = self._new_session(writer)
            try:
                server_version = (VERSION[0] << 8) | VERSION[1]
                parameter = (server_version << 16) | session.session_id
                writer.write(pack(Message.INITIALIZE_RESPONSE, 0, parameter))
                await self._synchronous(session, reader, writer)
            finally:
                self._end(session)
        elif kind == Message.ASYNC_INITIALIZE:
            found = self.sessions.get(parameter & 0xFFFF)
            if found is None or found.async_ is not None:
                await self._fatal(writer, 3, "no such session", "invalid initialization")
            found.async_ = writer
            try:
                writer.write(
                    pack(Message.ASYNC_INITIALIZE_RESPONSE, 0, int.from_bytes(b"\0\0ET", "big"))
                )
                await self._asynchronous(found, reader, writer)
            finally:
                self._end(found)
        else:
            await self._fatal(
                writer, 3, f"{type_name(kind)} before Initialize", "invalid initialization"
            )

    def _new_session(self, writer: asyncio.StreamWriter) -> _Session:
        session_id = self._last_id
        for _ in range(0xFFFF):
            session_id = session_id % 0xFFFF + 1
            if session_id not in self.sessions:
                break
        self._last_id = session_id
        session = self.sessions[session_id] = _Session(session_id, writer)
        return session

    def _end(self, session: _Session) -> None:
        """Either channel ended: the session ends (both connections closed)."""
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
        for writer in (session.sync, session.async_):
            if writer is not None:
                writer.close()

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, int, int, bytes]:
        header = await reader.readexactly(HEADER_SIZE)
        try:
            kind, control, parameter, length = unpack_header(header, MAX_PAYLOAD)
        except WireError as exc:
            await self._fatal(writer, 1, str(exc), exc.kind)
        if not length:
            return kind, control, parameter, b""
        try:
            async with asyncio.timeout(self.message_timeout_s):
                payload = await reader.readexactly(length)
        except TimeoutError:
            self.protocol_faults["incomplete message"] += 1
            raise
        return kind, control, parameter, payload

    async def _fatal(
        self, writer: asyncio.StreamWriter, code: int, text: str, kind: str
    ) -> NoReturn:
        """Count ``kind``, send FatalError ``code``, close (raises _Refused)."""
        self.protocol_faults[kind] += 1
        log.info("hislip client refused", extra={"reason": text})
        writer.write(pack(Message.FATAL_ERROR, code, 0, text.encode("latin-1", "replace")[:200]))
        await writer.drain()
        raise _Refused(text)

    def _error(self, writer: asyncio.StreamWriter, code: int, text: str, kind: str) -> None:
        self.protocol_faults[kind] += 1
        writer.write(pack(Message.ERROR, code, 0, text.encode("latin-1", "replace")[:200]))

    # -- the synchronous channel -------------------------------------------------------------

    async def _synchronous(
        self, session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            kind, _, parameter, payload = await self._read(reader, writer)
            self.faults.refresh()
            if self.faults.disconnected:
                return
            if kind == Message.DATA or kind == Message.DATA_END:
                session.pending += payload
                if len(session.pending) > MAX_PAYLOAD:
                    session.pending.clear()
                    self._error(writer, 4, "program message too large", "oversized")
                elif kind == Message.DATA_END:
                    message = bytes(session.pending)
                    session.pending.clear()
                    generation = session.generation
                    replies = await self.answer(message)
                    if generation == session.generation:  # no device clear meanwhile
                        for reply in replies:
                            if not self._send_reply(session, reply, parameter):
                                return
            elif kind == Message.DEVICE_CLEAR_COMPLETE:
                session.pending.clear()
                writer.write(pack(Message.DEVICE_CLEAR_ACKNOWLEDGE, 0))  # synchronized mode
            elif kind == Message.TRIGGER:
                pass
            elif kind == Message.FATAL_ERROR:
                self.protocol_faults["client FatalError"] += 1
                return
            elif kind == Message.ERROR:
                self.protocol_faults["client Error"] += 1
            else:
                self._error(writer, 1, f"unexpected {type_name(kind)}", "unexpected message")
            await writer.drain()

    def _send_reply(self, session: _Session, reply: bytes, message_id: int) -> bool:
        """Send one reply (in pieces the client takes); False when the connection is to end."""
        writer = session.sync
        fault, self.reply_fault = self.reply_fault, None
        if fault == "bad_header":
            writer.write(b"XX" + bytes(HEADER_SIZE - 2) + reply)
        elif fault == "oversized":
            writer.write(HEADER.pack(b"HS", Message.DATA_END, 0, message_id, 1 << 40))
        elif fault == "truncated":
            writer.write(HEADER.pack(b"HS", Message.DATA_END, 0, message_id, len(reply) + 100))
            writer.write(reply)
        elif fault == "wrong_type":
            writer.write(pack(Message.ASYNC_STATUS_RESPONSE, 0, 0))
        elif fault == "fatal_error":
            writer.write(pack(Message.FATAL_ERROR, 0, 0, b"simulated fatal error"))
        elif fault == "error":
            writer.write(pack(Message.ERROR, 0, 0, b"simulated error"))
        elif fault == "close":
            return False
        elif fault == "control_code":
            writer.write(pack(Message.DATA_END, 1, message_id, reply))
        else:
            if fault == "stale":
                writer.write(pack(Message.DATA_END, 0, (message_id - 2) & 0xFFFF_FFFF, b"stale\n"))
            step = 3 if fault == "pieces" else max(1, session.client_max - HEADER_SIZE)
            pieces = [reply[start : start + step] for start in range(0, len(reply), step)]
            for piece in pieces[:-1]:
                writer.write(pack(Message.DATA, 0, message_id, piece))
            writer.write(pack(Message.DATA_END, 0, message_id, pieces[-1] if pieces else b""))
        return True

    # -- the asynchronous channel ------------------------------------------------------------

    async def _asynchronous(
        self, session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            kind, _, _, payload = await self._read(reader, writer)
            if kind == Message.ASYNC_MAX_MSG_SIZE:
                if len(payload) != 8:
                    self._error(writer, 0, "AsyncMaxMsgSize needs 8 bytes", "malformed message")
                else:
                    session.client_max = max(HEADER_SIZE + 1, struct.unpack("!Q", payload)[0])
                    answer = struct.pack("!Q", self.max_message)
                    writer.write(pack(Message.ASYNC_MAX_MSG_SIZE_RESPONSE, 0, 0, answer))
            elif kind == Message.ASYNC_DEVICE_CLEAR:
                session.generation += 1
                session.pending.clear()
                writer.write(pack(Message.ASYNC_DEVICE_CLEAR_ACKNOWLEDGE, 0))
            elif kind == Message.ASYNC_STATUS_QUERY:
                writer.write(pack(Message.ASYNC_STATUS_RESPONSE, self.status() & 0xFF))
            elif kind == Message.ASYNC_LOCK_INFO:
                writer.write(pack(Message.ASYNC_LOCK_INFO_RESPONSE, 0, 0))
            elif kind == Message.ASYNC_LOCK:
                writer.write(pack(Message.ASYNC_LOCK_RESPONSE, 1))
            elif kind == Message.ASYNC_REMOTE_LOCAL_CONTROL:
                writer.write(pack(Message.ASYNC_REMOTE_LOCAL_RESPONSE))
            elif kind == Message.FATAL_ERROR:
                self.protocol_faults["client FatalError"] += 1
                return
            else:
                self._error(writer, 1, f"unexpected {type_name(kind)}", "unexpected message")
            await writer.drain()
