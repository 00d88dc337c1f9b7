"""Set-points: what a driver may write, the limits a bench declares, the record of each write.

The write side of the driver contract (:class:`drivers.base.SettableDriver`) is built from the
parts here, shared by every protocol:

- :class:`TargetLimits` — the config of one writable target as a bench declares it: name, unit,
  ``min``/``max`` and/or the ``allowed`` values. A numeric target must declare limits; a target
  the instrument config does not list cannot be written at all.
- :class:`WriteTarget` — the driver's description of one target (kind, unit, limits), with
  :meth:`WriteTarget.check`, which refuses a value outside the limits *before anything is
  sent* (:class:`~core.errors.LimitExceeded` names instrument, target, value and limit).
- :class:`WriteRecord` — what one write sent and what confirmed it, returned for every write
  and carried by every :class:`~core.errors.WriteError`, for the audit a runner keeps.
- :func:`run_steps` — the loop every driver runs writes and safe states through: a timeout per
  step, library failures turned into :class:`~core.errors.WriteInterrupted`, a record for
  every step, and, for a safe state, every step tried even after one failed;
  :func:`run_safe_state` connects first when needed and runs a safe state through it.

The records, :func:`run_steps` and :func:`run_safe_state` live in :mod:`drivers.write_steps`
and are re-exported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from core.clock import Clock
from core.errors import (
    LimitExceeded,
    WriteRefused,
)
from core.models import PLAIN_TEXT, FrozenModel, Name, plain_fields
from drivers.config import InstrumentBase
from drivers.write_steps import (
    SetValue,
    Step,
    WriteRecord,
    WriteTrace,
    records_of,
    run_safe_state,
    run_steps,
)

__all__ = [
    "CHOICE_WORD",
    "DeclaredTargets",
    "SafeValue",
    "SetValue",
    "Step",
    "TargetKind",
    "TargetLimits",
    "TypedTarget",
    "WriteRecord",
    "WriteTarget",
    "WriteTrace",
    "check_safe_state",
    "check_setpoints",
    "declared_targets",
    "integer_bounds",
    "limits_problem",
    "make_target",
    "number_text",
    "records_of",
    "run_safe_state",
    "run_steps",
    "value_text",
    "write_setpoints",
]

TargetKind = Literal["number", "integer", "bool", "choice"]
"""number: any finite number within the limits. integer: a whole number within the limits.
bool: on/off. choice: one of the ``allowed`` words (a function, a mode)."""

CHOICE_WORD = r"^[A-Za-z0-9_.:+\-]{1,64}$"
"""A choice is one token: no spaces, quotes, ';' or line ends that could smuggle a second
command into an instrument's message."""


def integer_bounds(bits: int, *, signed: bool) -> tuple[int, int]:
    """The smallest and largest value of a signed (two's complement) or unsigned integer of
    ``bits`` bits: what a target of that type can hold."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def number_text(value: float) -> str:
    """A number as people read it in a message (12 significant digits, no trailing zeros)."""
    return f"{value:.12g}"


def value_text(value: object, unit: str = "") -> str:
    """A set-point value with its unit, for messages and records."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        text = number_text(value)
    elif isinstance(value, int | str):
        text = str(value)
    else:
        text = repr(value)
    return f"{text} {unit}" if unit and not isinstance(value, str) else text


