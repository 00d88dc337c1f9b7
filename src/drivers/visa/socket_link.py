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
from drivers.visa.loop_link import LoopLink, ReplyDeadline

MAX_PENDING = 1 << 20
"""Unread bytes a link holds before it gives the connection up — one reply without a termination
character, or replies nobody asked for: an instrument streaming without end must not fill the
agent's memory (SCPI replies etalon reads are numbers, a few values, an identification)."""


class _Replies(asyncio.Protocol, ReplyDeadline):
    """The connection's receiving side: bytes pile up until the termination character; one
    waiter (the read in progress) gets a reply's bytes, or an error (its deadline: see
    :class:`~drivers.visa.loop_link.ReplyDeadline`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, term: bytes) -> None:
        ReplyDeadline.__init__(self, loop)
        self.term = term
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        """Set by :meth:`SocketLink.open` (nothing arrives before the first query)."""

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
        self.fail_waiter(LinkError(self.lost))

    def _overflow(self) -> None:
        self.lost = (
            f"more than {MAX_PENDING} bytes unread (no termination, or replies not asked for)"
        )
        self.buffer.clear()
        self.fail_waiter(LinkError(self.lost))
        if self.transport is not None:
            self.transport.abort()

    def _take(self) -> bytes:
        """The buffer up to and including the first termination character (which is there)."""
        buffer = self.buffer
        end = buffer.index(self.term) + 1
        reply = bytes(buffer[:end])
        del buffer[:end]
        return reply

    def put(self, data: bytes) -> asyncio.Transport:
        """Send one encoded command; the transport it went out on."""
        transport = self.transport
        assert transport is not None
        transport.write(data)
        return transport

    def reply(self, timeout_s: float) -> asyncio.Future[bytes]:
        """A future of the next reply's bytes, failing with TimeoutError after ``timeout_s``."""
        waiter = self.loop.create_future()
        if self.term in self.buffer:
            waiter.set_result(self._take())
            return waiter
        if self.lost is not None:
            waiter.set_exception(LinkError(self.lost))
            return waiter
        self.await_reply(waiter, timeout_s)
        return waiter

    def close(self) -> None:
        self.stop_timer()
        self.fail_waiter(LinkError("session closed"))
        transport, self.transport = self.transport, None
        if transport is None:
            return
        if self.loop.is_closed():  # its event loop ended without closing the driver first:
            return  # the transport cannot be closed any more (asyncio warns when it is freed)
        transport.abort()  # nothing left to send is worth waiting for


class SocketLink(LoopLink[_Replies]):
    """One TCP connection to a raw-SCPI instrument (see the module doc)."""

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

    async def clear(self) -> None:
        """Drop what is buffered (see the module doc)."""
        self._wire.buffer.clear()

    def close(self) -> None:
        """Close the connection now; a read waiting fails with LinkError. Never raises."""
        self._wire.close()
