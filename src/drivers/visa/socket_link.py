"""A :class:`~drivers.visa.link.Link` for ``TCPIP::host::port::SOCKET``: raw SCPI over TCP with
asyncio, on the event loop — no worker thread, no pyvisa.

Why: through pyvisa every read hops to a worker thread and back (three scheduler wake-ups per
read against bare pyvisa's one); here a query is a ``send`` and one wake-up when the reply's
termination arrives. A hung instrument holds up nobody either: the reply's wait is bounded by a
timer on the loop, which no library can ignore.

What it keeps of pyvisa's SOCKET semantics (pyvisa 1.16 ``MessageBasedResource`` over
pyvisa-py 0.8 ``TCPIPSocketSession``), so a config reads the same either way:

- a write is the command, then ``write_termination``, encoded with ``encoding``;
- a query is that write, then ``query_delay_s`` of sleep when it is not zero, then a read;
- a read ends at the *last* character of ``read_termination`` (the termination character);
  the reply is decoded, and the whole termination stripped when the reply ends with it (else
  the reply is returned as it came, as pyvisa does after its warning); bytes after the
  termination character wait for the next read;
- a read that sees no termination character within the timeout fails with ``TimeoutError``;
- device clear drops what is buffered. (pyvisa-py also reads on until 0.1 s of silence; on a
  fresh TCP connection — the only place etalon clears — nothing of an older one can arrive.)

A SOCKET resource without a read termination has no way to tell where a reply ends (pyvisa-py
times out on every read); such a config stays on pyvisa (:meth:`VisaInstrument.socket_address`).
"""

from __future__ import annotations

import asyncio

from core.errors import NotConnected
from drivers.visa.config import VisaInstrument
from drivers.visa.link import LinkError

_ENCODED = 256
"""Encoded commands a link remembers."""

MAX_PENDING = 1 << 20
"""Unread bytes a link holds before it gives the connection up — one reply without a termination
character, or replies nobody asked for: an instrument streaming without end must not fill the
agent's memory (SCPI replies etalon reads are numbers, a few values, an identification)."""


