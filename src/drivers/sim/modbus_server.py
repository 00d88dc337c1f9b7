"""Simulated Modbus devices speaking the real protocol: Modbus TCP, RTU over TCP, RTU on a pty.

A register map (YAML, see ``drivers/sim/maps/``) lists devices by id; each device has a physical
model (room climate, chiller loop, Zener standard...) and points: where a value lives, its type
and byte order, and either a model quantity or a constant. Values are computed from the model at
the instant of each request, so a multi-register value is consistent within one reply.

The framing is written here rather than taken from pymodbus's server: the fault hooks need to
reach below the PDU (a wrong CRC, a reply that never comes, a late one, garbage bytes, a dropped
connection), and pymodbus's datastore classes are deprecated in 3.x. The driver under test is
pymodbus's client, so every exchange is checked against an independent implementation.

Points marked ``writable`` take writes (FC 5/15 for coils, FC 6/16 for holding registers): a
write must cover whole writable points, else ILLEGAL DATA ADDRESS; a value outside a point's
``write_min``/``write_max`` is refused with ILLEGAL DATA VALUE. Every write that reached a device
is logged (``SimDevice.writes``), so a test can prove a refused write never left the driver.
FC 43/14 answers the basic, regular and extended categories and individual objects; the serial
number is the vendor-specific object 0x80.

Fault hooks (``ModbusFaultHooks``), switched on in process or through a JSON control file:
``delay_s`` (slow reply), ``hang`` (no reply), ``garbage_rate``, ``disconnected`` (drop every
connection, refuse new ones), ``bad_crc`` (RTU: reply with a wrong CRC), ``exception_at``
(exception responses for given addresses), ``silent_device_ids`` (ids that never answer) and
``only_device_ids`` (limit the first five to some devices).

This module holds the server (transports and fault timing), the ``etalon sim modbus-*``
commands and the registry hook; the maps are in :mod:`drivers.sim.modbus_map` and the device
logic and RTU framing in :mod:`drivers.sim.modbus_device` (both re-exported here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from core.clock import Clock, SystemClock
from drivers.modbus.config import ModbusInstrument, ModbusRtu, ModbusTcp, derived_bus
from drivers.modbus.registers import BIT_TABLES, ByteWordOrder, ModbusChannel
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.modbus_device import (
    ILLEGAL_DATA_ADDRESS,
    ILLEGAL_DATA_VALUE,
    ILLEGAL_FUNCTION,
    SERIAL_OBJECT,
    SERVER_DEVICE_FAILURE,
    ModbusFaultConfig,
    ModbusFaultHooks,
    RtuRequestParser,
    SimDevice,
    rtu_frame,
)
from drivers.sim.modbus_map import (
    MAPS_PACKAGE,
    AddressRange,
    Identity,
    MapDevice,
    MapPoint,
    RegisterMap,
    load_register_map,
    shipped_maps,
)
from drivers.sim.models import RoomParams, Sampler
from drivers.sim.serving import PseudoTerminal, StreamServed, medium_lines, serve_until

__all__ = [
    "ILLEGAL_DATA_ADDRESS",
    "ILLEGAL_DATA_VALUE",
    "ILLEGAL_FUNCTION",
    "MAPS_PACKAGE",
    "SERIAL_OBJECT",
    "SERVER_DEVICE_FAILURE",
    "AddressRange",
    "Framing",
    "Identity",
    "MapDevice",
    "MapPoint",
    "ModbusFaultConfig",
    "ModbusFaultHooks",
    "ModbusSimServer",
    "RegisterMap",
    "RtuRequestParser",
    "SimDevice",
    "load_register_map",
    "map_for_instrument",
    "rtu_frame",
    "serving",
    "shipped_maps",
    "simulate_instrument",
]

log = logging.getLogger("etalon.drivers.sim.modbus")


# -- the server --------------------------------------------------------------------------------

Framing = Literal["mbap", "rtu"]


class ModbusSimServer(StreamServed):
    """Serves a register map over TCP (MBAP or RTU framing) or a pseudo-terminal (RTU).

    ``async with server:`` starts and stops it. ``address`` is ``(host, port)`` for TCP and
    ``pty_path`` is the device to open for the pty. ``stop()`` then ``start()`` restarts it on
    the same port (a power-cycled device).
    """

    def __init__(
        self,
        register_map: RegisterMap,
        *,
        medium: Literal["tcp", "pty"] = "tcp",
        framing: Framing = "mbap",
        host: str = "127.0.0.1",
        port: int = 0,
        link: Path | None = None,
        clock: Clock | None = None,
        faults: ModbusFaultHooks | None = None,
        seed: int = 7,
        models: dict[int, Sampler] | None = None,
    ) -> None:
        """``models`` replaces the physical model of the devices with those ids (the bench
        wires a transmitter's input to its calibrator)."""
        if medium == "pty" and framing != "rtu":
            raise ValueError("a pseudo-terminal carries RTU framing")
        super().__init__()
        self.register_map = register_map
        self.medium = medium
        self.framing: Framing = framing
        self.host = host
        self.port = port
        self.link = link
        self.clock = clock or SystemClock()
        self.faults = faults or ModbusFaultHooks()
        self.devices = {
            d.device_id: SimDevice(d, self.clock, (models or {}).get(d.device_id))
            for d in register_map.devices
        }
        self.pty_path: str | None = None
        self.requests_received = 0
        self.requests_served = 0
        self._rng = random.Random(seed)
        self._pty: PseudoTerminal | None = None
        self._pty_queue: asyncio.Queue[tuple[int, bytes]] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the TCP server listens on."""
        return self.host, self.port

    async def start(self) -> None:
        """Listen (TCP) or open the pseudo-terminal."""
        if self.medium == "tcp":
            self.port = await self._listen(self._serve_client, self.host, self.port)
            log.info(
                "modbus simulator listening",
                extra={"framing": self.framing, "host": self.host, "port": self.port},
            )
        else:
            self._open_pty()

    async def stop(self) -> None:
        """Close the listener, every connection and the pty; wait for the handlers."""
        if self._pty is not None:
            self._pty.close()
            self._pty = None
        await self._shut(cancel=lambda task: True)

    # -- request handling shared by every medium --

    def _answer(self, device_id: int, pdu: bytes) -> bytes | None:
        """The response PDU, or None when the device stays silent."""
        self.faults.refresh()
        self.requests_received += 1
        device = self.devices.get(device_id)
        if device is None or device_id in self.faults.silent_device_ids:
            return None
        self.requests_served += 1
        return device.handle(pdu, self.faults)

    async def _delay_or_hang(self, device_id: int) -> bool:
        """Apply the slow-reply fault; False if the reply must never come."""
        if not self.faults.applies_to(device_id):
            return True
        if self.faults.hang:
            return False
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        return True

    def _garbage(self, device_id: int) -> bytes | None:
        if self.faults.applies_to(device_id) and self.faults.garbage_now(self._rng):
            return bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(3, 12)))
        return None

    # -- TCP --

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._converse(
            writer,
            self._serve_stream(reader, writer),
            (ConnectionError, asyncio.IncompleteReadError),
        )

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.faults.refresh()
        if self.faults.disconnected:
            return
        if self.framing == "mbap":
            await self._serve_mbap(reader, writer)
        else:
            await self._serve_rtu_stream(reader, writer)

    async def _serve_mbap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(7)
            transaction, protocol, length, device_id = struct.unpack(">HHHB", header)
            pdu = await reader.readexactly(length - 1) if length > 1 else b""
            self.faults.refresh()
            if self.faults.disconnected:
                return
            if protocol != 0:
                continue
            reply = self._answer(device_id, pdu)
            if reply is None or not await self._delay_or_hang(device_id):
                continue
            garbage = self._garbage(device_id)
            if garbage is not None:
                writer.write(garbage)
            else:
                mbap = struct.pack(">HHHB", transaction, 0, len(reply) + 1, device_id)
                writer.write(mbap + reply)
            await writer.drain()

    async def _serve_rtu_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        parser = RtuRequestParser()
        while True:
            data = await reader.read(512)
            if not data:
                return
            for device_id, pdu in parser.feed(data):
                frame = await self._rtu_reply(device_id, pdu)
                self.faults.refresh()
                if self.faults.disconnected:
                    return
                if frame is not None:
                    writer.write(frame)
                    await writer.drain()

    async def _rtu_reply(self, device_id: int, pdu: bytes) -> bytes | None:
        if device_id == 0:
            return None  # broadcast: nobody answers
        reply = self._answer(device_id, pdu)
        if reply is None or not await self._delay_or_hang(device_id):
            return None
        garbage = self._garbage(device_id)
        if garbage is not None:
            return garbage
        bad_crc = self.faults.bad_crc and self.faults.applies_to(device_id)
        return rtu_frame(device_id, reply, bad_crc=bad_crc)

    # -- pseudo-terminal --

    def _open_pty(self) -> None:
        pty = self._pty = PseudoTerminal.open(self.link)
        self.pty_path = pty.path
        parser = RtuRequestParser()
        queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._pty_queue = queue

        def readable() -> None:
            data = pty.read()
            if data is None:
                return
            for frame in parser.feed(data):
                queue.put_nowait(frame)

        asyncio.get_running_loop().add_reader(pty.master, readable)
        self._spawn(self._pty_worker(pty, queue), name="modbus-sim-pty")
        log.info("modbus simulator on pty", extra={"pty": self.pty_path})

    async def _pty_worker(
        self, pty: PseudoTerminal, queue: asyncio.Queue[tuple[int, bytes]]
    ) -> None:
        # Each device on a line answers on its own: a slow device's late reply comes when it
        # comes, possibly during the next exchange, as on a real RS-485 line.
        while True:
            device_id, pdu = await queue.get()
            self._spawn(self._pty_answer(pty, device_id, pdu))

    async def _pty_answer(self, pty: PseudoTerminal, device_id: int, pdu: bytes) -> None:
        frame = await self._rtu_reply(device_id, pdu)
        if frame is not None and self._pty is pty:
            pty.write(frame)


@contextlib.asynccontextmanager
async def serving(register_map: RegisterMap | str, **kwargs: Any) -> AsyncIterator[ModbusSimServer]:
    """Start a simulator for a map (object, shipped name or path) and stop it afterwards."""
    if not isinstance(register_map, RegisterMap):
        register_map = load_register_map(register_map)
    server = ModbusSimServer(register_map, **kwargs)
    async with server:
        yield server


# -- etalon sim modbus-* -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line arguments of the standalone Modbus simulators."""
    parser.add_argument(
        "--map",
        default="lab-bus",
        help="register map: a shipped name or a YAML file",
    )
    parser.add_argument("--host", default="127.0.0.1", help="TCP: address to listen on")
    parser.add_argument("--port", type=int, default=5020, help="TCP: port (0 = any free one)")
    parser.add_argument("--link", type=Path, help="pty: symlink to the device path")
    parser.add_argument("--faults", type=Path, help="JSON fault control file, re-read live")


def _runner(medium: Literal["tcp", "pty"], framing: Framing) -> Any:
    async def run(
        args: argparse.Namespace, stop: asyncio.Event, started: asyncio.Event | None = None
    ) -> None:
        hooks = ModbusFaultHooks(control_file=args.faults)
        server = ModbusSimServer(
            load_register_map(args.map),
            medium=medium,
            framing=framing,
            host=args.host,
            port=args.port,
            link=args.link,
            faults=hooks,
        )
        kind = f"modbus simulator ({framing}) serving {args.map}"
        await serve_until(
            server, stop, lambda sim: medium_lines(kind, medium, sim, args.link), started
        )

    return run


run_tcp = _runner("tcp", "mbap")
run_rtu_over_tcp = _runner("tcp", "rtu")
run_rtu_pty = _runner("pty", "rtu")


# -- registry hook: a simulator for any Modbus instrument config -------------------------------

_UNIT_QUANTITY = {"°C": "temperature", "%rh": "humidity", "hPa": "pressure"}


def _channel_key(channel: ModbusChannel, order: ByteWordOrder) -> tuple[object, ...]:
    return (
        channel.table,
        channel.address,
        channel.value_type,
        order if channel.table not in BIT_TABLES and channel.width > 1 else None,
        channel.bit,
        channel.length,
    )


def map_for_instrument(config: ModbusInstrument) -> RegisterMap:
    """A shipped map whose device serves every channel of the config exactly (same table,
    address, type and order), else a map derived from the channels: room-climate quantities by
    unit (°C, %rh, hPa), distinct constants for the rest."""
    wanted = {_channel_key(c, config.order_of(c)) for c in config.channels}
    for name in shipped_maps():
        candidate = load_register_map(name)
        for device in candidate.devices:
            if device.device_id != config.device_id:
                continue
            offered = {_channel_key(p, p.order or device.order) for p in device.points}
            if wanted <= offered:
                return candidate
    points = []
    for index, channel in enumerate(config.channels):
        fields = channel.model_dump(exclude={"interval_s", "uncertainty", "tags"})
        quantity = _UNIT_QUANTITY.get(channel.unit)
        value: bool | int | float | str
        if channel.value_type in ("bool", "bit"):
            value = index % 2 == 0
        elif channel.value_type == "string":
            value = channel.name
        else:
            value = channel.offset + channel.scale * (index + 1)
        source = {"quantity": quantity} if quantity else {"value": value}
        points.append(MapPoint.model_validate({**fields, **source}))
    device = MapDevice(
        device_id=config.device_id, order=config.order, model=RoomParams(), points=points
    )
    return RegisterMap(description=f"derived from {config.name}", devices=[device])


@contextlib.asynccontextmanager
async def simulate_instrument(config: ModbusInstrument) -> AsyncIterator[ModbusInstrument]:
    """Serve a simulator for the config on loopback or a pty; yield the config pointed at it."""
    register_map = map_for_instrument(config)
    transport = config.transport
    if isinstance(transport, ModbusRtu):
        server = ModbusSimServer(register_map, medium="pty", framing="rtu")
    else:
        framing: Framing = "mbap" if isinstance(transport, ModbusTcp) else "rtu"
        server = ModbusSimServer(register_map, framing=framing)
    async with server:
        data = config.model_dump()
        if data.get("bus") == derived_bus(transport):
            data["bus"] = None
        if isinstance(transport, ModbusRtu):
            # A pty has no parity bit (this kernel refuses PARENB on one): the sim line is 8N1.
            assert server.pty_path is not None
            data["transport"] |= {"port": server.pty_path, "parity": "N"}
        else:
            data["transport"] |= {"host": server.host, "port": server.port}
        yield ModbusInstrument.model_validate(data)


SIMULATORS["modbus-tcp"] = SimulatorEntry(
    "modbus-tcp",
    "Modbus TCP devices from a register map (shipped name or YAML file)",
    add_arguments,
    run_tcp,
)
SIMULATORS["modbus-rtu-over-tcp"] = SimulatorEntry(
    "modbus-rtu-over-tcp",
    "Modbus RTU frames over TCP, as behind a serial-to-Ethernet converter",
    add_arguments,
    run_rtu_over_tcp,
)
SIMULATORS["modbus-rtu"] = SimulatorEntry(
    "modbus-rtu",
    "Modbus RTU devices on a pseudo-terminal (one RS-485 line)",
    add_arguments,
    run_rtu_pty,
)
