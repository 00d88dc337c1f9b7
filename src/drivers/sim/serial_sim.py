"""Simulated line-based ASCII instruments on a pseudo-terminal or a raw TCP serial server.

Two instruments, each driven by a physical model:

- ``thp``: a humidity/temperature/pressure transmitter of a calibration room. It answers the
  command ``SEND`` with one line such as ``T= 23.12 'C RH= 45.3 %RH P= 1010.2 hPa``, and
  unknown commands with ``ERROR: unknown command``.
- ``stream``: a thermometer readout in an oil bath that sends one line per period on its own,
  such as ``T1: 25.00124 C``.

Fault hooks (``SerialFaultHooks``): ``delay_s`` (slow reply), ``hang`` (no reply),
``garbage_rate`` (a line of garbage instead of the reading), ``disconnected`` (drop the line),
``echo`` (echo the command first, as a terminal-minded instrument does) and ``partial`` (send half
a line and stop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import KW_ONLY, InitVar, dataclass, field
from pathlib import Path
from typing import Literal

from core.clock import Clock, SystemClock
from drivers.serial_ascii.config import AsciiTcpServer, SerialAsciiInstrument
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.faults import GARBAGE_REPLIES, FaultHooks
from drivers.sim.models import ResistorParams, RoomParams, Sampler, build_model
from drivers.sim.serving import PseudoTerminal, StreamServed, medium_lines, serve_until

log = logging.getLogger("etalon.drivers.sim.serial")

Kind = Literal["thp", "stream"]


@dataclass
class SerialFaultHooks(FaultHooks):
    """Live fault state of a serial simulator."""

    echo: bool = False
    partial: bool = False


class AsciiInstrument:
    """What the instrument says: replies to commands, or the next streamed line."""

    def __init__(self, kind: Kind, clock: Clock, faults: SerialFaultHooks, seed: int = 11) -> None:
        self.kind = kind
        self.clock = clock
        self.faults = faults
        self.model: Sampler = build_model(RoomParams() if kind == "thp" else ResistorParams())
        self._rng = random.Random(seed)
        self.lines_sent = 0

    def reading_line(self) -> str:
        """The line a reading is sent as, now."""
        t_ns = self.clock.now_ns()
        if self.faults.garbage_now(self._rng):
            return self._rng.choice(GARBAGE_REPLIES[1:]) + "\x7f?"
        if self.kind == "thp":
            temperature = self.model.sample("temperature", t_ns)
            humidity = self.model.sample("humidity", t_ns)
            pressure = self.model.sample("pressure", t_ns)
            return f"T= {temperature:6.2f} 'C RH= {humidity:5.1f} %RH P= {pressure:7.1f} hPa"
        return f"T1: {self.model.sample('temperature', t_ns):.5f} C"

    def answer(self, command: str) -> list[str]:
        """Lines sent back for one received command line."""
        lines = [command] if self.faults.echo else []
        if command.strip().upper() == "SEND" and self.kind == "thp":
            lines.append(self.reading_line())
        elif command.strip():
            lines.append("ERROR: unknown command")
        return lines


@dataclass(eq=False)
class SerialSimServer(StreamServed):
    """Serves one ASCII instrument on a pty (``pty_path``) or TCP (``host``, ``port``)."""

    kind: Kind = "thp"
    _: KW_ONLY
    medium: Literal["pty", "tcp"] = "pty"
    host: str = "127.0.0.1"
    port: int = 0
    link: Path | None = None
    period_s: float = 1.0
    terminator: str = "\r\n"
    clock: InitVar[Clock | None] = None
    faults: SerialFaultHooks = field(default_factory=SerialFaultHooks)
    instrument: AsciiInstrument = field(init=False)
    pty_path: str | None = field(default=None, init=False)
    _pty: PseudoTerminal | None = field(default=None, init=False, repr=False)

    def __post_init__(self, clock: Clock | None) -> None:
        super().__init__()
        self.instrument = AsciiInstrument(self.kind, clock or SystemClock(), self.faults)

    async def start(self) -> None:
        """Open the pty or listen on TCP."""
        if self.medium == "tcp":
            self.port = await self._listen(self._serve_tcp, self.host, self.port)
            return
        self._pty = PseudoTerminal.open(self.link)
        self.pty_path = self._pty.path
        self._spawn(self._serve_pty(self._pty))

    async def stop(self) -> None:
        """Stop serving; close every connection and the pty."""
        await self._shut(cancel=lambda task: True)
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    # -- the conversation, over any byte pipe --

    async def _talk(
        self, receive: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]]
    ) -> None:
        if self.kind == "stream":
            streamer = asyncio.ensure_future(self._stream(send))
            try:
                while await receive():
                    pass  # a streaming readout ignores what it is sent
            finally:
                streamer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await streamer
            return
        buffer = b""
        end = self.terminator.encode()
        while data := await receive():
            buffer += data
            while True:
                # Accept CR, LF or CRLF from the master, as real instruments do.
                cut = min(
                    (i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0), default=-1
                )
                if cut < 0:
                    break
                command = buffer[:cut].decode("ascii", "replace")
                buffer = buffer[cut + 1 :].lstrip(b"\r\n")
                await self._reply(command, send, end)

    async def _reply(
        self, command: str, send: Callable[[bytes], Awaitable[None]], end: bytes
    ) -> None:
        self.faults.refresh()
        if self.faults.hang or self.faults.disconnected:
            return
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        for line in self.instrument.answer(command):
            if self.faults.partial:
                await send(line.encode()[: max(1, len(line) // 2)])
                return
            await send(line.encode() + end)
            self.instrument.lines_sent += 1

    async def _stream(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        end = self.terminator.encode()
        while True:
            next_at += self.period_s
            self.faults.refresh()
            if not (self.faults.hang or self.faults.disconnected):
                line = self.instrument.reading_line().encode()
                if self.faults.partial:
                    await send(line[: len(line) // 2])
                else:
                    # Sent in two pieces, as a slow UART does: readers must join partial reads.
                    half = len(line) // 2
                    await send(line[:half])
                    await asyncio.sleep(0.002)
                    await send(line[half:] + end)
                    self.instrument.lines_sent += 1
            if loop.time() - next_at >= self.period_s:
                # Fell a period behind (a stalled loop on a busy machine): the next line a period
                # from now. A readout's own clock never sends a burst of lines to catch up; a line
                # a little late (the 2 ms of a split line at short periods) keeps the schedule.
                next_at = loop.time() + self.period_s
            await asyncio.sleep(next_at - loop.time())

    # -- media --

    async def _serve_pty(self, pty: PseudoTerminal) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            # Nothing on EIO (b""): the other side is closed now and may be opened again.
            if data := pty.read():
                queue.put_nowait(data)

        async def send(data: bytes) -> None:
            if not self.faults.disconnected:
                pty.write(data)

        loop.add_reader(pty.master, readable)
        try:
            await self._talk(queue.get, send)
        finally:
            loop.remove_reader(pty.master)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def receive() -> bytes:
            self.faults.refresh()
            if self.faults.disconnected:
                return b""
            return await reader.read(1024)

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        await self._converse(writer, self._talk(receive, send), (ConnectionError,))


# -- etalon sim serial-ascii -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line arguments of the standalone serial simulator."""
    parser.add_argument("--kind", choices=("thp", "stream"), default="thp")
    parser.add_argument("--tcp-port", type=int, help="serve on TCP (a serial server) instead")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--link", type=Path, help="pty: symlink to the device path")
    parser.add_argument("--period", type=float, default=1.0, help="stream: seconds per line")
    parser.add_argument("--faults", type=Path, help="JSON fault control file, re-read live")


