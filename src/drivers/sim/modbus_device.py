"""The simulated Modbus devices' logic below the transport: a request PDU in, a response PDU
out (see :mod:`drivers.sim.modbus_server` for the protocol's rules), the fault hooks that reach
below the PDU, and RTU framing.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from core.clock import Clock
from drivers.modbus.codec import (
    DecodedValue,
    DecodeError,
    bits_of,
    crc16,
    decode,
    encode,
    pack_bits,
)
from drivers.modbus.registers import BIT_TABLES, FUNCTION_CODE
from drivers.sim.faults import FaultConfig, FaultHooks
from drivers.sim.modbus_map import MapDevice, MapPoint
from drivers.sim.models import Sampler, build_model

TABLE_OF_FUNCTION = {code: table for table, code in FUNCTION_CODE.items()}

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4

WRITE_TABLE = {5: "coil", 6: "holding", 15: "coil", 16: "holding"}
"""Write function codes and the table each writes."""
SERIAL_OBJECT = 0x80
"""FC 43 object id of the serial number (vendor-specific extended object)."""


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
            return address, bits_of(data, count)
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
            packed = pack_bits(values)
            return bytes((function, len(packed))) + packed
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
