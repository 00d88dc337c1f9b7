"""Config models shared by every driver: the base of instruments and channels.

All models are frozen and forbid unknown keys, so a typo in a YAML file is an error that names the
field instead of a silently applied default.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue

from core.backoff import Backoff
from core.models import PLAIN_TEXT, FrozenModel, Name, repeated

_TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
RESERVED_TAGS = frozenset({"site", "agent", "instrument", "channel", "unit"})


def compiled_text(pattern: str, problem: str) -> str:
    """``pattern`` when it is a regular expression Python compiles; else a ValueError saying
    ``problem`` and why (for a config field validator)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{problem}: {exc}") from None
    return pattern


def channel_entries_schema(
    schema: JsonSchemaValue,
    handler: GetJsonSchemaHandler,
    optional: frozenset[str] | None = None,
    profile_given: bool = False,
) -> JsonSchemaValue:
    """An instrument's JSON Schema (``schema``, from ``handler``) whose ``channels`` entries
    take what the loader fills in from the instrument's profile: ``optional`` fields may be
    left out (None: every field but the name, as in an entry that adjusts a profile channel).
    With ``profile_given`` the looser entry is offered only when ``profile`` is a string; a
    channel of an instrument without a profile is the full channel. The entry keeps the
    channel's properties, so an unknown key or a bad value is refused all the same."""
    instrument = handler.resolve_ref_schema(schema)
    channels = instrument["properties"]["channels"]
    full = channels["items"]
    channel = handler.resolve_ref_schema(full)
    required = [
        name
        for name in channel.get("required", [])
        if name == "name" or (optional is not None and name not in optional)
    ]
    entry: dict[str, Any] = {**channel, "required": required}
    entry["title"] = f"{channel.get('title', 'Channel')} (with a profile)"
    if not profile_given:
        channels["items"] = entry
        return schema
    channels["items"] = {"anyOf": [full, entry]}
    instrument["if"] = {"properties": {"profile": {"type": "string"}}, "required": ["profile"]}
    instrument["else"] = {"properties": {"channels": {"items": full}}}
    return schema


class Uncertainty(FrozenModel):
    """Standard uncertainty (k=1) attached to every reading of a channel:
    u = sqrt(absolute² + (relative · |value|)²), in the channel's unit."""

    absolute: float = Field(0.0, ge=0, description="Absolute standard uncertainty, channel unit.")
    relative: float = Field(0.0, ge=0, description="Relative standard uncertainty (1e-6 = 1 ppm).")

    def of(self, value: float) -> float:
        """The standard uncertainty of one value."""
        # hypot: squaring a large value (1e300) would raise OverflowError; here it is inf at most.
        return math.hypot(self.absolute, self.relative * value)


class ChannelBase(FrozenModel):
    """What every channel has, whatever the protocol: name, unit, interval, scaling, tags."""

    name: Name
    unit: str = Field(
        ...,
        max_length=32,
        pattern=PLAIN_TEXT,
        description="Unit after scaling, e.g. 'V', '°C', '%rh'.",
    )
    interval_s: float = Field(
        1.0, gt=0, le=86_400, description="Seconds between readings; ticks align to multiples."
    )
    scale: float = Field(1.0, description="value = raw · scale + offset (numeric values only).")
    offset: float = 0.0
    uncertainty: Uncertainty | None = None
    tags: dict[str, str] = Field(
        default_factory=dict, description="Constant labels (room, standard id); low cardinality."
    )

    @field_validator("tags")
    @classmethod
    def _tags_are_plain(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if not _TAG_KEY.fullmatch(key):
                raise ValueError(f"tag key {key!r} must match {_TAG_KEY.pattern}")
            if key in RESERVED_TAGS:
                raise ValueError(
                    f"tag key {key!r} is reserved ({', '.join(sorted(RESERVED_TAGS))})"
                )
            if not value or len(value) > 128 or not re.fullmatch(PLAIN_TEXT, value):
                raise ValueError(
                    f"tag {key!r}: value must be 1-128 characters, no backslash or control "
                    "characters"
                )
        return tags


class InstrumentBase(FrozenModel):
    """What every instrument has: name, timeouts, reconnect policy, bus, channels."""

    name: Name
    timeout_s: float = Field(
        5.0, gt=0, le=3600, description="Timeout of one read (all due channels)."
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=3600)
    reconnect: Backoff = Field(default_factory=Backoff)
    bus: str | None = Field(
        None,
        description="Instruments naming the same bus (one RS-485 line, one GPIB board) are "
        "serialised behind one lock.",
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _unique_channels(self) -> InstrumentBase:
        channels = getattr(self, "channels", [])
        twice = repeated(channel.name for channel in channels)
        if twice:
            raise ValueError(f"channel name {twice[0]!r} appears twice")
        if not channels:
            raise ValueError("an instrument needs at least one channel")
        return self
