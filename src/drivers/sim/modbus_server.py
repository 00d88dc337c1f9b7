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
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import random
import struct
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from core.clock import Clock, SystemClock
from core.models import FrozenModel
from drivers.modbus.codec import DecodedValue, DecodeError, crc16, decode, encode
from drivers.modbus.config import ModbusInstrument, ModbusRtu, ModbusTcp, derived_bus
from drivers.modbus.registers import BIT_TABLES, FUNCTION_CODE, ByteWordOrder, ModbusChannel, Table
from drivers.sim.catalog import SIMULATORS, SimulatorEntry
from drivers.sim.faults import FaultConfig, FaultHooks
from drivers.sim.models import QUANTITIES, ModelParams, RoomParams, Sampler, build_model
from drivers.sim.serving import PseudoTerminal, StreamServed

log = logging.getLogger("etalon.drivers.sim.modbus")

TABLE_OF_FUNCTION = {code: table for table, code in FUNCTION_CODE.items()}

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4

WRITE_TABLE = {5: "coil", 6: "holding", 15: "coil", 16: "holding"}
"""Write function codes and the table each writes."""
SERIAL_OBJECT = 0x80
"""FC 43 object id of the serial number (vendor-specific extended object)."""


# -- register map ------------------------------------------------------------------------------


class MapPoint(ModbusChannel):
    """One value of a simulated device: a model quantity or a constant, encoded as a driver
    channel with the same fields decodes it (``value = raw · scale + offset``)."""

    unit: str = Field("", max_length=32)
    quantity: str | None = Field(None, description="Quantity of the device's model.")
    value: bool | int | float | str | None = Field(None, description="A constant value.")
    writable: bool = Field(False, description="Takes writes; 'value' is its initial value.")
    write_min: float | None = Field(None, description="Writes below this: ILLEGAL DATA VALUE.")
    write_max: float | None = Field(None, description="Writes above this: ILLEGAL DATA VALUE.")

    @model_validator(mode="after")
    def _one_source(self) -> MapPoint:
        if (self.quantity is None) == (self.value is None):
            raise ValueError("a point has either 'quantity' or 'value'")
        if self.writable and (
            self.value is None
            or self.table not in ("coil", "holding")
            or self.value_type in ("bit", "string")
        ):
            raise ValueError(
                "a writable point is a coil or holding register value (not a bit or a string) "
                "with an initial 'value'"
            )
        return self


class AddressRange(FrozenModel):
    """Addresses [start, end) of one table."""

    table: Table
    start: int = Field(..., ge=0, le=65535)
    end: int = Field(..., ge=1, le=65536)


class Identity(FrozenModel):
    """What FC 43/14 (read device identification) answers."""

    vendor: str = "etalon"
    product_code: str = "SIM"
    revision: str = "1.0"
    model_name: str = ""
    serial: str = ""


class MapDevice(FrozenModel):
    """One simulated device on the server."""

    device_id: int = Field(..., ge=1, le=255)
    order: ByteWordOrder = "ABCD"
    model: ModelParams | None = None
    identity: Identity = Field(default_factory=Identity)
    max_registers_per_request: int = Field(125, ge=1, le=125)
    max_bits_per_request: int = Field(2000, ge=1, le=2000)
    tables: list[Table] | None = Field(
        None, description="Tables the device implements; default: those its points use."
    )
    illegal: list[AddressRange] = Field(
        default_factory=list,
        description="Addresses that answer ILLEGAL DATA ADDRESS (holes in the device's map).",
    )
    points: list[MapPoint]

    @model_validator(mode="after")
    def _quantities_exist(self) -> MapDevice:
        known = QUANTITIES[self.model.kind] if self.model else {}
        for point in self.points:
            if point.quantity is not None and point.quantity not in known:
                kind = self.model.kind if self.model else "none"
                raise ValueError(f"point {point.name!r}: model {kind!r} has no {point.quantity!r}")
        return self