async def run(
    args: argparse.Namespace, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set."""
    server = SerialSimServer(
        args.kind,
        medium="tcp" if args.tcp_port is not None else "pty",
        host=args.host,
        port=args.tcp_port or 0,
        link=args.link,
        period_s=args.period,
        faults=SerialFaultHooks(control_file=args.faults),
    )
    kind = f"serial ASCII simulator ({args.kind})"
    await serve_until(
        server, stop, lambda sim: medium_lines(kind, sim.medium, sim, args.link), started
    )


@contextlib.asynccontextmanager
async def simulate_instrument(
    config: SerialAsciiInstrument,
) -> AsyncIterator[SerialAsciiInstrument]:
    """Serve the matching simulator (``thp`` when the config sends a command, ``stream``
    otherwise) on a pty or loopback TCP; yield the config pointed at it."""
    tcp = isinstance(config.transport, AsciiTcpServer)
    server = SerialSimServer(
        "thp" if config.command is not None else "stream",
        medium="tcp" if tcp else "pty",
        period_s=0.2,
        terminator=config.read_terminator,
    )
    async with server:
        data = config.model_dump()
        if tcp:
            data["transport"] |= {"host": server.host, "port": server.port}
        else:
            assert server.pty_path is not None
            data["transport"] |= {"port": server.pty_path}
        yield SerialAsciiInstrument.model_validate(data)


SIMULATORS["serial-ascii"] = SimulatorEntry(
    "serial-ascii",
    "ASCII transmitter answering SEND, or a streaming thermometer readout (pty or TCP)",
    add_arguments,
    run,
)
