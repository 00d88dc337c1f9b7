"""A raw SCPI server on a TCP socket and/or a pseudo-terminal, reached as a real VISA resource.

pyvisa (pyvisa-py) talks to it as ``TCPIP::127.0.0.1::PORT::SOCKET`` or, on the pseudo-terminal,
``ASRL/dev/pts/N::INSTR`` — the same bytes a LAN or RS-232 instrument would exchange. Messages
end with ``\\n`` (``\\r\\n`` is accepted); replies end with ``\\n``.

Fault hooks (:class:`drivers.sim.faults.FaultHooks`, switchable live by a control file or by the
test that holds the simulator): ``hang`` (no reply at all), ``delay_s`` (slow reply),
``garbage_rate`` (a garbled number), ``disconnected`` (connections are closed and new ones are
closed at once); :meth:`ScpiSimulator.drop_connections` closes the current sockets once, and
:meth:`ScpiSimulator.push_error` puts an entry into the instrument's error queue. On the
pseudo-terminal, :attr:`ScpiSimulator.pty_fault` spoils the next reply (one-shot, see
:data:`PTY_FAULTS`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping

from pydantic import Field, field_validator

from core.clock import Clock, SystemClock
from core.errors import ConfigError
from core.models import FrozenModel
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.faults import FaultConfig, FaultHooks
from drivers.sim.models import ModelParams
from drivers.sim.scpi_faults import FaultCommands
from drivers.sim.scpi_hislip import HislipServer
from drivers.sim.scpi_instruments import PERSONALITIES, ScpiInstrument, build_instrument
from drivers.sim.scpi_vxi11 import Vxi11Server
from drivers.sim.serving import PseudoTerminal, StreamServed, flags, serve_until
from drivers.visa.config import HISLIP_RESOURCE, VXI11_RESOURCE, VisaInstrument

log = logging.getLogger("etalon.drivers.sim.scpi")

_GARBLE_CHARS = "#?%~"

PTY_FLOOD = 2 << 20
"""Bytes of the ``flood`` fault: twice what etalon's serial link lets a reply hold."""

PTY_FAULTS = {
    "undecodable": "bytes no text encoding takes (0xff 0xfe 0x80), then the newline",
    "unterminated": "the first half of the reply, and nothing more (a reply cut off)",
    "flood": f"{PTY_FLOOD} bytes of digits without a newline (an endless reply)",
    "close": "the pseudo-terminal closed instead of the reply (the device gone); a new one is "
    "opened at once, under a new path (asrl_resource)",
    "doubled": "the reply twice (a line nobody asked for: every later reply is one behind)",
}
"""What :attr:`ScpiSimulator.pty_fault` makes of the next reply on the pseudo-terminal."""


class ScpiSimConfig(FrozenModel):
    """One simulated SCPI instrument."""

    personality: str = Field(..., description="generic-dmm, longscale-dmm, frequency-counter, …")
    serial: str = Field("SIM0001", pattern=r"^[A-Za-z0-9_.\-]{1,32}$")
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    tcp: bool = True
    pty: bool = Field(False, description="Also serve on a pseudo-terminal (ASRL resource).")
    hislip: bool = Field(False, description="Also serve HiSLIP (TCPIP::host::hislip0,PORT::INSTR).")
    hislip_port: int = Field(
        0, ge=0, le=65535, description="HiSLIP's TCP port; 0 picks a free one."
    )
    vxi11: bool = Field(
        False,
        description="Also serve VXI-11: a portmapper and the core channel "
        "(TCPIP::host,CORE_PORT::INSTR, or TCPIP::host::INSTR through the portmapper).",
    )
    vxi11_port: int = Field(
        0, ge=0, le=65535, description="The VXI-11 portmapper's TCP port; 0 picks a free one."
    )
    inputs: dict[str, ModelParams] = Field(
        default_factory=dict, description="Physical models on the inputs, overriding defaults."
    )
    faults: FaultConfig = Field(default_factory=FaultConfig)
    seed: int = 7

    @field_validator("personality")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in PERSONALITIES:
            raise ValueError(f"unknown personality {name!r} (known: {', '.join(PERSONALITIES)})")
        return name


