"""A :class:`~drivers.visa.link.Link` for serial resources (``ASRL/dev/ttyUSB0::INSTR``,
``ASRL/dev/pts/3::INSTR``, a udev link such as ``ASRL/dev/serial/by-id/…::INSTR``) with asyncio,
on the event loop — no worker thread, no pyvisa. Why: as for raw sockets
(:mod:`drivers.visa.socket_link`), a query is a ``write`` and one wake-up when its reply's
termination character arrives, where pyvisa costs a hop to the session's worker thread and back
per read (and a lab of 30 serial instruments 30 threads); the reply's wait is a timer on the
loop, which nothing can ignore. POSIX only (tested on Linux): the port's file descriptor is
watched by the loop's ``add_reader`` (Windows' proactor loop has none: there serial resources
stay on pyvisa, see :meth:`~drivers.visa.config.VisaInstrument.serial_port`; a selector that
refuses the device fails the open with ``NotConnected`` saying so).

What it keeps of pyvisa-py 0.8's serial session (``pyvisa_py/serial.py`` under pyvisa 1.16's
``SerialInstrument``), so a config reads the same either way:

- the port is the resource's board as pyvisa-py takes it (``ASRL<board>[::INSTR]``, the board a
  device path), opened by pyserial with the config's ``serial`` settings, else pyvisa's defaults
  (9600 Bd, 8 data bits, no parity, 1 stop bit, no flow control); DTR and RTS asserted and the
  input buffer flushed as pyserial's open does;
- a write is the command, then ``write_termination``, encoded with ``encoding``, sent as it is
  (pyvisa's ``end_output`` default, ``none``: no byte masked, no termination character or break
  added by the library);
- a query is that write, then ``query_delay_s`` of sleep when it is not zero, then a read;
- a read ends at the termination character (pyvisa's ``end_input`` default, ``termchar``): the
  last character of ``read_termination``, or ``\\n`` when there is none (pyvisa sets the
  termination character back to LF then, so a serial reply still ends at a newline, and it is
  returned with it); the reply is decoded, the whole termination stripped when the reply ends
  with it (else returned as it came, as pyvisa does after its warning); bytes after the
  termination character wait for the next read, as pyvisa-py leaves them in the port;
- a read that sees no termination character within the timeout fails with ``TimeoutError``;
- ``discard_null``, breaks and the other ``end_output`` modes are not offered (pyvisa-py has no
  ``discard_null`` either, and etalon's config no way to ask for the others);
- device clear: pyvisa-py has none for serial (``VI_ERROR_NSUP_OPER``, which etalon's pyvisa
  link ignores) and pyserial flushes the input when it opens the port; here the input is flushed
  (the kernel's buffer and the link's).

Differences, each a clear error where pyvisa-py would block or grow: a reply (or replies nobody
asked for) of more than :data:`~drivers.visa.socket_link.MAX_PENDING` bytes without the
termination gives the port up (pyvisa-py reads on without bound); a port that vanishes (a USB
adapter unplugged, the other end of a pseudo-terminal closed) fails the read at once with a
``LinkError`` naming the port (pyvisa-py waits out its timeout). Each is counted in
:data:`FAULTS` and logged once. A query cancelled mid-read (the agent gave up on the read) owes a
reply that may still come; the session then re-opens the port, and its device clear drops that
reply when it comes within the cancelled query's timeout — what pyvisa's worker thread does by
reading on until its own timeout — so it is never taken for the next query's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import time
from collections import Counter
from typing import Any

import serial

from core.errors import NotConnected
from drivers.faults import fault_counter
from drivers.visa.config import SerialSettings, VisaInstrument
from drivers.visa.loop_link import LoopLink
from drivers.visa.socket_link import _Replies

log = logging.getLogger("etalon.drivers.visa")

FAULTS: Counter[str] = fault_counter("serial")
"""Serial faults seen by every link of this process, by kind (``overflow``: more than
:data:`~drivers.visa.socket_link.MAX_PENDING` bytes unread; ``port lost``: the port vanished or
failed): each also logged once, as a warning naming the instrument; the agent's
``protocol_faults`` self-metric counts them (:mod:`drivers.faults`)."""

_CHUNK = 65536
"""The most bytes one read of the port takes."""

_PARITY = {
    "none": serial.PARITY_NONE,
    "odd": serial.PARITY_ODD,
    "even": serial.PARITY_EVEN,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}
_STOP_BITS = {
    1: serial.STOPBITS_ONE,
    1.5: serial.STOPBITS_ONE_POINT_FIVE,
    2: serial.STOPBITS_TWO,
}

_OWED: dict[str, float] = {}
"""Port → the monotonic time until which the reply to a query cancelled on it may still come
(see the module doc)."""


def port_options(settings: SerialSettings | None) -> dict[str, Any]:
    """pyserial's ``Serial`` keywords for a config's line settings (pyvisa's defaults when
    none)."""
    line = settings or SerialSettings()
    return {
        "baudrate": line.baud_rate,
        "bytesize": line.data_bits,
        "parity": _PARITY[line.parity],
        "stopbits": _STOP_BITS[line.stop_bits],
        "xonxoff": line.flow_control == "xon_xoff",
        "rtscts": line.flow_control == "rts_cts",
        "dsrdtr": line.flow_control == "dtr_dsr",
    }


class _PortTransport(asyncio.Transport):
    """An open serial port as an asyncio transport: its file descriptor watched by the loop,
    what arrives handed to the replies (:class:`_SerialReplies`), what is written sent at once,
    the rest when the port takes it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, port: serial.Serial, replies: _SerialReplies
    ) -> None:
        super().__init__()
        self._loop = loop
        self._port: serial.Serial | None = port
        self._fd = port.fileno()
        self._replies = replies
        self._pending = bytearray()
        """Bytes the port has not taken yet."""
        os.set_blocking(self._fd, False)
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"{exc.strerror or exc}")
            return
        if not data:  # readable, yet nothing: the other end hung up (as pyserial reads it)
            self._lost("hung up (the device is gone, or the other end closed)")
            return
        self._replies.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._port is None:
            return
        if self._pending:  # the port still has earlier bytes to take
            self._pending += data
            return
        try:
            sent = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(f"{exc.strerror or exc}")
            return
        if sent < len(data):
            self._pending += memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = os.write(self._fd, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"{exc.strerror or exc}")
            return
        del self._pending[:sent]
        if not self._pending:
            self._loop.remove_writer(self._fd)

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def is_closing(self) -> bool:
        return self._port is None

    def flush_input(self) -> None:
        """Drop what the kernel holds of the port's input (pyserial's ``reset_input_buffer``)."""
        if self._port is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcflush(self._fd, termios.TCIFLUSH)

    def _lost(self, reason: str) -> None:
        """The port failed: closed, and the replies told why."""
        self.release()
        self._replies.connection_lost(OSError(reason))

    def abort(self) -> None:
        """Close the port now; what is unsent is dropped (the replies are told, as asyncio
        tells a protocol: soon, not from inside this call)."""
        if self._port is None:
            return
        self.release()
        if not self._loop.is_closed():
            self._loop.call_soon(self._replies.connection_lost, None)

    close = abort

    def release(self) -> None:
        """Stop watching the port and close it (also when its event loop has ended). Never
        raises."""
        port, self._port = self._port, None
        if port is None:
            return
        if not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._pending.clear()
        with contextlib.suppress(OSError, serial.SerialException):
            port.close()


