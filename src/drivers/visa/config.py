"""Configuration of a VISA/SCPI instrument: the resource, its I/O settings, the profile."""

from __future__ import annotations

import re
import sys
from typing import Any, Literal, NamedTuple

from pydantic import Field, GetJsonSchemaHandler, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from core.config_loader import config_dir
from core.models import FrozenModel
from drivers.config import ChannelBase, InstrumentBase, channel_entries_schema
from drivers.setpoints import SafeValue, TargetLimits, WriteTarget, check_safe_state, make_target
from drivers.visa.profiles import (
    SHELF,
    ErrorPolicy,
    Measurement,
    Profile,
    ProfileError,
    Setpoint,
    load_profile,
)

_GPIB_BOARD = re.compile(r"^GPIB(\d*)::", re.IGNORECASE)
_RESOURCE = re.compile(r"^(TCPIP|GPIB|USB|ASRL|VXI|PXI|VICP)", re.IGNORECASE)
_SOCKET = re.compile(r"^TCPIP\d*::(.+)::(\d+)::SOCKET$", re.IGNORECASE)
HISLIP_RESOURCE = re.compile(r"^TCPIP\d*::(.+)::(hislip\d+)(?:,(\d+))?::INSTR$", re.IGNORECASE)
HISLIP_PORT = 4880
"""HiSLIP's registered port: a resource name without ``,port`` (``hislip0``) means it."""
VXI11_RESOURCE = re.compile(
    r"^TCPIP\d*::([^:\[\],]+|\[[^\]]+\])(?:,(\d+))?(?:::([^:]+))?::INSTR$", re.IGNORECASE
)
"""``TCPIP[board]::host[,port][::device]::INSTR`` (a device name starting with ``hislip`` is
HiSLIP's: :data:`HISLIP_RESOURCE`)."""
ASRL_RESOURCE = re.compile(r"^(?i:ASRL)((?:(?!::).)+)(?:::INSTR)?$")
"""pyvisa's ``ASRL[board][::INSTR]`` (the interface in any case, ``INSTR`` in capitals, as
pyvisa parses it); the board is the port pyvisa-py opens."""


def _host(text: str) -> str:
    """A resource's host, an IPv6 address without its brackets."""
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


class Vxi11Address(NamedTuple):
    """Where a VXI-11 link goes (:meth:`VisaInstrument.vxi11_address`)."""

    host: str
    device: str
    """The device name ``create_link`` sends: ``inst0``, ``gpib0,N``, a LAN device name."""
    core_port: int | None
    """The core channel's port given in the resource (``host,port``, pyvisa-py's way past the
    portmapper), else None: ask the portmapper."""
    portmapper_port: int


class VisaChannel(ChannelBase):
    """A channel: one measurement of the instrument's profile."""

    measurement: str = Field(..., description="Name of a measurement of the profile.")
    index: int | None = Field(
        None, ge=0, description="parse: values — which of the reply's values this channel is."
    )


class VisaTarget(TargetLimits):
    """A set-point of the profile this bench may write, with the limits it allows. The unit
    defaults to the set-point's; a unit given must be the same."""


SafeStep = SafeValue | str
"""A step of a safe state: a raw command ('OUTP OFF') or a target set to a value."""


class SerialSettings(FrozenModel):
    """Line settings of an ASRL (RS-232/RS-485) resource."""

    @field_validator("stop_bits")
    @classmethod
    def _stop_bits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("stop_bits must be 1, 1.5 or 2")
        return value

    baud_rate: int = Field(9600, gt=0)
    data_bits: Literal[5, 6, 7, 8] = 8
    parity: Literal["none", "odd", "even", "mark", "space"] = "none"
    stop_bits: float = Field(1, description="1, 1.5 or 2.")
    flow_control: Literal["none", "xon_xoff", "rts_cts", "dtr_dsr"] = "none"


