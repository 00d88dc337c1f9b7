"""Register decoding and encoding: every data type in the four byte/word orders.

Registers travel big-endian on the wire (each register is two bytes, high byte first). A value
that spans several registers is assembled from them in the device's order: ``ABCD`` keeps both
the registers and the bytes inside them as sent; ``CDAB`` reverses the order of the registers
(word swap); ``BADC`` swaps the two bytes inside each register (byte swap); ``DCBA`` does both.
Strings follow the same rule. The simulator uses :func:`encode` so both ends share one
definition, and the tests cross-check both against ``struct`` and pymodbus's own conversion.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Iterable, Sequence

from drivers.modbus.registers import ByteWordOrder, DataType

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


Decoder = Callable[[Sequence[int]], DecodedValue]


def decode(
    registers: Sequence[int],
    kind: DataType,
    order: ByteWordOrder = "ABCD",
    bit: int | None = None,
    encoding: str = "ascii",
    length: int | None = None,
) -> DecodedValue:
    """Decode the registers of one value. Raises DecodeError for bytes that are no value."""
    if kind in _STRUCT_FORMAT:
        needed = struct.calcsize(_STRUCT_FORMAT[kind]) // 2
        if len(registers) != needed:
            raise DecodeError(f"{kind} needs {needed} registers, got {len(registers)}")
    elif not registers:
        raise DecodeError(f"{kind} needs at least one register, got none")
    return decoder(kind, order, bit, encoding, length)(registers)


@functools.lru_cache(maxsize=512)
def decoder(
    kind: DataType,
    order: ByteWordOrder = "ABCD",
    bit: int | None = None,
    encoding: str = "ascii",
    length: int | None = None,
) -> Decoder:
    """A function decoding one value's registers, built once per type and order: the driver
    decodes every channel of every poll, so the choices are made here and not per value."""
    if kind == "bool":
        return lambda registers: bool(registers[0])
    if kind == "bit":
        assert bit is not None
        mask = 1 << bit
        return lambda registers: bool(registers[0] & mask)
    if kind == "string":

        def text(registers: Sequence[int]) -> str:
            data = registers_to_bytes(list(registers), order)
            raw = data[:length] if length is not None else data
            try:
                return raw.decode(encoding).rstrip("\x00 ")
            except UnicodeDecodeError as exc:
                raise DecodeError(f"string is not valid {encoding}: {raw!r}") from exc

        return text
    value_format = struct.Struct(">" + _STRUCT_FORMAT[kind])
    count = value_format.size // 2
    if kind == "uint16" and not _swap_bytes(order):
        return lambda registers: int(registers[0])
    if kind == "int16" and not _swap_bytes(order):
        return lambda r: r[0] - 0x10000 if r[0] & 0x8000 else int(r[0])
    words_format = struct.Struct(f">{count}H")
    swap_words, swap_bytes = _swap_words(order), _swap_bytes(order)

    def number(registers: Sequence[int]) -> int | float:
        words = list(registers)
        if swap_words:
            words.reverse()
        if swap_bytes:
            words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
        value: int | float = value_format.unpack(words_format.pack(*words))[0]
        return value

    return number


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


def pack_bits(values: Iterable[bool | int]) -> bytes:
    """Bits as Modbus packs them (FC 1/2 responses, FC 15 requests): eight to a byte, the first
    in the least significant bit, the last byte padded with zeros."""
    bits = list(values)
    packed = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            packed[i >> 3] |= 1 << (i & 7)
    return bytes(packed)


def bits_of(data: bytes, count: int) -> list[bool]:
    """The first ``count`` bits of packed Modbus bits (at most as many as ``data`` holds)."""
    return [bool(data[i >> 3] >> (i & 7) & 1) for i in range(min(count, 8 * len(data)))]


def unpacker(kind: DataType, order: ByteWordOrder) -> tuple[bool, struct.Struct] | None:
    """For numeric types: (swapped, format) such that the value is
    ``format.unpack_from(buffer, 2 * offset)[0]``, where ``buffer`` holds a reply's registers
    packed big-endian (``swapped`` False) or each little-endian (``swapped`` True). One packing
    per reply then serves every channel in it, in every order:

    - ABCD: registers as sent hold the value big-endian;
    - DCBA: the same bytes are the value little-endian;
    - BADC: each register's bytes swapped give the value big-endian;
    - CDAB: each register's bytes swapped are the value little-endian.

    None for types that are not a plain number (bool, bit, string)."""
    code = _STRUCT_FORMAT.get(kind)
    if code is None:
        return None
    swapped = _swap_bytes(order) != _swap_words(order)
    little = _swap_words(order)
    return swapped, struct.Struct(("<" if little else ">") + code)


def pack_registers(registers: Sequence[int], swapped: bool) -> bytes:
    """A reply's registers as one buffer for :func:`unpacker` formats."""
    return struct.pack(f"{'<' if swapped else '>'}{len(registers)}H", *registers)


def swap_bytes(data: bytes) -> bytes:
    """Registers as sent (high byte first) made into the ``swapped`` buffer of
    :func:`unpacker` (each register's two bytes exchanged)."""
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)
