"""What etalon's own asyncio links (:mod:`drivers.visa.socket_link`,
:mod:`drivers.visa.hislip_link`, :mod:`drivers.visa.vxi11_link`, :mod:`drivers.visa.serial_link`)
share: a reply's deadline kept by one timer on the loop, and the face pyvisa shows a config
(:class:`LoopLink`) — commands terminated and encoded (each once), the query delay, the reply
decoded and its termination stripped, a write that waits for a full send buffer within the
timeout."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from drivers.visa.config import VisaInstrument
from drivers.visa.link import LinkError

_ENCODED = 256
"""Encoded commands a link remembers."""

OTHER_LOOP = "the connection belongs to another event loop (ended, or a thread's)"


class ReplyDeadline:
    """The reply waited for (one at a time), failed with TimeoutError at its deadline.

    The deadline is one timer, re-armed only when it fires early: most replies come long before
    it, and a timer per query (a heap entry made and cancelled) costs more than the query's own
    bookkeeping."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiter: asyncio.Future[bytes] | None = None
        self.expires = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.lost: str | None = None
        """Why the connection ended (None while it is up)."""

    # -- what the transport provides (to :class:`LoopLink`) ------------------------------------

    def put(self, data: bytes) -> asyncio.Transport:
        """Send one encoded command; the transport it went out on."""
        raise NotImplementedError

    def reply(self, timeout_s: float) -> asyncio.Future[bytes]:
        """The next reply's bytes, failing with TimeoutError after ``timeout_s``."""
        raise NotImplementedError

    # -- the deadline --------------------------------------------------------------------------

    def await_reply(self, waiter: asyncio.Future[bytes], timeout_s: float) -> None:
        """``waiter`` is the reply waited for; it fails after ``timeout_s``."""
        self.waiter = waiter
        self.expires = expires = self.loop.time() + timeout_s
        timer = self.timer
        if timer is None or timer.when() > expires:  # none armed, or armed too late
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(expires, self._expire)

    def _expire(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.loop.time() < self.expires:  # armed for an earlier reply: wait for this one
            self.timer = self.loop.call_at(self.expires, self._expire)
            return
        self.fail_waiter(TimeoutError())

    def fail_waiter(self, error: Exception) -> None:
        """The reply waited for (if any) fails with ``error``."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def stop_timer(self) -> None:
        """No deadline any more (the link is closing)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


W = TypeVar("W", bound=ReplyDeadline)


class LoopLink(Generic[W]):
    """A link on the event loop: a config's I/O settings applied as pyvisa applies them, over
    what a transport's receiving side provides (``wire``: :meth:`ReplyDeadline.put`,
    :meth:`ReplyDeadline.reply`, ``lost``, ``loop``; a subclass reaches the rest of its own kind
    of wire as ``self._wire``).

    A query is the path every read takes, against an instrument that may answer within tens of
    µs: it is written out in one frame, the wire's attributes read directly (each method call
    saved counts)."""

    def __init__(self, config: VisaInstrument, wire: W) -> None:
        self._wire = wire
        self._encoding = config.encoding
        self._write_term = config.write_termination
        self._read_term = config.read_termination or ""
        self._delay = config.query_delay_s
        self._timeout_s = config.io_timeout_s
        self._encoded: dict[str, bytes] = {}
        """Commands as sent, terminated and encoded (a profile's queries are few: each is
        encoded once)."""

    def _command_bytes(self, command: str) -> bytes:
        """``command`` with the write termination, encoded."""
        data = self._encoded.get(command)
        if data is None:
            data = (command + self._write_term).encode(self._encoding)
            if len(self._encoded) >= _ENCODED:  # set-point values make new commands
                self._encoded.clear()
            self._encoded[command] = data
        return data

    def _usable(self) -> W:
        """The wire, when the link may be used here and now: LinkError once it was lost, or
        from another event loop than its own."""
        wire = self._wire
        if wire.lost is not None:
            raise LinkError(wire.lost)
        if wire.loop is not asyncio.get_running_loop():
            raise LinkError(OTHER_LOOP)
        return wire

    def _send(self, command: str) -> asyncio.Transport:
        return self._usable().put(self._command_bytes(command))

    async def write(self, command: str) -> None:
        """Send a command (the kernel takes it at once; a full buffer is waited for, within the
        timeout)."""
        transport = self._send(command)
        if not transport.get_write_buffer_size():
            return
        # The instrument does not take our bytes.
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        while transport.get_write_buffer_size():
            lost = self._wire.lost
            if lost is not None:
                raise LinkError(lost)
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.001)

    async def query(self, command: str) -> str:
        """Send a query, wait the query delay, read one reply: decoded, the read termination
        stripped when it ends with it (else as it came, as pyvisa returns it after its
        warning). (:meth:`_usable` and :meth:`_send` written out.)"""
        wire = self._wire
        if wire.lost is not None:
            raise LinkError(wire.lost)
        if wire.loop is not asyncio.get_running_loop():
            raise LinkError(OTHER_LOOP)
        data = self._encoded.get(command)
        wire.put(self._command_bytes(command) if data is None else data)
        if self._delay:
            await asyncio.sleep(self._delay)
        message = (await wire.reply(self._timeout_s)).decode(self._encoding)
        term = self._read_term
        if term and message.endswith(term):
            return message[: -len(term)]
        return message

    def set_timeout(self, seconds: float) -> None:
        """The timeout of the next reply (and of what else the link waits for)."""
        self._timeout_s = seconds
