"""Modbus device profiles: a kind of device's register map and how to talk to it, as data.

A profile is a YAML file (the shipped ones live in ``drivers/modbus/profiles/``; an instrument
config names one of them or the path of its own, relative to the config file): the channels
(table, address, type, byte/word order, scale, offset, unit, default interval), the device's
byte/word order, the read functions it implements, its request limits and timeouts, and how it
identifies itself (FC 43 objects, registers holding its serial number or model). Loading is
shared with the VISA profiles (:mod:`drivers.profiles`).

How an instrument config and its profile combine (``docs/modbus.md`` says the same for users):

1. Device settings (``device_id``, ``order``, ``function_codes``, the ``max_*`` limits,
   ``timeout_s``, ``connect_timeout_s``, ``request_timeout_s``, ``identify``,
   ``identity_serial_object``): a value the instrument gives replaces the profile's; one it
   does not give is the profile's.
   ``identity_registers`` are the profile's plus the instrument's (same key: the instrument's).
2. The channels read are the profile's, in its order, or only those named in ``only``, minus
   those named in ``disable`` (``only`` and ``disable`` together are refused).
3. An entry of the instrument's ``channels`` named like a profile channel adjusts it: it may
   change ``interval_s``, ``uncertainty``, ``scale``, ``offset``, ``unit`` and ``order``, and
   add ``tags`` (same key: the entry's). It may repeat the profile's other fields but not
   change them — a channel of the profile reading another register (``table``, ``address``,
   ``type``, ``bit``, ``length``, ``encoding``) is another channel: give it another name.
   Adjusting a channel that ``only``/``disable`` left out, or the same channel twice, is
   refused.
4. Every other entry is a channel of its own, read after the profile's.

The rules make a resolved config a fixed point: its dump (profile, selection and the full
channel list) validates to the same instrument, which is how simulators and tools re-point a
config at another endpoint.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from pydantic import Field, ValidationError, model_validator

from core.config_loader import reason
from core.models import repeated
from drivers.modbus.registers import DeviceSettings, ModbusChannel
from drivers.profiles import PROFILE_NAME, ProfileShelf
from drivers.profiles import ProfileError as ProfileError  # re-exported for callers

SHIPPED_PROFILES = resources.files("drivers.modbus") / "profiles"

INHERITED = (
    "device_id",
    "order",
    "function_codes",
    "request_timeout_s",
    "max_registers_per_request",
    "max_bits_per_request",
    "max_gap_registers",
    "max_gap_bits",
    "identify",
    "identity_serial_object",
    "timeout_s",
    "connect_timeout_s",
)
"""Instrument fields that default to the profile's value (rule 1)."""

ADJUSTABLE = frozenset({"interval_s", "uncertainty", "tags", "scale", "offset", "unit", "order"})
"""What an instrument may change on a channel its profile defines (rule 3): when and with what
uncertainty it is read, and how this device's value is decoded into engineering units (its
ranging, its word order) — not which register it is."""


class ModbusProfile(DeviceSettings):
    """One kind of Modbus device: its register map and how to talk to it."""

    name: str = Field(..., pattern=PROFILE_NAME)
    description: str = ""
    device_id: int | None = Field(
        None,
        ge=0,
        le=255,
        description="The device's factory-default id, used when an instrument gives none.",
    )
    timeout_s: float | None = Field(None, gt=0, le=3600, description="Of one read.")
    connect_timeout_s: float | None = Field(None, gt=0, le=3600)
    channels: list[ModbusChannel] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _readable(self) -> ModbusProfile:
        problems = [
            f"channel name {name!r} appears twice"
            for name in repeated(channel.name for channel in self.channels)
        ]
        problems += self.device_problems(self.channels)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def channel_names(self) -> list[str]:
        """The names of the profile's channels, in its order."""
        return [channel.name for channel in self.channels]


SHELF = ProfileShelf("Modbus", ModbusProfile, SHIPPED_PROFILES)
"""The shipped Modbus profiles and those loaded from files."""


def shipped_profiles() -> list[str]:
    """Names of the Modbus profiles shipped with etalon."""
    return SHELF.shipped()


def load_profile(name_or_path: str) -> ModbusProfile:
    """A shipped profile by name, or a profile file by path; raises ProfileError."""
    return SHELF.load(name_or_path)


def with_profile_settings(profile: ModbusProfile, data: dict[str, Any]) -> dict[str, Any]:
    """The instrument's raw fields with the device settings it does not give taken from the
    profile (rule 1)."""
    out = dict(data)
    for key in INHERITED:
        value = getattr(profile, key)
        if key not in out and value is not None:
            out[key] = value
    own = out.get("identity_registers")
    if own is None:
        out["identity_registers"] = dict(profile.identity_registers)
    elif isinstance(own, dict):
        out["identity_registers"] = {**profile.identity_registers, **own}
    return out


def _problems(prefix: str, exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        out.append(f"{prefix}{where}: {reason(error)}")
    return out


def _adjusted(base: ModbusChannel, entry: dict[str, Any], where: str) -> ModbusChannel:
    """A profile channel with an instrument's adjustments (rule 3); raises ValueError."""
    tags = entry.get("tags")
    merged = {**base.model_dump(), **entry}
    if isinstance(tags, dict):
        merged["tags"] = {**base.tags, **tags}
    try:
        channel = ModbusChannel.model_validate(merged)
    except ValidationError as exc:
        raise ValueError("; ".join(_problems(where, exc))) from None
    changed = [
        key
        for key in sorted(set(entry) - ADJUSTABLE - {"name"})
        if getattr(channel, key) != getattr(base, key)
        and not (key == "type" and channel.value_type == base.value_type)
    ]
    if changed:
        differences = ", ".join(
            f"{key} {getattr(channel, key)!r} (profile: {getattr(base, key)!r})" for key in changed
        )
        raise ValueError(
            f"{where}: {differences}: a channel named like one of the profile may change only "
            f"{', '.join(sorted(ADJUSTABLE))}; to read another register give it another name"
        )
    return channel


def merge_channels(
    profile: ModbusProfile,
    entries: list[Any],
    only: list[str] | None,
    disable: list[str],
) -> list[ModbusChannel]:
    """The channels an instrument reads (rules 2-4); raises ValueError naming every entry at
    fault by its position in the instrument's ``channels``."""
    defined = {channel.name: channel for channel in profile.channels}
    chosen = [
        name
        for name in profile.channel_names()
        if (only is None or name in only) and name not in disable
    ]
    adjusted: dict[str, ModbusChannel] = {}
    extras: list[ModbusChannel] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        where = f"[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in defined:
            where = f"[{index}] {name!r}"
            assert isinstance(entry, dict)
            if name not in chosen:
                left_out = "disable" if name in disable else "only"
                problems.append(
                    f"{where}: the profile's channel is left out by {left_out}; adjust it or "
                    "leave it out, not both"
                )
                continue
            if name in adjusted:
                problems.append(f"{where}: the profile's channel is adjusted twice")
                continue
            try:
                adjusted[name] = _adjusted(defined[name], entry, where)
            except ValueError as exc:
                problems.append(str(exc))
            continue
        try:
            extras.append(ModbusChannel.model_validate(entry))
        except ValidationError as exc:
            problems += _problems(where, exc)
    if problems:
        raise ValueError("; ".join(problems))
    return [adjusted.get(name, defined[name]) for name in chosen] + extras
