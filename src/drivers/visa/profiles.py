"""Instrument profiles: what to send a SCPI instrument and how to read its answers, as data.

A profile is a YAML file (the shipped ones live in ``drivers/visa/profiles/``; an instrument
config names one of them or a path to its own): the identification query, the init sequence, the
error-queue query and when to drain it, and the measurements a channel can take — each a query,
optional setup commands, how to parse the reply and the raw unit. An instrument that takes
set-points (a calibrator) also lists them: the command that sets each (``SOUR:VOLT {value}``),
the query that reads it back, what the instrument itself can set, and the commands of its safe
state (``OUTP OFF``). Writing one needs no Python; see ``docs/visa.md``. Loading is shared with
the other protocols' profiles (:mod:`drivers.profiles`).
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.models import PLAIN_TEXT, FrozenModel
from drivers.config import compiled_text
from drivers.profiles import ProfileError as ProfileError  # re-exported for callers
from drivers.profiles import ProfileShelf
from drivers.setpoints import CHOICE_WORD, SetValue, TargetKind, TargetLimits, number_text

SHIPPED_PROFILES = resources.files("drivers.visa") / "profiles"

ParseKind = Literal["number", "number_with_unit", "values", "mean"]


class Measurement(FrozenModel):
    """One thing a channel can read: a query and how to turn its reply into a value."""

    query: str = Field(..., min_length=1, description="The SCPI query, e.g. 'READ?'.")
    setup: list[str] = Field(
        default_factory=list,
        description="Commands sent before the query when the previous query of this session was "
        "another measurement (switching function or range).",
    )
    parse: ParseKind = Field(
        "number",
        description="number: one number. number_with_unit: a number and a unit token "
        "('23.0012 C'), the token checked against reply_unit. values: comma-separated numbers, "
        "the channel picks one by index. mean: comma-separated numbers averaged, with the "
        "standard uncertainty of the mean (s/√n) attached.",
    )
    unit: str = Field(..., max_length=32, description="Unit of the raw value, e.g. 'V', '°C'.")
    reply_unit: str | None = Field(
        None, description="number_with_unit: the unit token the instrument must send ('C', 'OHM')."
    )
    overload_at: float | None = Field(
        9.9e37,
        description="A reply of this magnitude means overload (SCPI instruments send 9.9E37).",
    )

    @model_validator(mode="after")
    def _unit_token(self) -> Measurement:
        if self.parse == "number_with_unit" and not self.reply_unit:
            raise ValueError("parse: number_with_unit needs reply_unit")
        if self.parse != "number_with_unit" and self.reply_unit:
            raise ValueError("reply_unit is only used with parse: number_with_unit")
        return self


ErrorCheck = Literal["after_each_query", "after_each_read", "periodic", "never"]


class ErrorPolicy(FrozenModel):
    """How the error queue is read, and whose readings its entries mark."""

    query: str = Field("SYST:ERR?", description="Returns the oldest entry and removes it.")
    no_error: str = Field(
        r"^\s*[+]?0+\s*(,|$)",
        description="Regular expression matching the reply that means 'queue empty'.",
    )
    entry: str | None = Field(
        r'^[^,"]*,\s*"',
        description="Regular expression every error-queue entry matches (by default SCPI's "
        '<code>,"text", the code as it comes, garbled or not). A reply matching neither this '
        "nor no_error answers another query: the session's replies are out of step (a line "
        "nobody asked for, a reply doubled on its way), so the read fails and the session "
        "re-opens. null: any reply is an entry (an instrument whose entries are no SCPI ones).",
    )
    check: ErrorCheck = Field(
        "after_each_read",
        description="after_each_query: errors mark the channels of the query just sent. "
        "after_each_read: errors mark every reading of the tick. periodic: every interval_s, "
        "marking the readings of that tick. never: only after connect.",
    )
    interval_s: float = Field(60.0, gt=0, description="periodic: seconds between drains.")
    max_entries: int = Field(
        32,
        ge=1,
        le=1000,
        description="Most entries read in one drain (a queue that never "
        "empties means the error query itself is not understood).",
    )

    @field_validator("no_error", "entry")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        return None if pattern is None else compiled_text(pattern, "not a regular expression")


_COMMAND = r"^[^\x00-\x1f\x7f]+$"
"""One program message: no line ends or control characters (a second message cannot hide in
it)."""


class Setpoint(FrozenModel):
    """One thing the instrument can be set to: the command, how to read it back, and what the
    instrument itself can take (a bench narrows that with the instrument's ``targets``)."""

    command: str = Field(
        ...,
        pattern=_COMMAND,
        description="The command, with {value} where the value goes: 'SOUR:VOLT {value}'.",
    )
    query: str | None = Field(
        None, pattern=_COMMAND, description="Reads the set value back, e.g. 'SOUR:VOLT?'."
    )
    kind: TargetKind = Field(
        "number", description="number, integer, bool (on/off) or choice (one of allowed words)."
    )
    unit: str = Field("", max_length=32, pattern=PLAIN_TEXT)
    min: float | None = Field(None, description="The instrument's own lowest settable value.")
    max: float | None = Field(None, description="The instrument's own highest settable value.")
    allowed: list[float] | list[str] | None = Field(
        None, min_length=1, description="The only values the instrument takes (ranges, words)."
    )
    on: str = Field("ON", pattern=CHOICE_WORD, description="bool: the word for on.")
    off: str = Field("OFF", pattern=CHOICE_WORD, description="bool: the word for off.")
    read_back_relative: float = Field(
        1e-6, ge=0, description="A number read back may differ by this fraction of the value."
    )
    read_back_absolute: float = Field(0.0, ge=0, description="… or by this much, in the unit.")

    @field_validator("command")
    @classmethod
    def _one_value(cls, command: str) -> str:
        if command.count("{value}") != 1:
            raise ValueError("the command must contain {value} exactly once")
        return command

    def capability(self, name: str) -> TargetLimits:
        """What the instrument can take, as limits."""
        return TargetLimits(
            name=name, unit=self.unit, min=self.min, max=self.max, allowed=self.allowed
        )

    @model_validator(mode="after")
    def _fits_kind(self) -> Setpoint:
        if self.kind == "bool" and (self.min is not None or self.max is not None or self.allowed):
            raise ValueError("a bool set-point takes no min, max or allowed")
        words = self.allowed is not None and all(isinstance(a, str) for a in self.allowed)
        if self.kind == "choice" and not words:
            raise ValueError("a choice set-point needs its allowed words")
        if self.kind != "choice" and self.allowed is not None and words:
            raise ValueError(f"a {self.kind} set-point's allowed values are numbers")
        self.capability("check")  # min ≤ max, allowed words are single tokens
        return self

    def render(self, value: SetValue) -> str:
        """The command that sets ``value`` (already checked against the target's limits)."""
        if isinstance(value, bool):
            text = self.on if value else self.off
        elif isinstance(value, str):
            text = value
        elif self.kind == "integer":
            text = str(int(value))
        else:
            text = f"{float(value):.15G}"
        return self.command.replace("{value}", text)

    def parse_read_back(self, reply: str) -> SetValue | None:
        """The value a read-back reply states, or None when it states none."""
        text = reply.strip().strip('"').strip("'").strip()
        if self.kind == "bool":
            word = text.upper()
            if word in ("1", self.on.upper()):
                return True
            if word in ("0", self.off.upper()):
                return False
            return None
        if self.kind == "choice":
            return text
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None

    def matches(self, asked: SetValue, read_back: SetValue) -> bool:
        """Whether a read-back confirms the value asked."""
        if isinstance(asked, bool) or isinstance(read_back, bool):
            return asked == read_back
        if isinstance(asked, str) or isinstance(read_back, str):
            return str(asked).upper() == str(read_back).upper()
        tolerance = max(self.read_back_absolute, self.read_back_relative * abs(float(asked)))
        return abs(float(read_back) - float(asked)) <= tolerance

    def shown(self, value: SetValue) -> str:
        """A value as messages show it."""
        if isinstance(value, float):
            return number_text(value)
        return str(value)


class Profile(FrozenModel):
    """Everything the driver needs to know about one kind of instrument."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    description: str = ""
    identify: str | None = Field("*IDN?", description="Identification query; None if absent.")
    init: list[str] = Field(default_factory=list, description="Sent once after each connect.")
    errors: ErrorPolicy | None = Field(
        default_factory=ErrorPolicy, description="None: the instrument has no error queue."
    )
    measurements: dict[str, Measurement] = Field(..., min_length=1)
    setpoints: dict[str, Setpoint] = Field(
        default_factory=dict, description="What the instrument can be set to (sources)."
    )
    safe_state: list[str] = Field(
        default_factory=list,
        description="Commands that put the instrument in a safe state ('OUTP OFF'), each "
        "followed by the error-queue check.",
    )
    write_sync: Literal["none", "opc"] = Field(
        "none",
        description="opc: wait for '*OPC?' after each set-point command before reading the "
        "error queue (instruments that execute commands in the background).",
    )

    @field_validator("safe_state")
    @classmethod
    def _plain_commands(cls, commands: list[str]) -> list[str]:
        for command in commands:
            if not re.match(_COMMAND, command):
                raise ValueError(f"{command!r}: one command per entry, no control characters")
        return commands


SHELF = ProfileShelf("VISA", Profile, SHIPPED_PROFILES)
"""The shipped VISA profiles and those loaded from files (see :mod:`drivers.profiles`)."""


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped with etalon."""
    return SHELF.shipped()


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file by path; raises ProfileError."""
    return SHELF.load(name_or_path)


# -- parsing replies -------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER_WITH_UNIT = re.compile(rf"^\s*({_NUMBER})\s*[, ]\s*([^\s,\d+\-.][^\s,]*)\s*$")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed reply: the value or why there is none, and an uncertainty where known."""

    value: float | None
    problem: str | None = None
    u: float | None = None


def _finite(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _overloaded(value: float, measurement: Measurement) -> bool:
    limit = measurement.overload_at
    return limit is not None and abs(value) >= 0.99 * limit


def _shown(reply: str) -> str:
    return repr(reply if len(reply) <= 80 else reply[:77] + "...")


def parse_reply(reply: str, measurement: Measurement, index: int | None = None) -> Parsed:
    """Turn a reply into a value as the measurement says; never raises."""
    kind = measurement.parse
    try:
        if kind == "number":
            value = _finite(reply)
            u = None
        elif kind == "number_with_unit":
            match = NUMBER_WITH_UNIT.match(reply)
            if match is None:
                return Parsed(None, f"unparseable reply {_shown(reply)}")
            token = match.group(2)
            expected = measurement.reply_unit or ""
            if token.upper() != expected.upper():
                return Parsed(None, f"reply in unit {token!r}, expected {expected!r}")
            value = _finite(match.group(1))
            u = None
        else:
            values = [_finite(part) for part in reply.split(",")]
            if kind == "values":
                position = index or 0
                if position >= len(values):
                    return Parsed(
                        None, f"reply has {len(values)} values, channel reads index {position}"
                    )
                value, u = values[position], None
            else:
                if any(_overloaded(v, measurement) for v in values):
                    return Parsed(None, f"overload (reply {_shown(reply)})")
                value = statistics.fmean(values)
                u = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    except (ValueError, OverflowError):  # finite values whose sum or spread is not
        return Parsed(None, f"unparseable reply {_shown(reply)}")
    if _overloaded(value, measurement):
        return Parsed(None, f"overload (reply {_shown(reply)})")
    return Parsed(value, None, u)