class VisaInstrument(InstrumentBase):
    """An instrument on a VISA resource (LAN, GPIB, USB, serial) speaking SCPI."""

    protocol: Literal["visa"]
    resource: str = Field(
        ...,
        description="VISA resource name: TCPIP::host::INSTR (VXI-11), TCPIP::host::hislip0::INSTR, "
        "TCPIP::host::port::SOCKET, GPIB0::22::INSTR, USB0::…::INSTR, ASRL/dev/ttyUSB0::INSTR.",
    )
    backend: str = Field(
        "auto",
        description="pyvisa backend: '@py' (pyvisa-py), '@ivi' (NI-VISA, Keysight VISA), "
        "'devices.yaml@sim' (pyvisa-sim), or 'auto': '@ivi' when a VISA library is installed, "
        "else '@py'.",
    )
    profile: str = Field(
        ...,
        description="A shipped profile name or the path of a .yaml file (relative to the "
        "config file).",
    )
    init: list[str] | None = Field(None, description="Replaces the profile's init sequence.")
    measurements: dict[str, Measurement] = Field(
        default_factory=dict,
        description="Added to the profile's measurements (same name: replaces).",
    )
    errors: ErrorPolicy | None = Field(None, description="Replaces the profile's error policy.")
    setpoints: dict[str, Setpoint] = Field(
        default_factory=dict,
        description="Added to the profile's set-points (same name: replaces).",
    )
    targets: list[VisaTarget] = Field(
        default_factory=list,
        description="The set-points this bench may write and the limits it allows; a set-point "
        "not listed here cannot be written. A number needs min and max (or allowed).",
    )
    safe_state: list[SafeStep] | None = Field(
        None,
        description="Replaces the profile's safe state: commands ('OUTP OFF') and target "
        "values ({target: output, value: false}), in order.",
    )
    visa_timeout_s: float | None = Field(
        None,
        gt=0,
        description="I/O timeout of one VISA operation; defaults to timeout_s, may not exceed it.",
    )
    read_termination: str | None = Field("\n", description="None: rely on END/EOI alone.")
    write_termination: str = "\n"
    encoding: str = "ascii"
    query_delay_s: float = Field(0.0, ge=0, le=60, description="Pause between write and read.")
    serial: SerialSettings | None = Field(None, description="ASRL resources only.")
    socket_io: Literal["auto", "pyvisa"] = Field(
        "auto",
        description="How a LAN resource etalon can talk to itself is talked to: "
        "TCPIP::host::port::SOCKET (raw SCPI), TCPIP::host::hislipN[,port]::INSTR (HiSLIP) and "
        "TCPIP::host[::inst0|::gpib0,N|::name]::INSTR (VXI-11). "
        "'auto': etalon's own asyncio sockets on the event loop (no thread; the same "
        "terminations, encoding, query delay and timeouts as pyvisa-py) when the backend is "
        "'auto' or '@py' (and, for a SOCKET, a read termination is set), else pyvisa; "
        "'pyvisa': always through the VISA backend (e.g. NI-VISA's own). The same holds for a "
        "serial port (ASRL<device path>::INSTR) on Linux and other POSIX systems: 'auto' reads "
        "it on the event loop (on Windows it goes through pyvisa). Every other resource kind "
        "(GPIB, USB) always goes through pyvisa.",
    )
    vxi11_portmapper_port: int = Field(
        111,
        ge=1,
        le=65535,
        description="The portmapper's TCP port for a VXI-11 resource on etalon's own link: 111 on "
        "every instrument; another port is for a simulator (etalon sim scpi --vxi11-port).",
    )
    channels: list[VisaChannel]

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The published schema: a channel's unit may be left out (its measurement's)."""
        schema = super().__get_pydantic_json_schema__(core_schema, handler)
        return channel_entries_schema(schema, handler, optional=frozenset({"unit"}))

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_resource_and_profile(cls, data: Any, info: ValidationInfo) -> Any:
        """A GPIB board is one shared bus; a channel's unit defaults to its measurement's."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        resource = data.get("resource")
        if data.get("bus") is None and isinstance(resource, str):
            board = _GPIB_BOARD.match(resource)
            if board:
                data["bus"] = f"gpib{board.group(1) or '0'}"
        profile_name = data.get("profile")
        channels = data.get("channels")
        if not isinstance(profile_name, str) or not isinstance(channels, list):
            return data
        try:
            reference = SHELF.reference(profile_name, config_dir(info))
            measurements: dict[str, Any] = dict(load_profile(reference).measurements)
        except ProfileError:
            return data  # reported by the field validator below
        overrides = data.get("measurements")
        if isinstance(overrides, dict):
            measurements.update(overrides)
        filled = []
        for channel in channels:
            if isinstance(channel, dict) and "unit" not in channel:
                measurement = measurements.get(str(channel.get("measurement")))
                unit = getattr(measurement, "unit", None)
                if isinstance(measurement, dict):
                    unit = measurement.get("unit")
                # An unknown measurement gets a placeholder so the error names the measurement,
                # not the missing unit.
                channel = {**channel, "unit": unit if isinstance(unit, str) else ""}
            filled.append(channel)
        data["channels"] = filled
        return data

    @field_validator("resource")
    @classmethod
    def _resource_syntax(cls, resource: str) -> str:
        if not _RESOURCE.match(resource) or "::" not in resource:
            raise ValueError(
                f"{resource!r} is not a VISA resource name (TCPIP::…, GPIB0::…, USB0::…, ASRL…)"
            )
        return resource

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, profile: str, info: ValidationInfo) -> str:
        # A file's path is kept absolute: a config copied from this one loads it from anywhere.
        return SHELF.checked_reference(profile, config_dir(info))

    @model_validator(mode="after")
    def _consistent(self) -> VisaInstrument:
        profile = self.resolved_profile()
        for channel in self.channels:
            measurement = profile.measurements.get(channel.measurement)
            if measurement is None:
                raise ValueError(
                    f"channel {channel.name!r}: profile {profile.name!r} has no measurement "
                    f"{channel.measurement!r} (it has {', '.join(sorted(profile.measurements))})"
                )
            if measurement.parse == "values" and channel.index is None:
                raise ValueError(f"channel {channel.name!r}: measurement gives values, set index")
            if measurement.parse != "values" and channel.index is not None:
                raise ValueError(f"channel {channel.name!r}: index is only for parse: values")
        if self.visa_timeout_s is not None and self.visa_timeout_s > self.timeout_s:
            raise ValueError("visa_timeout_s may not exceed timeout_s")
        # pyvisa sleeps the delay in every query whatever its timeout says: a read could never
        # end within timeout_s, and the worker thread would overrun every deadline.
        if self.query_delay_s >= self.timeout_s:
            raise ValueError("query_delay_s must be shorter than timeout_s")
        if self.serial is not None and not self.resource.upper().startswith("ASRL"):
            raise ValueError("serial settings are for ASRL resources only")
        targets = self.write_targets()  # raises ValueError naming the target at fault
        check_safe_state(
            self.name, targets, [s for s in self.resolved_safe_state() if isinstance(s, SafeValue)]
        )
        for step in self.resolved_safe_state():
            if isinstance(step, str) and (not step.strip() or any(ord(c) < 32 for c in step)):
                raise ValueError(f"safe_state: {step!r} is not one command")
        return self

    def write_targets(self) -> dict[str, WriteTarget]:
        """The writable targets: each a profile set-point narrowed to this bench's limits."""
        setpoints = self.resolved_profile().setpoints
        targets: dict[str, WriteTarget] = {}
        for limits in self.targets:
            setpoint = setpoints.get(limits.name)
            if setpoint is None:
                offered = ", ".join(sorted(setpoints)) or "none"
                raise ValueError(
                    f"target {limits.name!r}: the profile has no such set-point (it has {offered})"
                )
            if limits.name in targets:
                raise ValueError(f"target {limits.name!r} appears twice")
            if limits.unit and limits.unit != setpoint.unit:
                raise ValueError(
                    f"target {limits.name!r}: unit {limits.unit!r}, but the set-point is in "
                    f"{setpoint.unit!r}"
                )
            targets[limits.name] = make_target(
                self.name, limits, setpoint.kind, setpoint.unit, setpoint.capability(limits.name)
            )
        return targets

    def resolved_safe_state(self) -> list[SafeStep]:
        """The safe state in force: this instrument's, else the profile's commands."""
        if self.safe_state is not None:
            return list(self.safe_state)
        return list(self.resolved_profile().safe_state)

    def resolved_profile(self) -> Profile:
        """The profile with this instrument's overrides applied."""
        base = load_profile(self.profile)
        update: dict[str, Any] = {
            "measurements": base.measurements | self.measurements,
            "setpoints": base.setpoints | self.setpoints,
        }
        if self.init is not None:
            update["init"] = self.init
        if self.errors is not None:
            update["errors"] = self.errors
        return base.model_copy(update=update)

    def socket_address(self) -> tuple[str, int] | None:
        """(host, port) when the session talks asyncio to a SOCKET resource (see socket_io),
        else None: pyvisa."""
        found = _SOCKET.match(self.resource)
        if found is None or not self._own_io() or not self.read_termination:
            return None
        return _host(found.group(1)), int(found.group(2))

    def hislip_address(self) -> tuple[str, int, str] | None:
        """(host, port, sub-address) when the session talks asyncio HiSLIP to a
        ``TCPIP::host::hislipN[,port]::INSTR`` resource (see socket_io), else None: pyvisa."""
        found = HISLIP_RESOURCE.match(self.resource)
        if found is None or not self._own_io():
            return None
        port = int(found.group(3)) if found.group(3) else HISLIP_PORT
        return _host(found.group(1)), port, found.group(2).lower()

    def vxi11_address(self) -> Vxi11Address | None:
        """Where the session talks asyncio VXI-11 to a ``TCPIP::host[,port][::device]::INSTR``
        resource (see socket_io), else None: pyvisa."""
        found = VXI11_RESOURCE.match(self.resource)
        if found is None or not self._own_io():
            return None
        device = found.group(3) or "inst0"
        if device.lower().startswith("hislip"):
            return None
        core_port = int(found.group(2)) if found.group(2) else None
        return Vxi11Address(_host(found.group(1)), device, core_port, self.vxi11_portmapper_port)

    def serial_port(self) -> str | None:
        """The device path when the session talks asyncio to an ``ASRL<board>[::INSTR]``
        resource (see socket_io: on POSIX, the board a path, not a pyserial URL such as
        ``socket://``), else None: pyvisa."""
        found = ASRL_RESOURCE.match(self.resource)
        if (
            found is None
            or not self._own_io()
            or sys.platform == "win32"  # no add_reader on the proactor loop
            or "://" in found.group(1)
        ):
            return None
        return found.group(1)

    def _own_io(self) -> bool:
        """Whether etalon may talk to the resource itself (see socket_io): not told to go
        through pyvisa, and the backend pyvisa-py's (whose behaviour the links follow)."""
        return self.socket_io == "auto" and self.backend in ("auto", "@py")

    @property
    def io_timeout_s(self) -> float:
        """Timeout of one VISA operation."""
        return self.visa_timeout_s or self.timeout_s