class _SerialReplies(_Replies):
    """The port's receiving side: :class:`~drivers.visa.socket_link.SocketLink`'s framing (a
    reply ends at the termination character; at most
    :data:`~drivers.visa.socket_link.MAX_PENDING` bytes unread), its faults worded for a port
    and counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, term: bytes, name: str, where: str) -> None:
        super().__init__(loop, term)
        self.name = name
        self.where = where

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None and exc is not None:  # the port failed (not our own close)
            reason = f"serial port {self.where}: {exc}"
            self._fault("port lost", reason)
            exc = OSError(reason)
        super().connection_lost(exc)

    def _overflow(self) -> None:
        self._fault("overflow", f"serial port {self.where}: more than the bytes a reply may hold")
        super()._overflow()

    def _fault(self, kind: str, reason: str) -> None:
        FAULTS[kind] += 1
        log.warning("serial port given up", extra={"instrument": self.name, "reason": reason})


class SerialLink(LoopLink[_SerialReplies]):
    """One open serial port to a SCPI instrument (see the module doc)."""

    def __init__(self, config: VisaInstrument, replies: _SerialReplies, port: str) -> None:
        super().__init__(config, replies)
        self.port = port

    @classmethod
    async def open(cls, config: VisaInstrument, port: str) -> SerialLink:
        """Open ``port`` (it does not block: a serial port opens at once, or not at all);
        NotConnected says why it cannot."""
        loop = asyncio.get_running_loop()
        term = (config.read_termination or "\n")[-1].encode(config.encoding)
        try:
            # Opened non-blocking by pyserial; its own timeouts unused (the loop keeps ours).
            device = serial.Serial(port, timeout=0, write_timeout=0, **port_options(config.serial))
        except (serial.SerialException, OSError, ValueError) as exc:
            raise NotConnected(
                config.name, f"cannot open {config.resource}: {type(exc).__name__}: {exc}"
            ) from exc
        replies = _SerialReplies(loop, term, config.name, port)
        try:
            replies.transport = _PortTransport(loop, device, replies)
        except (OSError, ValueError) as exc:  # a selector that cannot watch this device
            device.close()
            raise NotConnected(
                config.name,
                f"cannot watch {config.resource} on the event loop: {type(exc).__name__}: {exc} "
                "(socket_io: pyvisa reads it through pyvisa)",
            ) from exc
        return cls(config, replies, port)

    async def clear(self) -> None:
        """Flush the input (see the module doc); a reply a cancelled query still owes is waited
        for (until that query's deadline) and dropped."""
        wire = self._wire
        transport = wire.transport
        wire.buffer.clear()
        if isinstance(transport, _PortTransport):
            transport.flush_input()
        owed_s = _OWED.pop(self.port, 0.0) - time.monotonic()
        if owed_s > 0:
            with contextlib.suppress(TimeoutError):
                await wire.reply(owed_s)

    def close(self) -> None:
        """Close the port now; a read waiting fails with LinkError. Never raises."""
        wire = self._wire
        waiter = wire.waiter
        if (
            waiter is not None
            and waiter.cancelled()
            and wire.term not in wire.buffer
            and wire.loop.time() < wire.expires
        ):  # the query was given up while its reply may still come: the next session drops it
            _OWED[self.port] = time.monotonic() + wire.expires - wire.loop.time()
        transport = wire.transport
        wire.close()
        if isinstance(transport, _PortTransport):
            transport.release()  # the port closed even when the event loop has ended