class TargetLimits(FrozenModel):
    """One writable target of an instrument and the limits this bench allows it.

    A number needs ``min`` and ``max`` (or an ``allowed`` list); a write outside them is refused
    before anything is sent."""

    name: Name = Field(..., description="The target's name, used by procedures and records.")
    unit: str = Field("", max_length=32, pattern=PLAIN_TEXT, description="Unit of the value.")
    min: float | None = Field(None, description="Smallest value this bench may set (inclusive).")
    max: float | None = Field(None, description="Largest value this bench may set (inclusive).")
    allowed: list[float] | list[str] | None = Field(
        None,
        min_length=1,
        description="The only values that may be set: numbers (ranges) or words (functions).",
    )
    description: str = Field("", max_length=200, pattern=PLAIN_TEXT)

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("a limit must be a finite number")
        return value

    @field_validator("allowed")
    @classmethod
    def _plain_allowed(cls, allowed: list[float] | list[str] | None) -> list[float] | list[str]:
        if allowed is None:
            return allowed  # type: ignore[return-value]
        for item in allowed:
            if isinstance(item, str):
                if not re.match(CHOICE_WORD, item):
                    raise ValueError(
                        f"allowed word {item!r} must be one token of letters, digits, "
                        "'_', '.', ':', '+', '-'"
                    )
            elif not math.isfinite(item):
                raise ValueError("allowed numbers must be finite")
        if len({str(item).upper() for item in allowed}) != len(allowed):
            raise ValueError("allowed values repeat")
        return allowed

    @model_validator(mode="after")
    def _ordered(self) -> TargetLimits:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class TypedTarget(TargetLimits):
    """A target whose config says its own kind (a Modbus register's type, an OPC UA node's
    data type), so that the targets of an instrument are declared from the config alone."""

    @property
    def kind(self) -> TargetKind:
        """What values the target takes."""
        raise NotImplementedError


class SafeValue(FrozenModel):
    """One step of a safe state: set a target to a value (checked against its limits)."""

    target: Name
    value: bool | float | str = Field(..., description="The value, e.g. false for an output.")


