"""A calibration procedure: one YAML file a metrologist writes (``format: etalon.procedure/1``).

It names the unit under test (an instrument and channel of an agent config, its resolution and
its specification), the source (an instrument whose declared targets take the set-points), the
reference (a reference meter with its certificate — inline or a DCC file — or a standard of the
gateway's registry), the points, the settling criterion, the number of readings, the environment
channels and the temperature coefficient, and the decision rule. See ``docs/calibration.md``.

:func:`load_procedure` validates the file by itself (pydantic, frozen, unknown keys refused);
:func:`calibration.agent_checks.check_against_agent` checks it against the agent config it names:
every instrument and channel exists, every set-point lies within the limits the instrument config
declares for that target (``WriteTarget.check``, before anything could be sent), every source
declares a safe state. Problems are ``FILE:LINE: field: reason``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from core.config_loader import load_yaml, validation_problems
from core.errors import ConfigError
from core.models import PLAIN_TEXT, FrozenModel, Name
from core.mqtt import MqttConfig
from drivers.setpoints import SetValue
from metrology.certificate.record import Party
from metrology.conformity import DecisionRule
from metrology.specification import Specification, parse_specification
from metrology.uncertainty import DEFAULT_COVERAGE_PROBABILITY

FORMAT = "etalon.procedure/1"
MAX_PROCEDURE_BYTES = 256 * 1024

Text = Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)]


def _finite_fields(*fields: str, what: str = "the value") -> Any:
    """A field validator refusing NaN and infinities in ``fields`` (None passes), the message
    naming the value as ``what``; assign it in the model's body."""

    def check(cls: type[FrozenModel], value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number")
        return value

    return field_validator(*fields)(check)


class ChannelRef(FrozenModel):
    """A channel of the agent config: ``{instrument, channel}``."""

    instrument: Name
    channel: Name


class UutSpec(FrozenModel):
    """The unit under test."""

    instrument: Name = Field(..., description="An instrument of the agent config.")
    channel: Name = Field(..., description="The channel of that instrument that is calibrated.")
    description: Text = Field("Unit under test", description="What it is, for the certificate.")
    unit: str = Field(..., max_length=32, pattern=PLAIN_TEXT, description="Unit of the channel.")
    resolution: float = Field(..., gt=0, description="Digit step of its indication, in unit.")
    specification: str = Field(
        ...,
        max_length=200,
        description="Accuracy specification, e.g. '±(0.0035 % of reading + 0.0005 % of range)'.",
    )
    range_target: Name | None = Field(
        None, description="A target of the UUT written with each point's range."
    )
    setup: dict[Name, SetValue] = Field(
        default_factory=dict, description="Targets of the UUT written once at the start."
    )

    _finite_resolution = _finite_fields("resolution", what="resolution")


class SourceSpec(FrozenModel):
    """The source (calibrator): the targets it takes."""

    instrument: Name = Field(..., description="An instrument of the agent config.")
    setup: dict[Name, SetValue] = Field(
        default_factory=dict,
        description="Targets written once at the start, in order (e.g. function: VOLT:DC).",
    )
    level: Name = Field(..., description="The target that takes each point's nominal value.")
    range_target: Name | None = Field(None, description="A target written with each range.")
    output: Name | None = Field(
        None, description="An on/off target switched on once the first level is set."
    )


class CertificatePoint(FrozenModel):
    """One point of a reference meter's certificate."""

    value: float = Field(..., description="The indication the correction applies at.")
    correction: float = Field(..., description="Reference value − indication, in the unit.")
    expanded_uncertainty: float = Field(..., gt=0)
    coverage_factor: float = Field(2.0, ge=1)

    _finite_numbers = _finite_fields(
        "value", "correction", "expanded_uncertainty", "coverage_factor"
    )


class MeterCertificate(FrozenModel):
    """A reference meter's calibration certificate, written into the procedure."""

    number: Text
    issuer: Text
    calibration_date: dt.date
    due_date: dt.date | None = None
    points: list[CertificatePoint] = Field(..., min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.due_date is not None and self.due_date <= self.calibration_date:
            raise ValueError("due_date must be after calibration_date")
        values = [p.value for p in self.points]
        if len(set(values)) != len(values):
            raise ValueError("two certificate points at the same value")
        return self


class MeterReference(FrozenModel):
    """A reference meter of the agent config with its own certificate (inline or a DCC)."""

    kind: Literal["meter"]
    instrument: Name
    channel: Name
    description: Text = "Reference meter"
    resolution: float = Field(..., gt=0, description="Its digit step at the points, in unit.")
    range_target: Name | None = None
    setup: dict[Name, SetValue] = Field(default_factory=dict)
    certificate: MeterCertificate | None = None
    dcc: Path | None = Field(
        None, description="Its certificate as a DCC 3.1.2 file (relative to the procedure)."
    )
    dcc_trust_anchors: Path | None = Field(
        None, description="PEM CA certificates a signed DCC is verified against."
    )
    drift_per_year: str | None = Field(
        None,
        max_length=200,
        description="How far it may drift per year since calibration, as a specification "
        "('±(2 ppm of reading + 0.1 µV)'): a rectangular contribution × the years elapsed.",
    )

    @model_validator(mode="after")
    def _one_certificate(self) -> Self:
        if (self.certificate is None) == (self.dcc is None):
            raise ValueError("give the certificate inline (certificate:) or as a DCC (dcc:)")
        return self


class GatewayLink(FrozenModel):
    """Where the registry of standards is: a gateway's HTTP API."""

    url: str = Field(..., pattern=r"^https?://[^\s]+$", max_length=300)
    token_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable of a token."
    )
    timeout_s: float = Field(10.0, gt=0, le=120)


class StandardReference(FrozenModel):
    """A standard of the gateway's registry, at its value in use on the run date."""

    kind: Literal["standard"]
    id: Name
    gateway: GatewayLink
    drift_per_year: str | None = Field(
        None,
        max_length=200,
        description="Drift limit per year when the registry has no drift fit (one or two "
        "certificates), as a specification.",
    )


Reference = Annotated[MeterReference | StandardReference, Field(discriminator="kind")]


class PointSpec(FrozenModel):
    """One calibration point."""

    nominal: float = Field(..., description="The level set on the source, in unit.")
    range: float | None = Field(
        None, gt=0, description="The range of the UUT (and of the source and reference)."
    )
    unit: str | None = Field(None, max_length=32, description="Defaults to the UUT's unit.")
    resolution: float | None = Field(
        None, gt=0, description="The UUT's digit step at this point (default uut.resolution)."
    )
    reference_resolution: float | None = Field(
        None, gt=0, description="The reference meter's digit step here (default its own)."
    )

    _finite_numbers = _finite_fields("nominal", "range", "resolution", "reference_resolution")


class SettlingSpec(FrozenModel):
    """When a point is settled: over the last ``window_s`` the line fitted to the readings
    has |slope| ≤ ``max_slope_per_s`` and the readings' standard deviation about it is
    ≤ ``max_std``; otherwise the point fails after ``timeout_s``."""

    on: Literal["reference", "uut"] | None = Field(
        None, description="Whose readings decide: the reference meter (default), else the UUT."
    )
    interval_s: float = Field(0.2, ge=0.0, le=60)
    window_s: float = Field(2.0, gt=0, le=3600)
    min_readings: int = Field(5, ge=3, le=10_000)
    max_slope_per_s: float = Field(..., gt=0)
    max_std: float = Field(..., gt=0)
    timeout_s: float = Field(60.0, gt=0, le=86_400)

    _finite_limits = _finite_fields("max_slope_per_s", "max_std")


class EnvironmentSpec(FrozenModel):
    """The room's channels recorded at each point, and the temperature effect's model."""

    temperature: ChannelRef | None = None
    humidity: ChannelRef | None = None
    reference_temperature: float = Field(23.0, ge=-50, le=100, description="°C")
    temperature_uncertainty: float = Field(
        0.3, ge=0, le=10, description="Of the room sensor, K (added to the deviation)."
    )
    temperature_coefficient: str | None = Field(
        None,
        max_length=200,
        description="Effect per kelvin on the reference, as a specification "
        "('±(1 ppm of reading + 0.05 µV)' per K).",
    )

    @model_validator(mode="after")
    def _coefficient_needs_channel(self) -> Self:
        if self.temperature_coefficient is not None and self.temperature is None:
            raise ValueError("temperature_coefficient needs the temperature channel")
        return self


class PublishSpec(FrozenModel):
    """How the run reaches the gateway."""

    agent: Name | None = Field(
        None,
        description="The identity the bench publishes under (default: the agent's id + '-cal'); "
        "with client certificates it needs one of its own (named SITE/ID).",
    )
    mqtt: MqttConfig | None = Field(None, description="Default: the agent config's mqtt.")
    drain_s: float = Field(10.0, ge=0, le=600, description="Wait this long for the broker.")


class Procedure(FrozenModel):
    """A calibration procedure (see the module doc)."""

    format: Literal["etalon.procedure/1"]
    id: Name
    title: Text
    version: str = Field("1", min_length=1, max_length=32, pattern=PLAIN_TEXT)
    agent: Path = Field(..., description="The agent config (relative to this file).")
    laboratory: Party
    customer: Party | None = None
    uut: UutSpec
    source: SourceSpec | None = None
    reference: Reference
    points: list[PointSpec] = Field(..., min_length=1, max_length=500)
    readings: int = Field(10, ge=2, le=1000, description="Readings per point.")
    reading_interval_s: float = Field(0.0, ge=0, le=3600)
    settling: SettlingSpec
    environment: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    decision_rule: DecisionRule = Field(default_factory=DecisionRule)
    coverage_probability: float = Field(DEFAULT_COVERAGE_PROBABILITY, gt=0.5, lt=1)
    allow_expired_reference: bool = Field(
        False, description="Use a reference whose certificate is past due (recorded)."
    )
    publish: PublishSpec = Field(default_factory=PublishSpec)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for index, point in enumerate(self.points):
            if point.unit is not None and point.unit != self.uut.unit:
                raise ValueError(
                    f"points[{index}].unit {point.unit!r} differs from the UUT's unit "
                    f"{self.uut.unit!r}"
                )
        if isinstance(self.reference, MeterReference) and self.source is None:
            raise ValueError("a reference meter measures a source: give source")
        return self

    def specification_at(self, point: PointSpec) -> Specification:
        """The UUT's specification completed with the point's range and the resolution."""
        return parse_specification(
            self.uut.specification,
            range=point.range,
            resolution=point.resolution or self.uut.resolution,
            unit=self.uut.unit,
        )

    def settles_on(self) -> Literal["reference", "uut"]:
        """Whose readings decide the settling."""
        if self.settling.on is not None:
            return self.settling.on
        return "reference" if isinstance(self.reference, MeterReference) else "uut"


@dataclass(frozen=True)
class LoadedProcedure:
    """A validated procedure, where it came from, its text and the SHA-256 of its bytes."""

    procedure: Procedure
    path: Path
    text: str
    sha256: str
    root: yaml.Node | None

    def resolve(self, relative: Path) -> Path:
        """A path of the procedure, relative to its file."""
        return relative if relative.is_absolute() else self.path.parent / relative

    def where(self, loc: Sequence[str | int]) -> str:
        """``FILE:LINE: field`` of a location in the file."""
        line, shown = locate(self.root, tuple(loc))
        return f"{self.path}:{line}: {shown}" if line else f"{self.path}: {shown}"


def locate(root: yaml.Node | None, loc: tuple[str | int, ...]) -> tuple[int | None, str]:
    """The line of the deepest node a field path reaches, and the path as the file spells it."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    shown = ""
    for part in loc:
        if isinstance(part, int):
            shown += f"[{part}]"
            if isinstance(node, yaml.SequenceNode) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                node = None
            continue
        shown += f".{part}" if shown else part
        found = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == part:
                    found = value_node
                    line = key_node.start_mark.line + 1
                    break
        node = found
    return line, shown or "(top level)"


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROCEDURE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_PROCEDURE_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_PROCEDURE_BYTES} bytes"])
    return data


def parse_procedure(path: Path, data: bytes) -> LoadedProcedure:
    """Validate a procedure's bytes (as read from ``path``); raises ConfigError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc}"]) from None
    digest = hashlib.sha256(data).hexdigest()
    tmp = _StringPath(path, text)
    raw, root = load_yaml(tmp)  # type: ignore[arg-type]
    try:
        procedure = Procedure.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None
    loaded = LoadedProcedure(procedure, path, text, digest, root)
    problems = _specification_problems(loaded)
    if problems:
        raise ConfigError(problems)
    return loaded


class _StringPath:
    """What ``load_yaml`` needs of a path (its name and its text), for text already read."""

    def __init__(self, path: Path, text: str) -> None:
        self._path = path
        self._text = text

    def read_text(self, encoding: str = "utf-8") -> str:
        return self._text

    def __str__(self) -> str:
        return str(self._path)

    def __fspath__(self) -> str:
        return str(self._path)


def load_procedure(path: Path) -> LoadedProcedure:
    """Read and validate a procedure file; raises ConfigError with ``FILE:LINE: field: reason``."""
    return parse_procedure(path, _read_bytes(path))


def _specification_problems(loaded: LoadedProcedure) -> list[str]:
    procedure = loaded.procedure
    problems = []
    for index, point in enumerate(procedure.points):
        try:
            procedure.specification_at(point)
        except ValidationError as exc:
            reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            detail = f" at points[{index}]" if point.range is None else ""
            problems.append(f"{loaded.where(('uut', 'specification'))}: {reason}{detail}")
            break
        except ValueError as exc:
            detail = f" at points[{index}]" if point.range is None else ""
            problems.append(f"{loaded.where(('uut', 'specification'))}: {exc}{detail}")
            break
    texts: list[tuple[tuple[str | int, ...], str | None]] = [
        (("environment", "temperature_coefficient"), procedure.environment.temperature_coefficient),
        (("reference", "drift_per_year"), procedure.reference.drift_per_year),
    ]
    for loc, text in texts:
        if text is None:
            continue
        try:
            parse_specification(text, range=procedure.points[0].range, unit=procedure.uut.unit)
        except ValidationError as exc:
            reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            problems.append(f"{loaded.where(loc)}: {reason}")
        except ValueError as exc:
            problems.append(f"{loaded.where(loc)}: {exc}")
    return problems


def certificate_expired(due: dt.date | None, on: dt.date) -> bool:
    """Whether a certificate is past due on a date (the due date itself is still valid)."""
    return due is not None and on > due


def expired_problem(
    loaded: LoadedProcedure, loc: Sequence[str | int], number: str, due: dt.date, on: dt.date
) -> str | None:
    """The problem of a reference certificate expired on ``on``, unless allowed."""
    if loaded.procedure.allow_expired_reference:
        return None
    return (
        f"{loaded.where(loc)}: the reference's certificate {number} expired on "
        f"{due.isoformat()} (run date {on.isoformat()}); recalibrate the reference, or set "
        "allow_expired_reference: true to use it anyway (the run records it)"
    )


def future_problem(
    loaded: LoadedProcedure, loc: Sequence[str | int], number: str, issued: dt.date, on: dt.date
) -> str:
    """The problem of a reference certificate dated after the run."""
    return (
        f"{loaded.where(loc)}: the reference's certificate {number} is dated "
        f"{issued.isoformat()}, after the run date {on.isoformat()}"
    )


def procedure_schema() -> dict[str, Any]:
    """The JSON Schema of a procedure file."""
    return Procedure.model_json_schema()
