"""The serial ASCII driver: one line-based instrument over pyserial.

pyserial blocks, so every port operation runs in one worker thread owned by the driver (the port
is used by one operation at a time anyway), each with pyserial's own timeout set to what is left
of the read's timeout. The same code serves a local port and a TCP serial server
(``socket://host:port``).

Polled instruments: input left over from before is discarded, the command is written, and the
first line that is neither blank nor the echo of the command is the reply. Streaming
instruments: the lines the OS buffered since the last read are stale and dropped, except the
start of the line now arriving, which is completed; the reading is stamped when its terminator
arrives. Right after opening the port, the first fragment (whose start was never seen) is
skipped. A reply that does not match the pattern is a BAD reading of every channel, with the raw
text in the reason; no reply raises DriverTimeout; half a line raises ProtocolError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import serial

from core.clock import Clock
from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.reading import Quality, Reading, Value, midpoint_ns
from drivers.serial_ascii.config import AsciiSerialPort, SerialAsciiChannel, SerialAsciiInstrument

log = logging.getLogger("etalon.drivers.serial_ascii")

T = TypeVar("T")

_PORT_ERRORS = (serial.SerialException, OSError, termios.error, ValueError)


class _NoLine(Exception):
    """The deadline passed; ``partial`` holds what arrived of a line."""

    def __init__(self, partial: bytes) -> None:
        self.partial = partial


class SerialAsciiDriver:
    """Driver for :class:`SerialAsciiInstrument` (see the module doc)."""

    def __init__(self, config: SerialAsciiInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.pattern = config.compiled()
        self._terminator = config.read_terminator.encode(config.encoding)
        self._port: serial.SerialBase | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._synced = False

    async def _in_thread(self, call: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"serial-{self.config.name}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def connect(self) -> None:
        """Open the port (or the TCP serial server). Raises NotConnected."""
        await self.close()
        transport = self.config.transport
        options: dict[str, object] = {"timeout": self.config.connect_timeout_s}
        if isinstance(transport, AsciiSerialPort):
            options |= {**transport.framing(), "exclusive": True}

        def open_port() -> serial.SerialBase:
            return serial.serial_for_url(transport.url(), **options)

        try:
            self._port = await self._in_thread(open_port)
        except _PORT_ERRORS as exc:
            raise NotConnected(self.config.name, f"{transport.url()}: {exc}") from exc
        self._synced = False
        log.info("serial port open", extra={"instrument": self.config.name, "url": transport.url()})

    async def read(self, channels: Sequence[SerialAsciiChannel]) -> list[Reading]:
        """Ask (or wait) for one line and parse every channel from it."""
        port = self._port
        name = self.config.name
        if port is None:
            raise NotConnected(name, "not connected")
        deadline = time.monotonic() + self.config.timeout_s
        exchange = self._query if self.config.command is not None else self._next_streamed
        try:
            line, start, end = await self._in_thread(lambda: exchange(port, deadline))
        except _NoLine as missing:
            if missing.partial:
                text = missing.partial.decode(self.config.encoding, "replace")
                raise ProtocolError(name, f"incomplete line {text!r}") from None
            raise DriverTimeout(name, f"no reply within {self.config.timeout_s:g} s") from None
        except _PORT_ERRORS as exc:
            raise NotConnected(name, f"port error: {exc}") from exc
        return self._parse(line, channels, midpoint_ns(start, end))

    async def close(self) -> None:
        """Close the port and stop the worker thread; never raises."""
        port, self._port = self._port, None
        executor, self._executor = self._executor, None
        cancel_read = getattr(port, "cancel_read", None)  # local ports only, not socket://
        if cancel_read is not None:
            with contextlib.suppress(*_PORT_ERRORS):
                cancel_read()
        if executor is not None:
            if port is not None:
                with contextlib.suppress(*_PORT_ERRORS):
                    await asyncio.get_running_loop().run_in_executor(executor, port.close)
            executor.shutdown(wait=True)
        elif port is not None:
            with contextlib.suppress(*_PORT_ERRORS):
                port.close()

    def describe(self) -> dict[str, str]:
        """Where the instrument is; ASCII instruments rarely identify themselves."""
        return {"endpoint": self.config.transport.url()}

    # -- in the worker thread -------------------------------------------------------------------

    def _line_until(self, port: serial.SerialBase, deadline: float, head: bytes = b"") -> bytes:
        """Bytes up to the next terminator (excluded); raises _NoLine at the deadline."""
        data = head
        while not data.endswith(self._terminator):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _NoLine(data)
            port.timeout = remaining
            chunk = port.read_until(self._terminator)
            if not chunk:
                raise _NoLine(data)
            data += chunk
        return data[: -len(self._terminator)]

    def _drain(self, port: serial.SerialBase) -> bytes:
        """Everything buffered now, without waiting."""
        data = b""
        while waiting := port.in_waiting:
            port.timeout = 0
            chunk = port.read(waiting)
            if not chunk:
                break
            data += chunk
        return data

    def _query(self, port: serial.SerialBase, deadline: float) -> tuple[str, int, int]:
        config = self.config
        assert config.command is not None
        self._drain(port)  # stale or unsolicited bytes are no answer to this command
        start = self.clock.now_ns()
        port.write((config.command + config.write_terminator).encode(config.encoding))
        port.flush()
        echo = config.command.strip()
        while True:
            line = self._decode(self._line_until(port, deadline))
            if line and line != echo:
                return line, start, self.clock.now_ns()

    def _next_streamed(self, port: serial.SerialBase, deadline: float) -> tuple[str, int, int]:
        stale = self._drain(port)
        if not self._synced:
            # The port opened somewhere inside a line: skip to the first terminator.
            if self._terminator not in stale:
                self._line_until(port, deadline, stale)
                stale = b""
            self._synced = True
        # Lines complete in the buffer are old; the tail is the start of the line arriving now.
        tail = stale.rsplit(self._terminator, 1)[-1] if stale else b""
        while True:
            line = self._decode(self._line_until(port, deadline, tail))
            tail = b""
            if line:
                # A streamed value was measured just before it was sent: stamp its arrival.
                arrived = self.clock.now_ns()
                return line, arrived, arrived

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.config.encoding, "replace").strip()

    # -- parsing --------------------------------------------------------------------------------

    def _parse(self, line: str, channels: Sequence[SerialAsciiChannel], ts: int) -> list[Reading]:
        name = self.config.name
        match = self.pattern.search(line)
        if match is None:
            reason = f"reply does not match the pattern: {line[:200]!r}"
            return [Reading.bad(name, c.name, ts, c.unit, reason) for c in channels]
        readings = []
        for channel in channels:
            text = match.group(channel.group_name)
            try:
                value = _convert(text, channel.type)
            except ValueError:
                reason = f"{channel.group_name}={text!r} is not a {channel.type} (line {line!r})"
                readings.append(Reading.bad(name, channel.name, ts, channel.unit, reason))
                continue
            readings.append(Reading(name, channel.name, ts, value, channel.unit, Quality.GOOD))
        return readings


def _convert(text: str | None, kind: str) -> Value:
    if text is None:
        raise ValueError("group did not match")
    if kind == "str":
        return text
    if kind == "int":
        return int(text.strip())
    return float(text.strip())