class RegisterMap(FrozenModel):
    """The devices a simulator serves."""

    description: str = ""
    devices: list[MapDevice]

    @model_validator(mode="after")
    def _unique_ids(self) -> RegisterMap:
        ids = [d.device_id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError("device ids must be unique")
        return self


MAPS_PACKAGE = "drivers.sim.maps"


def shipped_maps() -> list[str]:
    """Names of the register maps shipped with the package."""
    folder = resources.files(MAPS_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_register_map(name_or_path: str | Path) -> RegisterMap:
    """A shipped map by name (``room-climate``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files(MAPS_PACKAGE) / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise FileNotFoundError(
                f"no register map {name_or_path!r} (shipped: {', '.join(shipped_maps())})"
            )
        text = resource.read_text(encoding="utf-8")
    return RegisterMap.model_validate(yaml.safe_load(text))


# -- faults ------------------------------------------------------------------------------------


class ModbusFaultConfig(FaultConfig):
    """Faults a Modbus simulator starts with (see the module doc)."""

    bad_crc: bool = False
    exception_at: list[dict[str, Any]] = Field(
        default_factory=list, description="[{table, address, code}] answered with an exception."
    )
    silent_device_ids: list[int] = Field(default_factory=list)
    only_device_ids: list[int] = Field(default_factory=list)


@dataclass
class ModbusFaultHooks(FaultHooks):
    """Live fault state of a Modbus simulator."""

    bad_crc: bool = False
    exception_at: list[Any] = field(default_factory=list)
    silent_device_ids: list[int] = field(default_factory=list)
    only_device_ids: list[int] = field(default_factory=list)

    def applies_to(self, device_id: int) -> bool:
        """Whether the reply-level faults (delay, hang, garbage, CRC) hit this device."""
        return not self.only_device_ids or device_id in self.only_device_ids

    def exception_for(self, table: str, start: int, end: int) -> int | None:
        """The exception code configured for any address in [start, end), if one is."""
        for entry in self.exception_at:
            if isinstance(entry, dict):
                e_table, e_address = entry.get("table", "holding"), int(entry["address"])
                e_code = int(entry.get("code", ILLEGAL_DATA_ADDRESS))
            else:
                e_table, e_address, e_code = entry[0], int(entry[1]), int(entry[2])
            if e_table == table and start <= e_address < end:
                return e_code
        return None


# -- the device logic (PDU in, PDU out) --------------------------------------------------------


class SimDevice:
    """One device of a register map: answers read requests from its model, takes writes to its
    writable points (see the module doc)."""

    def __init__(self, spec: MapDevice, clock: Clock, model: Sampler | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self.model: Sampler | None = model or (build_model(spec.model) if spec.model else None)
        self.identity = spec.identity
        self.stored: dict[str, DecodedValue] = {
            p.name: p.value for p in spec.points if p.writable and p.value is not None
        }
        """Current value of each writable point (after scale/offset, as a driver reads it)."""
        self.writes: list[tuple[int, int, list[int] | list[bool]]] = []
        """(function code, address, values) of every write the device took."""
        self.tables = set(spec.tables or {p.table for p in spec.points})
        self.requests = 0
        self._points: dict[str, list[MapPoint]] = {}
        for point in sorted(spec.points, key=lambda p: (p.address, p.value_type == "bit")):
            self._points.setdefault(point.table, []).append(point)
        self._starts = {t: [p.address for p in ps] for t, ps in self._points.items()}
        self._ends = {t: [p.address + p.width for p in ps] for t, ps in self._points.items()}
        self._widest = {t: max(p.width for p in ps) for t, ps in self._points.items()}
        self._constant_words: dict[str, list[int]] = {}

    def set_serial(self, serial: str) -> None:
        """Another unit on the line: FC 43 and any constant point that showed the old serial
        now show ``serial``."""
        old = self.identity.serial
        self.identity = self.identity.model_copy(update={"serial": serial})
        for point in self.spec.points:
            if old and point.value == old:
                self.stored[point.name] = serial
                self._constant_words.pop(point.name, None)

    def value_of(self, point: MapPoint, t_ns: int) -> DecodedValue:
        """The point's value at t, before the inverse of the channel's scale/offset."""
        if point.name in self.stored:
            value: DecodedValue = self.stored[point.name]
        elif point.value is not None:
            value = point.value
        else:
            assert self.model is not None
            assert point.quantity is not None
            value = self.model.sample(point.quantity, t_ns)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if point.value_type in ("bool", "bit"):
                return value >= 0.5
            if point.scale == 1.0 and point.offset == 0.0:
                return value  # exact: a 64-bit integer must not pass through a float
            return (value - point.offset) / point.scale
        return value

    def true_value(self, point: MapPoint, t_ns: int) -> DecodedValue:
        """The noise-free value a driver should read after scaling (for tests)."""
        if point.value is not None:
            return point.value
        assert self.model is not None
        assert point.quantity is not None
        return self.model.true_value(point.quantity, t_ns)

    def _overlapping(self, table: str, start: int, end: int) -> Iterable[MapPoint]:
        starts = self._starts.get(table, [])
        if not starts:
            return
        first = bisect.bisect_left(starts, start - self._widest.get(table, 1) + 1)
        last = bisect.bisect_left(starts, end)
        ends = self._ends[table]
        points = self._points[table]
        for index in range(first, last):
            if ends[index] > start:
                yield points[index]

    def read(self, table: str, start: int, count: int) -> list[int] | list[bool]:
        """The current contents of [start, start+count) of a table."""
        t_ns = self.clock.now_ns()
        if table in BIT_TABLES:
            bits = [False] * count
            for point in self._overlapping(table, start, start + count):
                bits[point.address - start] = bool(self.value_of(point, t_ns))
            return bits
        registers = [0] * count
        for point in self._overlapping(table, start, start + count):
            into = registers[point.address - start] if start <= point.address else 0
            words = self._words(point, t_ns, into)
            for offset, word in enumerate(words):
                address = point.address + offset
                if start <= address < start + count:
                    registers[address - start] = word
        return registers

    def _words(self, point: MapPoint, t_ns: int, into: int) -> list[int]:
        constant = (
            point.value is not None and point.value_type != "bit" and point.name not in self.stored
        )
        if constant and point.name in self._constant_words:
            return self._constant_words[point.name]
        try:
            words = encode(
                self.value_of(point, t_ns),
                point.value_type,
                point.order or self.spec.order,
                bit=point.bit,
                encoding=point.encoding,
                length=point.length,
                into=into,
            )
        except ValueError:
            words = [0xFFFF] * point.width  # out of range: what a saturated device sends
        if constant:
            self._constant_words[point.name] = words
        return words

    def handle(self, pdu: bytes, faults: ModbusFaultHooks) -> bytes:
        """The response PDU to a request PDU."""
        self.requests += 1
        function = pdu[0] if pdu else 0
        if function in TABLE_OF_FUNCTION:
            return self._handle_read(function, pdu, faults)
        if function in WRITE_TABLE:
            return self._handle_write(function, pdu, faults)
        if function == 0x2B and len(pdu) >= 4 and pdu[1] == 0x0E:
            return self._handle_identification(pdu)
        return _exception(function, ILLEGAL_FUNCTION)

    def _write_request(self, function: int, pdu: bytes) -> tuple[int, list[int] | list[bool]]:
        """(address, values) of a write request; raises ValueError for a malformed one."""
        if function in (5, 6):
            if len(pdu) != 5:
                raise ValueError("length")
            address, raw = struct.unpack(">HH", pdu[1:5])
            if function == 6:
                return address, [raw]
            if raw not in (0xFF00, 0x0000):
                raise ValueError("coil value")
            return address, [raw == 0xFF00]
        if len(pdu) < 6:
            raise ValueError("length")
        address, count, size = struct.unpack(">HHB", pdu[1:6])
        data = pdu[6:]
        if function == 15:
            if not 1 <= count <= 1968 or size != (count + 7) // 8 or len(data) != size:
                raise ValueError("count")
            return address, [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]
        if not 1 <= count <= 123 or size != 2 * count or len(data) != size:
            raise ValueError("count")
        return address, list(struct.unpack(f">{count}H", data))

    def _handle_write(self, function: int, pdu: bytes, faults: ModbusFaultHooks) -> bytes:
        table = WRITE_TABLE[function]
        try:
            address, values = self._write_request(function, pdu)
        except ValueError:
            return _exception(function, ILLEGAL_DATA_VALUE)
        if table not in self.tables:
            return _exception(function, ILLEGAL_FUNCTION)
        end = address + len(values)
        if end > 65536 or any(
            hole.table == table and hole.start < end and address < hole.end
            for hole in self.spec.illegal
        ):
            return _exception(function, ILLEGAL_DATA_ADDRESS)
        code = faults.exception_for(table, address, end)
        if code is not None:
            return _exception(function, code)
        points = list(self._overlapping(table, address, end))
        covered = sum(p.width for p in points)
        inside = all(
            p.writable and address <= p.address and p.address + p.width <= end for p in points
        )
        if not points or covered != len(values) or not inside:
            return _exception(function, ILLEGAL_DATA_ADDRESS)
        updates: dict[str, DecodedValue] = {}
        for point in points:
            words = values[point.address - address : point.address - address + point.width]
            new = self._decoded(point, words)
            if new is None:
                return _exception(function, ILLEGAL_DATA_VALUE)
            updates[point.name] = new
        self.stored.update(updates)
        self.writes.append((function, address, values))
        return pdu if function in (5, 6) else pdu[:5]

    def _decoded(self, point: MapPoint, words: list[int] | list[bool]) -> DecodedValue | None:
        """A written point's new value (after scale/offset), or None if the device refuses it."""
        if point.table == "coil":
            return bool(words[0])
        try:
            raw = decode([int(w) for w in words], point.value_type, point.order or self.spec.order)
        except DecodeError:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return raw
        value: int | float = raw
        if point.scale != 1.0 or point.offset != 0.0:
            value = raw * point.scale + point.offset
        low, high = point.write_min, point.write_max
        if (low is not None and not value >= low) or (high is not None and not value <= high):
            return None
        return value

    def _handle_read(self, function: int, pdu: bytes, faults: ModbusFaultHooks) -> bytes:
        table = TABLE_OF_FUNCTION[function]
        if len(pdu) != 5:
            return _exception(function, ILLEGAL_DATA_VALUE)
        start, count = struct.unpack(">HH", pdu[1:5])
        bits = table in BIT_TABLES
        protocol_max = 2000 if bits else 125
        device_max = self.spec.max_bits_per_request if bits else self.spec.max_registers_per_request
        if table not in self.tables:
            return _exception(function, ILLEGAL_FUNCTION)
        if not 1 <= count <= min(protocol_max, device_max):
            return _exception(function, ILLEGAL_DATA_VALUE)
        end = start + count
        if end > 65536:
            return _exception(function, ILLEGAL_DATA_ADDRESS)
        for hole in self.spec.illegal:
            if hole.table == table and hole.start < end and start < hole.end:
                return _exception(function, ILLEGAL_DATA_ADDRESS)
        code = faults.exception_for(table, start, end)
        if code is not None:
            return _exception(function, code)
        values = self.read(table, start, count)
        if bits:
            packed = bytearray((count + 7) // 8)
            for i, bit in enumerate(values):
                if bit:
                    packed[i // 8] |= 1 << (i % 8)
            return bytes((function, len(packed))) + bytes(packed)
        return bytes((function, 2 * count)) + struct.pack(f">{count}H", *values)

    def _handle_identification(self, pdu: bytes) -> bytes:
        ident = self.identity
        objects = {0: ident.vendor, 1: ident.product_code, 2: ident.revision}
        if ident.model_name:
            objects[5] = ident.model_name  # regular category: ModelName
        if ident.serial:
            objects[SERIAL_OBJECT] = ident.serial  # extended category, vendor-specific
        read_code, object_id = pdu[2], pdu[3]
        if read_code == 4:
            if object_id not in objects:
                return _exception(0x2B, ILLEGAL_DATA_ADDRESS)
            chosen = {object_id: objects[object_id]}
        elif read_code in (1, 2, 3):
            last = {1: 0x02, 2: 0x7F, 3: 0xFF}[read_code]
            chosen = {k: v for k, v in objects.items() if k <= last}
        else:
            return _exception(0x2B, ILLEGAL_DATA_VALUE)
        # Conformity 0x83: basic, regular and extended identification, stream and individual.
        body = bytearray((0x2B, 0x0E, read_code, 0x83, 0, 0, len(chosen)))
        for key, text in chosen.items():
            raw = text.encode("ascii", "replace")[:240]
            body += bytes((key, len(raw))) + raw
        return bytes(body)


def _exception(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))


# -- framing -----------------------------------------------------------------------------------


def _rtu_request_length(buffer: bytes) -> int | None:
    """Length of the RTU request frame starting the buffer, None if unknown or not yet known."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in (1, 2, 3, 4, 5, 6, 8):
        return 8
    if function in (15, 16):
        return 9 + buffer[6] if len(buffer) >= 7 else None
    if function == 0x2B:
        return 7
    if function in (7, 11, 12, 17):
        return 4
    return 0  # not a request this simulator knows: hunt for the next frame


class RtuRequestParser:
    """Splits a byte stream into RTU request frames, hunting past garbage and bad CRCs."""

    def __init__(self) -> None:
        self.buffer = b""
        self.discarded = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add bytes; return the complete (device id, PDU) frames found."""
        self.buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self.buffer) >= 4:
            length = _rtu_request_length(self.buffer)
            if length is None:
                break
            if length and len(self.buffer) < length:
                break
            frame = self.buffer[:length] if length else b""
            if length and crc16(frame[:-2]) == frame[-2:]:
                frames.append((frame[0], frame[1:-2]))
                self.buffer = self.buffer[length:]
            else:
                self.buffer = self.buffer[1:]
                self.discarded += 1
        return frames


def rtu_frame(device_id: int, pdu: bytes, bad_crc: bool = False) -> bytes:
    """A complete RTU frame (optionally with a wrong CRC)."""
    frame = bytes((device_id,)) + pdu
    crc = crc16(frame)
    if bad_crc:
        crc = bytes((crc[0] ^ 0xFF, crc[1]))
    return frame + crc


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
    async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
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
        async with server:
            where = server.pty_path if medium == "pty" else f"{server.host}:{server.port}"
            print(f"modbus simulator ({framing}) serving {args.map} on {where}", flush=True)
            if args.link:
                print(f"  linked as {args.link}", flush=True)
            await stop.wait()

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