def garble(reply: str, rng: random.Random) -> str:
    """A reply with one digit replaced by line noise — unparseable, as a real garbled number."""
    digits = [i for i, c in enumerate(reply) if c.isdigit()]
    if not digits:
        return reply + rng.choice(_GARBLE_CHARS)
    i = rng.choice(digits)
    return reply[:i] + rng.choice(_GARBLE_CHARS) + reply[i + 1 :]


class ScpiSimulator(StreamServed):
    """Serves one simulated instrument; ``async with`` starts and stops it."""

    def __init__(
        self,
        config: ScpiSimConfig,
        clock: Clock | None = None,
        instrument: ScpiInstrument | None = None,
        faults: FaultHooks | None = None,
    ) -> None:
        """``instrument`` serves a prebuilt instrument instead of the personality's (the bench
        wires its instruments to one physical model); ``faults`` shares live fault hooks with
        it (an instrument can switch its own faults)."""
        super().__init__()
        self.config = config
        self.clock = clock or SystemClock()
        self.instrument: ScpiInstrument = instrument or build_instrument(
            config.personality, self.clock, config.serial, config.inputs
        )
        self.faults = faults or FaultHooks.from_config(config.faults)
        if isinstance(self.instrument, FaultCommands):
            self.instrument.faults = self.faults  # SIMulate:FAULt switches the live hooks
        self.messages = 0
        """Program messages processed (a test can check a query reached the instrument)."""
        self.transcript: deque[tuple[str, str | None]] = deque(maxlen=2000)
        """The latest program messages and the reply each got (None: none sent), in order:
        a test can check the exact exchange, or that nothing reached the instrument."""
        self.connections = 0
        """TCP connections accepted so far."""
        self.unanswered: set[str] = set()
        """Program messages (exactly as sent) that get no reply: one query of a read hangs while
        the others are answered."""
        self._rng = random.Random(config.seed)
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._pty: PseudoTerminal | None = None
        self._pty_path: str | None = None
        self._pty_lines: asyncio.Queue[bytes] = asyncio.Queue()
        self._pty_buffer = bytearray()
        self._pty_task: asyncio.Task[None] | None = None
        self.pty_fault: str | None = None
        """One of :data:`PTY_FAULTS`: what the next reply on the pseudo-terminal becomes."""
        self.pty_opened = 0
        """Pseudo-terminals opened so far (a ``close`` fault opens the next)."""
        self.port = 0
        self.hislip: HislipServer | None = None
        """The HiSLIP server (``hislip: true``): its port, resource name, fault hooks."""
        self.vxi11: Vxi11Server | None = None
        """The VXI-11 server (``vxi11: true``): its ports, resource names, fault hooks."""

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on TCP and/or open the pseudo-terminal."""
        if self.config.tcp:
            self.port = await self._listen(self._serve_tcp, self.config.host, self.config.port)
        if self.config.pty:
            self._open_pty()
        if self.config.hislip:
            self.hislip = HislipServer(
                self._process,
                self.faults,
                lambda: 4 if self.instrument.errors else 0,
                self.config.host,
                self.config.hislip_port,
            )
            await self.hislip.start()
        if self.config.vxi11:
            self.vxi11 = Vxi11Server(
                self._process,
                self.faults,
                lambda: 4 if self.instrument.errors else 0,
                self.config.host,
                self.config.vxi11_port,
            )
            await self.vxi11.start()
        log.info(
            "scpi simulator started",
            extra={
                "personality": self.config.personality,
                "port": self.port,
                "pty": self._pty_path,
            },
        )

    async def stop(self) -> None:
        """Close every connection and the listener; idempotent."""
        # Connection tasks end by themselves once their socket is closed and any slow reply is
        # cut short; cancelling them would upset asyncio's own start_server bookkeeping.
        self._closing.set()
        if self.hislip is not None:
            await self.hislip.stop()
        if self.vxi11 is not None:
            await self.vxi11.stop()
        await self._shut(cancel=lambda task: task is self._pty_task)
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    @property
    def tcp_resource(self) -> str:
        """The VISA resource name of the TCP socket."""
        return f"TCPIP::{self.config.host}::{self.port}::SOCKET"

    @property
    def hislip_resource(self) -> str:
        """The VISA resource name of the HiSLIP server."""
        if self.hislip is None:
            raise RuntimeError("the simulator serves no HiSLIP (hislip: false)")
        return self.hislip.resource()

    @property
    def vxi11_resource(self) -> str:
        """The VISA resource name of the VXI-11 core channel (``host,port``: no portmapper)."""
        if self.vxi11 is None:
            raise RuntimeError("the simulator serves no VXI-11 (vxi11: false)")
        return self.vxi11.resource()

    def drop_connections(self) -> None:
        """Close every open connection now, HiSLIP's and VXI-11's too (the device rebooted its
        network stack)."""
        super().drop_connections()
        if self.hislip is not None:
            self.hislip.drop_connections()
        if self.vxi11 is not None:
            self.vxi11.drop_connections()

    @property
    def asrl_resource(self) -> str:
        """The VISA resource name of the pseudo-terminal."""
        if self._pty_path is None:
            raise RuntimeError("the simulator serves no pseudo-terminal (pty: false)")
        return f"ASRL{self._pty_path}::INSTR"

    # -- fault hooks -------------------------------------------------------------------------

    def push_error(self, code: int, message: str) -> None:
        """Put an entry into the instrument's error queue (as an internal fault would)."""
        self.instrument.push_error(code, message)

    # -- the instrument ----------------------------------------------------------------------

    async def _process(self, line: bytes) -> list[bytes]:
        """Run one program message under the instrument's lock; the replies to send."""
        async with self._lock:
            self.faults.refresh()
            self.messages += 1
            message = line.decode("latin-1").rstrip("\r\n")
            replies = self.instrument.execute(message)
            if not replies or self.faults.hang or message in self.unanswered:
                # No reply, or the query is swallowed: the controller waits for its timeout.
                self.transcript.append((message, None))
                return []
            if self.faults.delay_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.faults.delay_s)
            out = []
            for reply in replies:
                if self.faults.garbage_now(self._rng):
                    reply = garble(reply, self._rng)
                out.append(reply.encode("latin-1", "replace") + b"\n")
            # Several queries in one message answer in one response message (IEEE 488.2).
            response = b";".join(r.rstrip(b"\n") for r in out)
            self.transcript.append((message, response.decode("latin-1")))
            return [response + b"\n"]

    # -- TCP ---------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        # The controller going away, or sending an absurdly long line, ends the connection.
        quiet = (ConnectionError, asyncio.LimitOverrunError, ValueError)
        await self._converse(writer, self._talk(reader, writer), quiet, wait_closed=True)

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.faults.refresh()
        while not self.faults.disconnected:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                break  # EOF (possibly mid-message)
            self.faults.refresh()
            if self.faults.disconnected:
                break
            for reply in await self._process(line):
                writer.write(reply)
            await writer.drain()

    # -- pseudo-terminal -----------------------------------------------------------------------

    def _open_pty(self) -> None:
        self._new_pty()
        self._pty_task = asyncio.get_running_loop().create_task(self._serve_pty())
        self._tasks.add(self._pty_task)

    def _new_pty(self) -> None:
        """Open a (new) pseudo-terminal and watch it; an old one is closed first."""
        if self._pty is not None:
            self._pty.close()
        self._pty_buffer.clear()
        while not self._pty_lines.empty():
            self._pty_lines.get_nowait()
        pty = self._pty = PseudoTerminal.open()
        self._pty_path = pty.path
        self.pty_opened += 1
        asyncio.get_running_loop().add_reader(pty.master, self._pty_readable)

    def _pty_readable(self) -> None:
        assert self._pty is not None
        chunk = self._pty.read()
        if chunk is None:
            return
        self._pty_buffer.extend(chunk)
        while b"\n" in self._pty_buffer:
            index = self._pty_buffer.index(b"\n") + 1
            self._pty_lines.put_nowait(bytes(self._pty_buffer[:index]))
            del self._pty_buffer[:index]

    async def _serve_pty(self) -> None:
        while True:
            line = await self._pty_lines.get()
            self.faults.refresh()
            if self.faults.disconnected:
                continue  # a serial line cannot be closed: a dead instrument just says nothing
            for reply in await self._process(line):
                pty = self._pty
                assert pty is not None
                fault, self.pty_fault = self.pty_fault, None
                if fault == "close":
                    self._new_pty()
                elif fault == "flood":
                    await _send_all(pty, b"7" * PTY_FLOOD)
                else:
                    if fault == "undecodable":
                        reply = b"\xff\xfe\x80\n"
                    elif fault == "unterminated":
                        reply = reply[: max(1, len(reply) // 2)]
                    elif fault == "doubled":
                        reply += reply
                    pty.write(reply)


async def _send_all(pty: PseudoTerminal, data: bytes, stall_s: float = 1.0) -> None:
    """Write all of ``data`` to the pseudo-terminal as the other side takes it; given up when it
    takes nothing for ``stall_s`` (the other side stopped reading) or the pty is gone."""
    view = memoryview(data)
    stalled = 0.0
    while view:
        try:
            sent = os.write(pty.master, view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return
        view = view[sent:]
        if sent:
            stalled = 0.0
        elif stalled >= stall_s:
            return
        else:
            await asyncio.sleep(0.002)
            stalled += 0.002


# -- standalone: ``etalon sim scpi`` ---------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--personality", choices=sorted(PERSONALITIES), default="generic-dmm")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5025, help="TCP port (0: a free one)")
    parser.add_argument("--pty", action="store_true", help="also serve on a pseudo-terminal")
    parser.add_argument(
        "--hislip-port",
        type=int,
        default=None,
        help="also serve HiSLIP on this port (0: a free one)",
    )
    parser.add_argument(
        "--vxi11-port",
        type=int,
        default=None,
        help="also serve VXI-11, its portmapper on this port (0: a free one; 111 as instruments)",
    )
    parser.add_argument("--serial", default="SIM0001", help="serial number in *IDN?")
    parser.add_argument("--control-file", default=None, help="JSON fault control file")


async def _run(
    args: argparse.Namespace, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    config = ScpiSimConfig(
        **flags(args, "personality", "host", "port", "pty", "serial"),
        hislip=args.hislip_port is not None,
        hislip_port=args.hislip_port or 0,
        vxi11=args.vxi11_port is not None,
        vxi11_port=args.vxi11_port or 0,
        faults=FaultConfig(control_file=args.control_file),
    )

    def where(simulator: ScpiSimulator) -> list[str]:
        resources = [simulator.tcp_resource] + ([simulator.asrl_resource] if config.pty else [])
        resources += [simulator.hislip_resource] if config.hislip else []
        if simulator.vxi11 is not None:
            resources.append(simulator.vxi11.resource())
            portmapper = simulator.vxi11.portmapper_port
            resources.append(
                f"{simulator.vxi11.portmapper_resource()} (portmapper on port {portmapper}"
                + ("" if portmapper == 111 else f": vxi11_portmapper_port: {portmapper}")
                + ")"
            )
        return [f"{config.personality}: {resource}" for resource in resources]

    await serve_until(ScpiSimulator(config), stop, where, started)


SIMULATORS["scpi"] = SimulatorEntry(
    "scpi",
    "SCPI instrument (DMM, long-scale DMM, counter, thermometer readout) on TCP or a pty",
    _add_arguments,
    _run,
)


def personalities() -> Mapping[str, str]:
    """Personality name → description, for docs and ``--help``."""
    return {name: p.description for name, p in PERSONALITIES.items()}


@contextlib.asynccontextmanager
async def simulate_visa(config: VisaInstrument) -> AsyncIterator[VisaInstrument]:
    """The registry's ``simulate`` hook: a simulator answering the instrument's profile on a
    free loopback port (over HiSLIP or VXI-11 when the instrument's resource is one of theirs,
    else a raw socket), and the config rewritten to reach it with pyvisa-py or etalon's own
    link."""
    if config.profile not in PERSONALITIES:
        raise ConfigError(
            [
                f"{config.name}: no simulator for profile {config.profile!r} "
                f"(simulated: {', '.join(PERSONALITIES)})"
            ]
        )
    serial = f"SIM-{config.name}"[:32]
    hislip = HISLIP_RESOURCE.match(config.resource) is not None  # keep the transport
    vxi11 = not hislip and VXI11_RESOURCE.match(config.resource) is not None
    sim_config = ScpiSimConfig(
        personality=config.profile, serial=serial, hislip=hislip, vxi11=vxi11
    )
    async with ScpiSimulator(sim_config) as sim:
        resource = (
            sim.hislip_resource if hislip else sim.vxi11_resource if vxi11 else sim.tcp_resource
        )
        yield config.model_copy(update={"resource": resource, "backend": "@py"})
