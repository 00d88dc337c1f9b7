"""Register decoding and encoding: every data type in the four byte/word orders.

Registers travel big-endian on the wire (each register is two bytes, high byte first). A value
that spans several registers is assembled from them in the device's order: ``ABCD`` keeps both
the registers and the bytes inside them as sent; ``CDAB`` reverses the order of the registers
(word swap); ``BADC`` swaps the two bytes inside each register (byte swap); ``DCBA`` does both.
Strings follow the same rule. The simulator uses :func:`encode` so both ends share one
definition, and the tests cross-check both against ``struct`` and pymodbus's own conversion.
"""

from __future__ import annotations

import math
import struct

from drivers.modbus.config import ByteWordOrder, DataType

_STRUCT_FORMAT: dict[str, str] = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}

DecodedValue = bool | int | float | str


class DecodeError(ValueError):
    """Registers that do not hold a usable value (bad string bytes, wrong count)."""


def _swap_bytes(order: ByteWordOrder) -> bool:
    return order in ("BADC", "DCBA")


def _swap_words(order: ByteWordOrder) -> bool:
    return order in ("CDAB", "DCBA")


def registers_to_bytes(registers: list[int], order: ByteWordOrder) -> bytes:
    """The value's bytes, most significant first, from registers in the device's order."""
    words = list(reversed(registers)) if _swap_words(order) else registers
    out = bytearray()
    for word in words:
        high, low = (word >> 8) & 0xFF, word & 0xFF
        out += bytes((low, high)) if _swap_bytes(order) else bytes((high, low))
    return bytes(out)


def bytes_to_registers(data: bytes, order: ByteWordOrder) -> list[int]:
    """Registers in the device's order holding ``data`` (most significant byte first)."""
    if len(data) % 2:
        data += b"\x00"
    words = []
    for i in range(0, len(data), 2):
        high, low = data[i], data[i + 1]
        words.append((low << 8) | high if _swap_bytes(order) else (high << 8) | low)
    return list(reversed(words)) if _swap_words(order) else words


def decode(
    registers: list[int],
    kind: DataType,
    order: ByteWordOrder = "ABCD",
    bit: int | None = None,
    encoding: str = "ascii",
    length: int | None = None,
) -> DecodedValue:
    """Decode the registers of one value. Raises DecodeError for bytes that are no value."""
    if kind == "bool":
        return bool(registers[0])
    if kind == "bit":
        assert bit is not None
        return bool((registers[0] >> bit) & 1)
    data = registers_to_bytes(registers, order)
    if kind == "string":
        text_bytes = data[:length] if length is not None else data
        try:
            return text_bytes.decode(encoding).rstrip("\x00 ")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not valid {encoding}: {text_bytes!r}") from exc
    fmt = ">" + _STRUCT_FORMAT[kind]
    if len(data) != struct.calcsize(fmt):
        needed = struct.calcsize(fmt) // 2
        raise DecodeError(f"{kind} needs {needed} registers, got {len(data) // 2}")
    value: int | float = struct.unpack(fmt, data)[0]
    return value


def encode(
    value: DecodedValue,
    kind: DataType,
    order: ByteWordOrder = "ABCD",
    bit: int | None = None,
    encoding: str = "ascii",
    length: int | None = None,
    into: int = 0,
) -> list[int]:
    """Registers that decode to ``value``. For ``bit``, ``into`` is the register the bit is set
    in. Integers out of range and non-finite numbers for integer types raise ValueError."""
    if kind == "bool":
        return [1 if value else 0]
    if kind == "bit":
        assert bit is not None
        mask = 1 << bit
        return [(into | mask) if value else (into & ~mask & 0xFFFF)]
    if kind == "string":
        assert length is not None
        raw = str(value).encode(encoding)[:length].ljust(length, b"\x00")
        return bytes_to_registers(raw, order)
    fmt = ">" + _STRUCT_FORMAT[kind]
    number: int | float
    if kind.startswith("float"):
        number = float(value)
    else:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value!r} is no {kind}")
        number = round(float(value)) if isinstance(value, float) else int(value)
    try:
        data = struct.pack(fmt, number)
    except struct.error as exc:
        raise ValueError(f"{value!r} does not fit {kind}") from exc
    return bytes_to_registers(data, order)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(frame: bytes) -> bytes:
    """The Modbus RTU CRC-16 of a frame (polynomial 0xA001 reflected, initial 0xFFFF), as the
    two bytes sent after it, low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return struct.pack("<H", crc)
