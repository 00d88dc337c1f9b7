"""Config of a Modbus instrument: one device (device id) reached over TCP, RTU or RTU over TCP.

One instrument is one Modbus device, so each device has its own schedule, timeout, reconnect and
state. Devices that share a transport endpoint (one RS-485 line, one serial-to-Ethernet
converter, one TCP gateway) share one connection inside the driver; RTU devices on one line are
put on one ``bus`` automatically, so the agent serialises them behind one lock and a device's
timeout is counted only from when it owns the line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from core.config_loader import config_dir
from core.models import FrozenModel, Name
from drivers.config import InstrumentBase, channel_entries_schema
from drivers.modbus.profiles import (
    SHELF,
    ProfileError,
    load_profile,
    merge_channels,
    with_profile_settings,
)
from drivers.modbus.registers import (
    REGISTER_WIDTH,
    ByteWordOrder,
    DataType,
    DeviceSettings,
    ModbusChannel,
)
from drivers.serial_line import SerialSettings
from drivers.setpoints import DeclaredTargets, SafeValue, TargetKind, TypedTarget, integer_bounds

WritableTable = Literal["coil", "holding"]

_INTEGER_RANGE: dict[str, tuple[int, int]] = {
    f"{'' if signed else 'u'}int{bits}": integer_bounds(bits, signed=signed)
    for bits in (16, 32, 64)
    for signed in (True, False)
}
_FLOAT32_MAX = 3.4028234663852886e38


class ModbusTarget(TypedTarget):
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
    max_transactions: int = Field(
        1,
        ge=1,
        le=64,
        description="Requests sent to the endpoint before their replies came (Modbus TCP matches "
        "replies by transaction id). 1 suits most devices; a gateway or server that takes several "
        "transactions at once lets the devices behind it be polled without waiting for each "
        "other's round trips.",
    )

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


class ModbusInstrument(DeviceSettings, InstrumentBase, DeclaredTargets[ModbusTarget]):
    """One Modbus device: transport, device id, byte order, request limits, channels — given
    here, or taken from a profile and adjusted here (see :mod:`drivers.modbus.profiles` for
    how the two combine)."""

    protocol: Literal["modbus"]
    transport: ModbusTransport
    profile: str | None = Field(
        None,
        description="A shipped Modbus profile's name or the path of a profile file (relative "
        "to the config file): the device's register map, order, limits and identification.",
    )
    device_id: int = Field(
        1, ge=0, le=255, description="Unit/slave id; RTU: 1-247. Default: the profile's, or 1."
    )
    only: list[Name] | None = Field(
        None, description="With a profile: read only these of its channels."
    )
    disable: list[Name] = Field(
        default_factory=list, description="With a profile: leave these of its channels out."
    )
    targets: list[ModbusTarget] = Field(
        default_factory=list,
        description="Values this bench may write, with their limits; nothing else is written.",
    )
    safe_state: list[SafeValue] = Field(
        default_factory=list,
        description="Target values that make the device safe, written in order.",
    )
    channels: list[ModbusChannel] = Field(
        default_factory=list,
        description="Without a profile: every channel. With one: channels of its own, and "
        "entries named like a profile channel that change its interval_s, uncertainty, scale, "
        "offset, unit, order or tags.",
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The published schema: with a profile, an entry of ``channels`` named like one of its
        channels gives only what it changes (rule 3 of :mod:`drivers.modbus.profiles`)."""
        schema = super().__get_pydantic_json_schema__(core_schema, handler)
        return channel_entries_schema(schema, handler, profile_given=True)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        # RTU devices on one line must queue behind one lock: name the bus after the line
        # unless the config names it.
        if data.get("bus") is None:
            transport = data.get("transport")
            if isinstance(transport, dict):
                kind = transport.get("kind")
                if kind == "rtu" and transport.get("port"):
                    data = {**data, "bus": f"modbus:serial://{transport['port']}"}
                elif kind == "rtu_over_tcp" and transport.get("host") and transport.get("port"):
                    bus = f"modbus:rtu+tcp://{transport['host']}:{transport['port']}"
                    data = {**data, "bus": bus}
        reference = data.get("profile")
        if isinstance(reference, str):
            try:
                profile = load_profile(SHELF.reference(reference, config_dir(info)))
            except ProfileError:
                return data  # reported by the field's validator
            data = with_profile_settings(profile, data)
        return data

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, reference: str | None, info: ValidationInfo) -> str | None:
        if reference is None:
            return None
        # A file's path is kept absolute: a config copied from this one loads it from anywhere.
        return SHELF.checked_reference(reference, config_dir(info))

    @field_validator("only", "disable")
    @classmethod
    def _names_of_the_profile(cls, names: list[str] | None, info: ValidationInfo) -> Any:
        if not names or "profile" not in info.data:
            return names  # nothing chosen, or the profile is unusable (its error says why)
        reference = info.data["profile"]
        if reference is None:
            raise ValueError("only and disable choose among a profile's channels: set profile")
        profile = load_profile(reference)
        known = profile.channel_names()
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))}: no such channel in profile {profile.name!r} "
                f"(it has {', '.join(known)})"
            )
        if len(set(names)) != len(names):
            raise ValueError("a channel is named twice")
        if info.field_name == "disable" and info.data.get("only") is not None:
            raise ValueError("give only or disable, not both")
        return names

    @field_validator("channels", mode="before")
    @classmethod
    def _merge_profile(cls, entries: Any, info: ValidationInfo) -> Any:
        if "profile" not in info.data:
            return []  # the profile is unusable: its error says why
        reference = info.data["profile"]
        if reference is None:
            return entries
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            return entries  # pydantic says what is wrong with it
        profile = load_profile(reference)
        # A selection that was refused (its error says why) selects nothing here, so that the
        # entries' own problems are reported too.
        only, disable = info.data.get("only"), info.data.get("disable", [])
        return merge_channels(profile, entries, only, disable)

    @model_validator(mode="after")
    def _fits(self) -> ModbusInstrument:
        if isinstance(self.transport, ModbusRtu | ModbusRtuOverTcp) and not (
            1 <= self.device_id <= 247
        ):
            raise ValueError("an RTU device id is 1-247 (0 is broadcast and never answers)")
        problems = self.device_problems(self.channels)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def profile_name(self) -> str | None:
        """The name of the profile the instrument uses, if any."""
        return load_profile(self.profile).name if self.profile is not None else None

    @model_validator(mode="after")
    def _targets(self) -> ModbusInstrument:
        self.check_safe_state()
        return self

    def timeout_of_request(self) -> float:
        """Timeout of one request."""
        return self.request_timeout_s or self.timeout_s
