"""What a Modbus device holds and how it is read: tables, data types, byte orders, registers,
channels, and the settings of a device that a profile and an instrument config share.

This is the bottom of the Modbus package: the codec, the profiles and the instrument config build
on it.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel
from drivers.config import ChannelBase

Table = Literal["coil", "discrete_input", "holding", "input"]
"""The four Modbus data tables, read with function codes 1, 2, 3 and 4."""

FUNCTION_CODE: dict[str, int] = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}
BIT_TABLES = frozenset({"coil", "discrete_input"})

DataType = Literal[
    "bool",
    "bit",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "string",
]

ByteWordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
"""Byte order of a multi-byte value as the four conventions name it, A being the most
significant byte: ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian.
For 64-bit values the same rule extends to eight bytes (word swap reverses all four words)."""

REGISTER_WIDTH: dict[str, int] = {
    "bool": 1,
    "bit": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}

MAX_REGISTERS_PER_REQUEST = 125
MAX_BITS_PER_REQUEST = 2000


class Register(FrozenModel):
    """Where a value lives in a Modbus device and how it is encoded."""

    table: Table = Field("holding", description="coil, discrete_input, holding or input.")
    address: int = Field(..., ge=0, le=65535, description="Protocol address, 0-based.")
    type: DataType | None = Field(
        None, description="Data type; defaults to bool in bit tables, uint16 in register tables."
    )
    bit: int | None = Field(None, ge=0, le=15, description="Bit index (0 = LSB) for type: bit.")
    length: int | None = Field(
        None, ge=1, le=250, description="Length in bytes of a fixed-length string."
    )
    order: ByteWordOrder | None = Field(None, description="Overrides the device's byte order.")
    encoding: str = Field("ascii", description="Encoding of a string value.")

    @property
    def value_type(self) -> DataType:
        """The data type, defaulted by table."""
        if self.type is not None:
            return self.type
        return "bool" if self.table in BIT_TABLES else "uint16"

    @property
    def width(self) -> int:
        """How many addresses (registers or bits) the value occupies."""
        if self.table in BIT_TABLES:
            return 1
        if self.value_type == "string":
            assert self.length is not None
            return (self.length + 1) // 2
        return REGISTER_WIDTH[self.value_type]

    @model_validator(mode="after")
    def _consistent(self) -> Register:
        kind = self.value_type
        if self.table in BIT_TABLES and kind != "bool":
            raise ValueError(f"a {self.table} holds single bits: type must be bool, not {kind}")
        if (kind == "bit") != (self.bit is not None):
            raise ValueError("type: bit needs 'bit' (0-15), and only it takes one")
        if (kind == "string") != (self.length is not None):
            raise ValueError("type: string needs 'length' (bytes), and only it takes one")
        if kind == "string":
            try:
                "".encode(self.encoding)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {self.encoding!r}") from exc
        if self.address + self.width > 65536:
            raise ValueError(f"address {self.address} + {self.width} runs past 65535")
        return self


class ModbusChannel(Register, ChannelBase):
    """One value of a Modbus device: where it is and how to decode it."""


class Ordered(Protocol):
    """Anything placed in registers with an order of its own or the device's."""

    @property
    def order(self) -> ByteWordOrder | None:
        """Its own byte/word order, if it has one."""
        ...


ReadFunction = Literal[1, 2, 3, 4]
"""The read function codes: 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers."""

IDENTITY_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""A key of the device's identification (serial, model, firmware…)."""


class DeviceSettings(FrozenModel):
    """How a kind of device is talked to: what a profile holds besides its register map, and
    what an instrument config may set itself (its value then replaces the profile's)."""

    order: ByteWordOrder = Field("ABCD", description="Byte/word order of multi-register values.")
    function_codes: list[ReadFunction] = Field(
        [1, 2, 3, 4],
        min_length=1,
        description="The read functions the device implements (1 coils, 2 discrete inputs, "
        "3 holding, 4 input registers); a channel in another table is refused.",
    )
    request_timeout_s: float | None = Field(
        None,
        gt=0,
        le=600,
        description="Timeout of one request; default: timeout_s. A request that times out "
        "ends the read: the device is not asked again until the next poll.",
    )
    max_registers_per_request: int = Field(MAX_REGISTERS_PER_REQUEST, ge=1, le=125)
    max_bits_per_request: int = Field(MAX_BITS_PER_REQUEST, ge=1, le=2000)
    max_gap_registers: int = Field(
        8, ge=0, le=124, description="Largest run of unwanted registers read through."
    )
    max_gap_bits: int = Field(32, ge=0, le=1999, description="Same, for coils/discrete inputs.")
    identify: bool = Field(
        False, description="Read the device identification (FC 43/14) on connect."
    )
    identity_serial_object: int | None = Field(
        None,
        ge=0,
        le=255,
        description="FC 43 object that holds the serial number (vendor-specific, usually "
        "0x80 = 128 or above); read individually with the identification.",
    )
    identity_registers: dict[str, Register] = Field(
        default_factory=dict,
        description="Registers read once on connect for the records, by what they hold "
        "(serial, model, firmware…): e.g. {serial: {table: holding, address: 100, type: string, "
        "length: 16}}.",
    )

    @field_validator("function_codes")
    @classmethod
    def _distinct(cls, codes: list[int]) -> list[int]:
        if len(set(codes)) != len(codes):
            raise ValueError("a function code appears twice")
        return codes

    @field_validator("identity_registers")
    @classmethod
    def _identity_keys(cls, registers: dict[str, Register]) -> dict[str, Register]:
        for key in registers:
            if not IDENTITY_KEY.match(key):
                raise ValueError(f"identity key {key!r} must match {IDENTITY_KEY.pattern}")
        return registers

    def order_of(self, item: Ordered) -> ByteWordOrder:
        """The byte/word order a channel or identity register is decoded (a write target
        encoded) with."""
        return item.order or self.order

    def device_problems(self, channels: list[ModbusChannel]) -> list[str]:
        """What the channels and identity registers ask that the device cannot do: a table whose
        function it lacks, a value wider than one request may read."""
        problems = []
        items = [(f"channel {c.name!r}", c) for c in channels] + [
            (f"identity register {key!r}", r) for key, r in self.identity_registers.items()
        ]
        for what, register in items:
            code = FUNCTION_CODE[register.table]
            if code not in self.function_codes:
                problems.append(
                    f"{what} is in table {register.table} (FC {code}), which the device does "
                    f"not implement (function_codes: {sorted(self.function_codes)})"
                )
            limit = (
                self.max_bits_per_request
                if register.table in BIT_TABLES
                else self.max_registers_per_request
            )
            if register.width > limit:
                problems.append(
                    f"{what} spans {register.width} addresses, more than one request may read "
                    f"({limit})"
                )
        return problems
