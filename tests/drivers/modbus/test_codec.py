"""Decoding: every type × byte/word order, cross-checked against struct and pymodbus."""

from __future__ import annotations

import math
import struct

import pytest
from pymodbus.client import ModbusTcpClient

from drivers.modbus.codec import (
    DecodeError,
    crc16,
    decode,
    encode,
    pack_registers,
    unpacker,
)
from drivers.modbus.registers import ByteWordOrder

ORDERS: list[ByteWordOrder] = ["ABCD", "CDAB", "BADC", "DCBA"]

# Where each byte of the big-endian value (A = most significant) travels on the wire, written
# out letter by letter for each convention: an independent statement of the four orders.
WIRE_LAYOUT = {
    2: {"ABCD": "AB", "CDAB": "AB", "BADC": "BA", "DCBA": "BA"},
    4: {"ABCD": "ABCD", "CDAB": "CDAB", "BADC": "BADC", "DCBA": "DCBA"},
    8: {
        "ABCD": "ABCDEFGH",
        "CDAB": "GHEFCDAB",
        "BADC": "BADCFEHG",
        "DCBA": "HGFEDCBA",
    },
}

SAMPLES: dict[str, list[int | float]] = {
    "int16": [0, 1, -1, 12345, -32768, 32767],
    "uint16": [0, 1, 0xBEEF, 65535],
    "int32": [0, -1, 0x12345678, -(2**31), 2**31 - 1],
    "uint32": [0, 0xDEADBEEF, 2**32 - 1],
    "int64": [0, -1, 0x0123456789ABCDEF, -(2**63), 2**63 - 1],
    "uint64": [0, 0xFEDCBA9876543210, 2**64 - 1],
    "float32": [0.0, 1.5, -273.15, 3.4e38, 1e-38, math.inf],
    "float64": [0.0, 10.000_000_8, -1e-300, 1.7e308, -math.inf],
}
STRUCT = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}


def wire_registers(big_endian: bytes, order: ByteWordOrder) -> list[int]:
    """Registers as a device in ``order`` sends them, from the layout table."""
    layout = WIRE_LAYOUT[len(big_endian)][order]
    wire = bytes(big_endian[ord(letter) - ord("A")] for letter in layout)
    return [(wire[i] << 8) | wire[i + 1] for i in range(0, len(wire), 2)]


def pymodbus_decode(registers: list[int], kind: str, order: ByteWordOrder) -> int | float:
    """The same registers decoded by pymodbus; it knows word order only, so a byte-swapping
    order is undone first (swap the two bytes of each register)."""
    if order in ("BADC", "DCBA"):
        registers = [((r & 0xFF) << 8) | (r >> 8) for r in registers]
    word_order = "little" if order in ("CDAB", "DCBA") else "big"
    data_type = ModbusTcpClient.DATATYPE[kind.upper()]
    value = ModbusTcpClient.convert_from_registers(registers, data_type, word_order=word_order)
    assert isinstance(value, int | float)
    return value


CASES = [
    (kind, order, value) for kind, values in SAMPLES.items() for order in ORDERS for value in values
]


@pytest.mark.parametrize(("kind", "order", "value"), CASES)
def test_every_type_and_order_against_struct_and_pymodbus(
    kind: str, order: ByteWordOrder, value: int | float
) -> None:
    big_endian = struct.pack(">" + STRUCT[kind], value)
    registers = wire_registers(big_endian, order)

    decoded = decode(registers, kind, order)  # type: ignore[arg-type]
    swapped, layout = unpacker(kind, order)  # type: ignore[arg-type,misc]
    padded = [0x1234, *registers, 0x5678]  # the value inside a longer reply, as the driver sees it
    assert layout.unpack_from(pack_registers(padded, swapped), 2)[0] == decoded
    expected = struct.unpack(">" + STRUCT[kind], big_endian)[0]  # float32 rounding included
    assert decoded == expected
    assert type(decoded) is type(expected)
    assert pymodbus_decode(registers, kind, order) == expected
    assert encode(value, kind, order) == registers  # type: ignore[arg-type]


@pytest.mark.parametrize("order", ORDERS)
def test_orders_differ_for_multi_register_values(order: ByteWordOrder) -> None:
    """A value read in the wrong order is a different number: the orders are not aliases."""
    registers = encode(123456.789, "float32", order)
    others = {o: decode(registers, "float32", o) for o in ORDERS if o != order}
    assert decode(registers, "float32", order) == pytest.approx(123456.789)
    assert all(v != pytest.approx(123456.789) for v in others.values())


def test_nan_decodes_as_nan() -> None:
    registers = encode(math.nan, "float32", "CDAB")
    assert math.isnan(float(decode(registers, "float32", "CDAB")))


@pytest.mark.parametrize("order", ORDERS)
def test_strings_in_every_order_match_pymodbus(order: ByteWordOrder) -> None:
    registers = encode("THP-000123", "string", order, length=16)
    assert len(registers) == 8
    assert decode(registers, "string", order, length=16) == "THP-000123"
    swapped = (
        [((r & 0xFF) << 8) | (r >> 8) for r in registers]
        if order in ("BADC", "DCBA")
        else registers
    )
    word_order = "little" if order in ("CDAB", "DCBA") else "big"
    assert (
        ModbusTcpClient.convert_from_registers(
            swapped, ModbusTcpClient.DATATYPE.STRING, word_order=word_order
        )
        == "THP-000123"
    )


def test_odd_length_string_and_padding() -> None:
    registers = encode("ABC", "string", "ABCD", length=5)
    assert registers == [0x4142, 0x4300, 0x0000]
    assert decode(registers, "string", "ABCD", length=5) == "ABC"


def test_string_that_is_not_text_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not valid utf-8"):
        decode([0xFFFE, 0x4142], "string", "ABCD", encoding="utf-8", length=4)


def test_bits_of_a_register() -> None:
    register = encode(True, "bit", bit=0, into=0)[0]
    register = encode(True, "bit", bit=15, into=register)[0]
    register = encode(False, "bit", bit=0, into=register)[0]
    assert register == 0x8000
    assert decode([register], "bit", bit=15) is True
    assert decode([register], "bit", bit=0) is False
    assert decode([0x0008], "bit", bit=3) is True
    assert decode([7], "bool") is True
    assert decode([0], "bool") is False


def test_out_of_range_values_refuse_to_encode() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode(70000, "uint16")
    with pytest.raises(ValueError, match="no int32"):
        encode(math.nan, "int32")


def test_wrong_register_count_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="needs 2 registers"):
        decode([1], "float32")


def test_crc16_known_frames() -> None:
    # Read holding registers, device 1, address 0, count 1: the textbook frame 01 03 00 00 00 01
    # carries the CRC 84 0A; and the CRC of a frame with its CRC appended is zero.
    assert crc16(bytes.fromhex("010300000001")) == bytes.fromhex("840a")
    assert crc16(bytes.fromhex("1103006b0003")) == bytes.fromhex("7687")
    frame = bytes.fromhex("1103006b0003")
    assert crc16(frame + crc16(frame)) == b"\x00\x00"
