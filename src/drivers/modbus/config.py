"""Config of a Modbus instrument: one device (device id) reached over TCP, RTU or RTU over TCP.

One instrument is one Modbus device, so each device has its own schedule, timeout, reconnect and
state. Devices that share a transport endpoint (one RS-485 line, one serial-to-Ethernet
converter, one TCP gateway) share one connection inside the driver; RTU devices on one line are
put on one ``bus`` automatically, so the agent serialises them behind one lock and a device's
timeout is counted only from when it owns the line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from core.models import FrozenModel
from drivers.config import ChannelBase, InstrumentBase
from drivers.serial_line import SerialSettings
from drivers.setpoints import (
    SafeValue,
    TargetKind,
    TargetLimits,
    WriteTarget,
    check_safe_state,
    make_target,
)

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


class ModbusChannel(ChannelBase):
    """One value of a Modbus device: where it is and how to decode it."""

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
    def _consistent(self) -> ModbusChannel:
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


WritableTable = Literal["coil", "holding"]

_INTEGER_RANGE: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38


class ModbusTarget(TargetLimits):
    """A value this bench may write: where it lives, how it is encoded (the same type, byte and
    word order as a channel's), and its limits in engineering units. The register holds
    (value − offset) / scale, rounded for integer types."""

    table: WritableTable = Field("holding", description="coil or holding (the writable tables).")
    address: int = Field(..., ge=0, le=65535, description="Protocol address, 0-based.")
    type: DataType | None = Field(
        None, description="Data type; defaults to bool for a coil, uint16 for a register."
    )
    order: ByteWordOrder | None = Field(None, description="Overrides the device's byte order.")
    scale: float = Field(1.0, description="value = register · scale + offset.")
    offset: float = 0.0
    function: Literal["auto", 5, 6, 15, 16] = Field(
        "auto",
        description="auto: FC 5 for a coil, FC 6 for one register, FC 16 for more. 15 or 16 for "
        "devices that take only the multiple-write functions.",
    )
    verify: bool = Field(
        False, description="Read the registers back after the write and compare them."
    )

    @property
    def value_type(self) -> DataType:
        """The data type, defaulted by table."""
        return self.type or ("bool" if self.table == "coil" else "uint16")

    @property
    def width(self) -> int:
        """Registers (or coils) the value occupies."""
        return 1 if self.table == "coil" else REGISTER_WIDTH[self.value_type]

    @property
    def kind(self) -> TargetKind:
        """What values the target takes."""
        kind = self.value_type
        if kind == "bool":
            return "bool"
        if kind.startswith("float") or self.scale != 1.0 or self.offset != 0.0:
            return "number"
        return "integer"

    @property
    def function_code(self) -> int:
        """The function code a write uses."""
        if self.function != "auto":
            return self.function
        if self.table == "coil":
            return 5
        return 6 if self.width == 1 else 16

    def raw(self, value: float) -> float:
        """The register value of an engineering value."""
        return (value - self.offset) / self.scale

    @model_validator(mode="after")
    def _encodable(self) -> ModbusTarget:
        kind = self.value_type
        if kind in ("string", "bit"):
            raise ValueError(f"a {kind} cannot be a write target")
        if (self.table == "coil") != (kind == "bool"):
            raise ValueError("a coil holds a bool, and a bool target is a coil")
        if self.scale == 0:
            raise ValueError("scale may not be 0")
        codes = (5, 15) if self.table == "coil" else (6, 16)
        if self.function != "auto" and self.function not in codes:
            raise ValueError(f"a {self.table} is written with FC {codes[0]} or {codes[1]}")
        if self.function == 6 and self.width != 1:
            raise ValueError(f"FC 6 writes one register; a {kind} spans {self.width}")
        if self.address + self.width > 65536:
            raise ValueError(f"address {self.address} + {self.width} runs past 65535")
        bounds = [b for b in (self.min, self.max) if b is not None]
        bounds += [a for a in self.allowed or [] if isinstance(a, float)]
        for bound in bounds:
            raw = self.raw(bound)
            if kind in _INTEGER_RANGE:
                low, high = _INTEGER_RANGE[kind]
                if not low <= round(raw) <= high:
                    raise ValueError(
                        f"limit {bound:g} is register value {raw:g}, beyond {kind} ({low} … {high})"
                    )
            elif kind == "float32" and abs(raw) > _FLOAT32_MAX:
                raise ValueError(f"limit {bound:g} does not fit a float32")
        return self


class ModbusTcp(FrozenModel):
    """Modbus TCP (MBAP framing) to a device or a gateway."""

    kind: Literal["tcp"]
    host: str = Field(..., min_length=1)
    port: int = Field(502, ge=1, le=65535)

    def endpoint(self) -> str:
        """What the connection is to, as a stable key and a readable name."""
        return f"tcp://{self.host}:{self.port}"


class ModbusRtu(SerialSettings):
    """Modbus RTU on a local serial port (RS-485 or RS-232)."""

    kind: Literal["rtu"]
    inter_frame_delay_s: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Silence kept between the end of a reply and the next request; "
        "default: the spec's 3.5 character times (1.75 ms above 19200 Bd).",
    )

    def endpoint(self) -> str:
        """What the connection is to, as a stable key and a readable name."""
        return f"serial://{self.port}"

    def frame_gap_s(self) -> float:
        """The inter-frame delay in force."""
        return self.t35_s() if self.inter_frame_delay_s is None else self.inter_frame_delay_s


class ModbusRtuOverTcp(FrozenModel):
    """Modbus RTU frames (with CRC) carried over a TCP stream: serial-to-Ethernet converters."""

    kind: Literal["rtu_over_tcp"]
    host: str = Field(..., min_length=1)
    port: int = Field(..., ge=1, le=65535)
    inter_frame_delay_s: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Silence between requests, for converters that do not keep the RS-485 "
        "line's 3.5 character gap themselves.",
    )

    def endpoint(self) -> str:
        """What the connection is to, as a stable key and a readable name."""
        return f"rtu+tcp://{self.host}:{self.port}"

    def frame_gap_s(self) -> float:
        """The inter-frame delay in force."""
        return self.inter_frame_delay_s


ModbusTransport = Annotated[ModbusTcp | ModbusRtu | ModbusRtuOverTcp, Field(discriminator="kind")]


def derived_bus(transport: ModbusTcp | ModbusRtu | ModbusRtuOverTcp) -> str | None:
    """The bus RTU devices on one line share; None for Modbus TCP (its gateway queues)."""
    if isinstance(transport, ModbusTcp):
        return None
    return f"modbus:{transport.endpoint()}"


class ModbusInstrument(InstrumentBase):
    """One Modbus device: transport, device id, byte order, request limits, channels."""

    protocol: Literal["modbus"]
    transport: ModbusTransport
    device_id: int = Field(1, ge=0, le=255, description="Unit/slave id; RTU: 1-247.")
    order: ByteWordOrder = Field("ABCD", description="Byte/word order of multi-register values.")
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
    targets: list[ModbusTarget] = Field(
        default_factory=list,
        description="Values this bench may write, with their limits; nothing else is written.",
    )
    safe_state: list[SafeValue] = Field(
        default_factory=list,
        description="Target values that make the device safe, written in order.",
    )
    channels: list[ModbusChannel]

    @model_validator(mode="before")
    @classmethod
    def _default_bus(cls, data: Any) -> Any:
        # RTU devices on one line must queue behind one lock: name the bus after the line
        # unless the config names it.
        if isinstance(data, dict) and data.get("bus") is None:
            transport = data.get("transport")
            if not isinstance(transport, dict):
                return data
            kind = transport.get("kind")
            if kind == "rtu" and transport.get("port"):
                data = {**data, "bus": f"modbus:serial://{transport['port']}"}
            elif kind == "rtu_over_tcp" and transport.get("host") and transport.get("port"):
                data = {**data, "bus": f"modbus:rtu+tcp://{transport['host']}:{transport['port']}"}
        return data

    @model_validator(mode="after")
    def _fits(self) -> ModbusInstrument:
        if isinstance(self.transport, ModbusRtu | ModbusRtuOverTcp) and not (
            1 <= self.device_id <= 247
        ):
            raise ValueError("an RTU device id is 1-247 (0 is broadcast and never answers)")
        for channel in self.channels:
            limit = (
                self.max_bits_per_request
                if channel.table in BIT_TABLES
                else self.max_registers_per_request
            )
            if channel.width > limit:
                raise ValueError(
                    f"channel {channel.name!r} spans {channel.width} addresses, more than one "
                    f"request may read ({limit})"
                )
        return self

    def order_of(self, channel: ModbusChannel | ModbusTarget) -> ByteWordOrder:
        """The byte/word order a channel is decoded (a target encoded) with."""
        return channel.order or self.order

    @model_validator(mode="after")
    def _targets(self) -> ModbusInstrument:
        check_safe_state(self.name, self.write_targets(), self.safe_state)
        return self

    def write_targets(self) -> dict[str, WriteTarget]:
        """The writable targets with their limits; raises ValueError for a bad one."""
        targets: dict[str, WriteTarget] = {}
        for target in self.targets:
            if target.name in targets:
                raise ValueError(f"target {target.name!r} appears twice")
            targets[target.name] = make_target(self.name, target, target.kind)
        return targets

    def target_named(self, name: str) -> ModbusTarget:
        """A target's config by name."""
        return next(t for t in self.targets if t.name == name)

    def timeout_of_request(self) -> float:
        """Timeout of one request."""
        return self.request_timeout_s or self.timeout_s