def limits_problem(kind: TargetKind, limits: TargetLimits) -> str | None:
    """Why a target's declared limits do not fit its kind, or None."""
    numeric = kind in ("number", "integer")
    words = limits.allowed is not None and any(isinstance(a, str) for a in limits.allowed)
    if kind == "bool" and (limits.min is not None or limits.max is not None or limits.allowed):
        return "an on/off target takes no min, max or allowed"
    if kind == "choice" and (limits.min is not None or limits.max is not None):
        return "a choice takes allowed words, not min/max"
    if kind == "choice" and limits.allowed is not None and not words:
        return "a choice's allowed values are words"
    if numeric and words:
        return f"a {kind} target's allowed values are numbers"
    if numeric and limits.allowed is None and (limits.min is None or limits.max is None):
        return (
            f"a {kind} target needs both min and max (or an allowed list): this bench's limits, "
            "so that a typo can never ask the instrument for more"
        )
    if kind == "integer" and any(float(a) != int(float(a)) for a in limits.allowed or []):
        return "an integer target's allowed values are whole numbers"
    return None


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """What a driver can write: one target, its kind, unit and limits."""

    instrument: str
    name: str
    kind: TargetKind
    unit: str = ""
    min: float | None = None
    max: float | None = None
    allowed: tuple[float, ...] | tuple[str, ...] | None = None
    description: str = ""

    def limits_text(self) -> str:
        """The limits in words: ``-20 V … 20 V``, ``one of 0.1, 1, 10 V``, ``on or off``."""
        if self.kind == "bool":
            return "on or off"
        unit = f" {self.unit}" if self.unit else ""
        parts = []
        if self.min is not None or self.max is not None:
            low = number_text(self.min) if self.min is not None else "-∞"
            high = number_text(self.max) if self.max is not None else "∞"
            parts.append(f"{low}{unit} … {high}{unit}")
        if self.allowed is not None:
            shown = ", ".join(
                number_text(a) if isinstance(a, float) else str(a) for a in self.allowed
            )
            parts.append(f"one of {shown}{unit if self.kind != 'choice' else ''}")
        return ", ".join(parts)

    def _refuse(self, value: object, limit: str, code: str, why: str) -> WriteRefused:
        kind = LimitExceeded if code in ("below_min", "above_max", "not_allowed") else WriteRefused
        return kind(
            self.instrument,
            self.name,
            value,
            limit,
            code,
            f"{value_text(value, self.unit)} refused: {why}; nothing was sent",
        )

    def check(self, value: object) -> SetValue:
        """The value as it will be written, or WriteRefused/LimitExceeded — raised before
        anything is sent."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self._refuse(value, "on or off", "wrong_type", "the target is on/off")
            return value
        if self.kind == "choice":
            assert self.allowed is not None
            if not isinstance(value, str):
                raise self._refuse(value, self.limits_text(), "wrong_type", "the target is a word")
            for word in self.allowed:
                if isinstance(word, str) and word.upper() == value.strip().upper():
                    return word
            raise self._refuse(
                value, self.limits_text(), "not_allowed", f"not {self.limits_text()}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refuse(value, self.limits_text(), "wrong_type", "the target is a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self._refuse(value, self.limits_text(), "not_finite", "not a finite number")
        if self.kind == "integer" and isinstance(value, float) and not value.is_integer():
            raise self._refuse(value, self.limits_text(), "not_integer", "not a whole number")
        number: float | int = int(value) if self.kind == "integer" else float(value)
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and number < self.min:
            limit = f"min {number_text(self.min)}{unit}"
            raise self._refuse(
                value,
                limit,
                "below_min",
                f"below the limit of {number_text(self.min)}{unit} (limits {self.limits_text()})",
            )
        if self.max is not None and number > self.max:
            limit = f"max {number_text(self.max)}{unit}"
            raise self._refuse(
                value,
                limit,
                "above_max",
                f"above the limit of {number_text(self.max)}{unit} (limits {self.limits_text()})",
            )
        if self.allowed is not None:
            for allowed in self.allowed:
                assert not isinstance(allowed, str)
                if math.isclose(number, allowed, rel_tol=1e-9, abs_tol=1e-15):
                    return int(allowed) if self.kind == "integer" else float(allowed)
            raise self._refuse(
                value, self.limits_text(), "not_allowed", f"not {self.limits_text()}"
            )
        return number

    def as_dict(self) -> dict[str, Any]:
        """The description as plain data (status messages, records, the API)."""
        return plain_fields(self, exclude=["instrument"])

    def step(self, value: SetValue, apply: Callable[[WriteTrace], Awaitable[None]]) -> Step:
        """The step that sets this target to ``value`` (checked already) by ``apply``: labelled
        ``name = value unit`` and recorded with the target, the value and its unit."""
        return Step(
            f"{self.name} = {value_text(value, self.unit)}", apply, self.name, value, self.unit
        )


def make_target(
    instrument: str,
    limits: TargetLimits,
    kind: TargetKind,
    unit: str | None = None,
    capability: TargetLimits | None = None,
) -> WriteTarget:
    """The target a config declares, narrowed to what the instrument itself can do
    (``capability``: e.g. a profile's ±1020 V). Raises ValueError when they conflict."""
    problem = limits_problem(kind, limits)
    if problem:
        raise ValueError(f"target {limits.name!r}: {problem}")
    low, high = limits.min, limits.max
    allowed: list[float] | list[str] | None = limits.allowed
    if capability is not None:
        unit_text = f" {capability.unit}" if capability.unit else ""
        bounds = [(low, "min"), (high, "max")]
        bounds += [(a, "allowed value") for a in allowed or [] if not isinstance(a, str)]
        for bound, name in bounds:
            if bound is None:
                continue
            if capability.min is not None and bound < capability.min:
                raise ValueError(
                    f"target {limits.name!r}: {name} {bound:g}{unit_text} is beyond what the "
                    f"instrument can set ({capability.min:g}{unit_text})"
                )
            if capability.max is not None and bound > capability.max:
                raise ValueError(
                    f"target {limits.name!r}: {name} {bound:g}{unit_text} is beyond what the "
                    f"instrument can set ({capability.max:g}{unit_text})"
                )
        if capability.allowed is not None:
            offered = capability.allowed
            if allowed is not None:
                unknown = [a for a in allowed if not _among(a, offered)]
                if unknown:
                    raise ValueError(
                        f"target {limits.name!r}: the instrument offers no "
                        f"{', '.join(str(u) for u in unknown)} (it offers "
                        f"{', '.join(str(o) for o in offered)})"
                    )
            else:
                allowed = offered
        if (
            kind != "choice"
            and allowed is not None
            and all(not isinstance(a, str) for a in allowed)
        ):
            numbers = [float(a) for a in allowed]
            allowed = [
                a for a in numbers if (low is None or a >= low) and (high is None or a <= high)
            ]
            if not allowed:
                raise ValueError(f"target {limits.name!r}: no allowed value lies within min/max")
    if kind == "choice" and allowed is None:
        raise ValueError(f"target {limits.name!r}: a choice needs its allowed words")
    return WriteTarget(
        instrument=instrument,
        name=limits.name,
        kind=kind,
        unit=unit if unit is not None else limits.unit,
        min=low,
        max=high,
        allowed=tuple(allowed) if allowed is not None else None,  # type: ignore[arg-type]
        description=limits.description,
    )


def declared_targets(
    instrument: str, declared: Iterable[tuple[TargetLimits, TargetKind]]
) -> dict[str, WriteTarget]:
    """The targets a config declares (each with its kind), by name; raises ValueError for a bad
    one or a name given twice."""
    targets: dict[str, WriteTarget] = {}
    for limits, kind in declared:
        if limits.name in targets:
            raise ValueError(f"target {limits.name!r} appears twice")
        targets[limits.name] = make_target(instrument, limits, kind)
    return targets


def _among(value: float | str, offered: Sequence[float] | Sequence[str]) -> bool:
    for item in offered:
        if isinstance(value, str) or isinstance(item, str):
            if str(value).upper() == str(item).upper():
                return True
        elif math.isclose(value, item, rel_tol=1e-9, abs_tol=1e-15):
            return True
    return False


def check_safe_state(
    instrument: str, targets: Mapping[str, WriteTarget], steps: Sequence[SafeValue]
) -> None:
    """A safe state names known targets and values they accept; raises ValueError."""
    for index, step in enumerate(steps):
        target = targets.get(step.target)
        if target is None:
            raise ValueError(
                f"safe_state[{index}]: no target {step.target!r} "
                f"(targets: {', '.join(sorted(targets)) or 'none'})"
            )
        try:
            target.check(step.value)
        except WriteRefused as exc:
            raise ValueError(f"safe_state[{index}]: {exc.reason}") from None


def check_setpoints(
    instrument: str, targets: Mapping[str, WriteTarget], setpoints: Mapping[str, object]
) -> list[tuple[WriteTarget, SetValue]]:
    """Every set-point checked against its target, in order — all of them before the first is
    sent. Raises WriteRefused (unknown target, wrong type) or LimitExceeded."""
    checked: list[tuple[WriteTarget, SetValue]] = []
    for name, value in setpoints.items():
        target = targets.get(name)
        if target is None:
            known = ", ".join(sorted(targets)) or "none"
            raise WriteRefused(
                instrument,
                name,
                value,
                f"targets: {known}",
                "unknown_target",
                f"no writable target {name!r} (this instrument's targets: {known}); "
                "nothing was sent",
            )
        checked.append((target, target.check(value)))
    return checked


TypedTargetT = TypeVar("TypedTargetT", bound=TypedTarget)


class DeclaredTargets(Generic[TypedTargetT]):
    """The write side of an instrument config whose ``targets`` are :class:`TypedTarget` and
    whose ``safe_state`` is a list of :class:`SafeValue` (Modbus, OPC UA)."""

    if TYPE_CHECKING:
        name: str
        targets: list[TypedTargetT]
        safe_state: list[SafeValue]

    def write_targets(self) -> dict[str, WriteTarget]:
        """The writable targets with their limits; raises ValueError for a bad one."""
        return declared_targets(self.name, [(t, t.kind) for t in self.targets])

    def target_named(self, name: str) -> TypedTargetT:
        """A target's config by name."""
        return next(t for t in self.targets if t.name == name)

    def check_safe_state(self) -> None:
        """The safe state names declared targets and values they accept; raises ValueError."""
        check_safe_state(self.name, self.write_targets(), self.safe_state)


async def write_setpoints(
    config: InstrumentBase,
    targets: Mapping[str, WriteTarget],
    setpoints: Mapping[str, object],
    step: Callable[[WriteTarget, SetValue], Step],
    *,
    clock: Clock,
) -> list[WriteRecord]:
    """A driver's ``write()``: every set-point checked (:func:`check_setpoints`) and its step
    made by ``step`` (which may refuse it too) before the first is sent, then the steps run in
    order, each within the instrument's ``timeout_s`` (:func:`run_steps`)."""
    steps = [
        step(target, value) for target, value in check_setpoints(config.name, targets, setpoints)
    ]
    return await run_steps(config.name, steps, timeout_s=config.timeout_s, clock=clock)
