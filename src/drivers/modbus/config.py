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

    def order_of(self, channel: ModbusChannel) -> ByteWordOrder:
        """The byte/word order a channel is decoded with."""
        return channel.order or self.order

    def timeout_of_request(self) -> float:
        """Timeout of one request."""
        return self.request_timeout_s or self.timeout_s