class _Replies(asyncio.Protocol):
    """The connection's receiving side: bytes pile up until the termination character; one
    waiter (the read in progress) gets a reply's bytes, or an error.

    The reply's deadline is one timer, re-armed only when it fires early: most replies come
    long before it, and a timer per query (a heap entry made and cancelled) costs more than the
    query's own bookkeeping."""

    def __init__(self, loop: asyncio.AbstractEventLoop, term: bytes) -> None:
        self.loop = loop
        self.term = term
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        """Set by :meth:`SocketLink.open` (nothing arrives before the first query)."""
        self.lost: str | None = None
        """Why the connection ended (None while it is up)."""
        self.waiter: asyncio.Future[bytes] | None = None
        self.expires = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.buffer += data
            # Terminated or not: replies nobody asked for (an instrument in talk-only mode)
            # would pile up as surely as one endless reply.
            if len(self.buffer) > MAX_PENDING:
                self._overflow()
            return
        if not self.buffer and data.find(self.term) == len(data) - 1:  # one whole reply: usual
            self.waiter = None
            waiter.set_result(data)
            return
        self.buffer += data
        # In the buffer's tail, not in ``data``: a termination of several bytes (a non-ASCII
        # encoding) may arrive split across two segments.
        if self.term in self.buffer[-(len(data) + len(self.term) - 1) :]:
            self.waiter = None
            waiter.set_result(self._take())
        elif len(self.buffer) > MAX_PENDING:
            self._overflow()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:  # our own abort after an overflow keeps its reason
            self.lost = "connection closed by the instrument" if exc is None else f"{exc}"
        self._fail(LinkError(self.lost))

    def _overflow(self) -> None:
        self.lost = (
            f"more than {MAX_PENDING} bytes unread (no termination, or replies not asked for)"
        )
        self.buffer.clear()
        self._fail(LinkError(self.lost))
        if self.transport is not None:
            self.transport.abort()

    def _take(self) -> bytes:
        """The buffer up to and including the first termination character (which is there)."""
        buffer = self.buffer
        end = buffer.index(self.term) + 1
        reply = bytes(buffer[:end])
        del buffer[:end]
        return reply

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def reply(self, timeout_s: float) -> asyncio.Future[bytes]:
        """A future of the next reply's bytes, failing with TimeoutError after ``timeout_s``."""
        waiter = self.loop.create_future()
        if self.term in self.buffer:
            waiter.set_result(self._take())
            return waiter
        if self.lost is not None:
            waiter.set_exception(LinkError(self.lost))
            return waiter
        self.waiter = waiter
        self.expires = expires = self.loop.time() + timeout_s
        timer = self.timer
        if timer is None or timer.when() > expires:  # none armed, or armed too late
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(expires, self._expire)
        return waiter

    def _expire(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.loop.time() < self.expires:  # armed for an earlier reply: wait for this one
            self.timer = self.loop.call_at(self.expires, self._expire)
            return
        self._fail(TimeoutError())

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._fail(LinkError("session closed"))
        transport, self.transport = self.transport, None
        if transport is None:
            return
        if self.loop.is_closed():  # its event loop ended without closing the driver first:
            return  # the transport cannot be closed any more (asyncio warns when it is freed)
        transport.abort()  # nothing left to send is worth waiting for


class SocketLink:
    """One TCP connection to a raw-SCPI instrument (see the module doc)."""

    def __init__(self, config: VisaInstrument, replies: _Replies) -> None:
        self._replies = replies
        self._encoding = config.encoding
        self._write_term = config.write_termination
        self._read_term = config.read_termination or ""
        self._delay = config.query_delay_s
        self._timeout_s = config.io_timeout_s
        self._encoded: dict[str, bytes] = {}
        """Commands as sent, terminated and encoded (a profile's queries are few: each is
        encoded once)."""

    @classmethod
    async def open(
        cls, config: VisaInstrument, address: tuple[str, int], open_s: float
    ) -> SocketLink:
        """Connect within ``open_s``; NotConnected says why it cannot."""
        loop = asyncio.get_running_loop()
        term = (config.read_termination or "\n")[-1].encode(config.encoding)
        host, port = address
        try:
            async with asyncio.timeout(open_s):
                transport, replies = await loop.create_connection(
                    lambda: _Replies(loop, term), host, port
                )
        except TimeoutError as exc:
            raise NotConnected(
                config.name, f"cannot open {config.resource}: no connection within {open_s:g} s"
            ) from exc
        except OSError as exc:
            raise NotConnected(
                config.name, f"cannot open {config.resource}: {type(exc).__name__}: {exc}"
            ) from exc
        replies.transport = transport  # (asyncio set TCP_NODELAY: a query goes out at once)
        return cls(config, replies)

    def _send(self, command: str) -> None:
        replies = self._replies
        if replies.lost is not None:
            raise LinkError(replies.lost)
        if replies.loop is not asyncio.get_running_loop():
            raise LinkError("the connection belongs to another event loop (ended, or a thread's)")
        data = self._encoded.get(command)
        if data is None:
            data = (command + self._write_term).encode(self._encoding)
            if len(self._encoded) >= _ENCODED:  # set-point values make new commands
                self._encoded.clear()
            self._encoded[command] = data
        transport = replies.transport
        assert transport is not None
        transport.write(data)

    async def write(self, command: str) -> None:
        """Send a command (the kernel takes it at once; a full buffer is waited for)."""
        self._send(command)
        transport = self._replies.transport
        assert transport is not None
        if transport.get_write_buffer_size():  # the instrument does not take our bytes
            await self._drain()

    async def _drain(self) -> None:
        transport = self._replies.transport
        assert transport is not None
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        while transport.get_write_buffer_size():
            if self._replies.lost is not None:
                raise LinkError(self._replies.lost)
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.001)

    async def query(self, command: str) -> str:
        """Send a query, wait the query delay, read one reply."""
        self._send(command)
        if self._delay:
            await asyncio.sleep(self._delay)
        message = (await self._replies.reply(self._timeout_s)).decode(self._encoding)
        term = self._read_term
        if term and message.endswith(term):
            return message[: -len(term)]
        return message

    def set_timeout(self, seconds: float) -> None:
        """The timeout of the next reply."""
        self._timeout_s = seconds

    async def clear(self) -> None:
        """Drop what is buffered (see the module doc)."""
        self._replies.buffer.clear()

    def close(self) -> None:
        """Close the connection now; a read waiting fails with LinkError. Never raises."""
        self._replies.close()
