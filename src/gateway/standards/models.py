"""What the registry holds: standards, their tolerance, the channels that measure them, their
certificates and the traceability each certificate states. Frozen pydantic models, unknown keys
refused; the same models validate an import file, the HTTP API's bodies and the export.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from core.models import NAME_PATTERN, PLAIN_TEXT, FrozenModel, Name
from gateway.standards.config import (
    Day,
    ModelChoice,
    dates_together,
    end_after_start,
    in_range,
)

FORMAT: Literal["etalon.standards/1"] = "etalon.standards/1"
SECONDS_PER_YEAR = 365.25 * 86_400
SUMMARY_FROM_EVENT = (
    "unit",
    "measured",
    "measured_u",
    "measured_ts_ns",
    "reference",
    "reference_expanded_u",
    "k",
    "tolerance_low",
    "tolerance_high",
)
"""What the summary of an evaluation kept in its history takes from its event for the alert
engine (``StandardResult.summary``), in the summary's order; the API's results CSV shows them."""

StandardKind = Literal[
    "dc_voltage",
    "ac_voltage",
    "dc_current",
    "ac_current",
    "resistance",
    "capacitance",
    "inductance",
    "frequency",
    "time_interval",
    "temperature",
    "humidity",
    "pressure",
    "mass",
    "length",
    "force",
    "torque",
    "flow",
    "other",
]

Text = Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)]
"""A label a person types: no control characters, no backslash."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]

_PPM_UNIT = re.compile(r"^[µu]([^/\s]+)/([^/\s]+)$")
_AMOUNT = re.compile(r"^(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>.*)$")
_PER_YEAR = re.compile(r"\s*(?:/\s*(?:year|yr|a)|per\s+year)\s*$")


def _amount(
    text: str, whole: str
) -> tuple[float, Literal["absolute", "relative", "ppm"], str | None]:
    match = _AMOUNT.match(text.strip())
    if not match:
        raise ValueError(
            f"{whole!r} is not a tolerance such as '±2 ppm' or '±1 µV/V + 1 µV/V/year'"
        )
    number, unit = float(match.group("number")), match.group("unit").strip()
    if unit in ("%", "percent"):
        return number / 100.0, "relative", None
    if unit == "relative":
        return number, "relative", None
    ppm = _PPM_UNIT.match(unit)
    if unit == "ppm" or (ppm and ppm.group(1) == ppm.group(2)):
        return number, "ppm", None
    return number, "absolute", unit or None  # must be the standard's own unit


def parse_tolerance(text: str) -> dict[str, Any]:
    """The compact form ``±2 ppm``, ``±5e-6 V``, ``±0.01 %``, ``±1 µV/V + 1 µV/V/year`` as the
    fields of :class:`Tolerance` (a unit other than ppm, µX/X, % or ``relative`` is taken to be
    the standard's own unit: absolute). A second term ``+ AMOUNT/year`` grows the band from the
    latest calibration."""
    body = text.strip()
    for prefix in ("±", "+/-", "+-"):
        if body.startswith(prefix):
            body = body[len(prefix) :]
            break
    head, _, tail = body.partition(" + ")
    half_width, mode, unit = _amount(head, text)
    fields: dict[str, Any] = {"half_width": half_width, "mode": mode}
    if unit is not None:
        fields["unit"] = unit
    if tail:
        if not _PER_YEAR.search(tail):
            raise ValueError(f"{text!r}: the second term must be a growth per year ('/year')")
        rate, rate_mode, rate_unit = _amount(_PER_YEAR.sub("", tail), text)
        if rate_mode != mode or (rate_unit is not None and rate_unit != unit):
            raise ValueError(f"{text!r}: the yearly growth must be in the same kind of unit")
        fields["per_year"] = rate
        fields["around"] = "certificate"
    return fields


class Tolerance(FrozenModel):
    """The band the standard must stay in: centre ± (half_width + per_year · years since the
    latest calibration), expressed in the standard's unit (``absolute``), as a fraction of the
    nominal value (``relative``) or in parts per million of it (``ppm``, µV/V, µΩ/Ω)."""

    half_width: Finite = Field(..., gt=0)
    mode: Literal["absolute", "relative", "ppm"] = "absolute"
    unit: str | None = Field(
        None, description="absolute mode: the unit written, checked against the standard's."
    )
    per_year: Finite = Field(
        0.0, ge=0, description="Growth of the half-width per year since the latest calibration."
    )
    around: Literal["nominal", "certificate"] = Field(
        "nominal",
        description="Centre of the band: the nominal value, or the latest certified value.",
    )

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, data: Any) -> Any:
        if isinstance(data, str):
            return parse_tolerance(data)
        return data

    @model_validator(mode="after")
    def _growth_needs_a_calibration(self) -> Tolerance:
        if self.per_year and self.around != "certificate":
            raise ValueError(
                "a tolerance that grows per year counts from the latest calibration: "
                "set around: certificate"
            )
        return self

    def absolute(self, amount: float, nominal: float) -> float:
        """An amount of this tolerance's mode in the standard's unit."""
        if self.mode == "relative":
            return amount * abs(nominal)
        if self.mode == "ppm":
            return amount * abs(nominal) * 1e-6
        return amount

    def half_width_at(self, nominal: float, years_since_calibration: float) -> float:
        """Half-width in the standard's unit, ``years_since_calibration`` after the latest one."""
        grown = self.half_width + self.per_year * max(0.0, years_since_calibration)
        return self.absolute(grown, nominal)

    def compact(self) -> str:
        """The compact text form (what ``parse_tolerance`` reads back)."""
        unit = {
            "absolute": f" {self.unit}" if self.unit else "",
            "relative": " relative",
            "ppm": " ppm",
        }[self.mode]
        text = f"±{self.half_width!r}{unit}"
        if self.per_year:
            text += f" + {self.per_year!r}{unit}/year"
        return text


class ChannelLink(FrozenModel):
    """A channel that measures the standard, and how its readings become the standard's value:
    ``value = scale · reading + offset`` (the defaults: the channel reads the standard directly)."""

    site: Name | None = Field(None, description="Default: the gateway's site.")
    agent: Name
    instrument: Name
    channel: Name
    unit: str = Field(
        ..., min_length=1, max_length=32, pattern=PLAIN_TEXT, description="The channel's unit."
    )
    scale: Finite = 1.0
    offset: Finite = 0.0
    note: Text | None = None

    @field_validator("scale")
    @classmethod
    def _scale_not_zero(cls, value: float) -> float:
        if value == 0.0:
            raise ValueError("scale 0 would erase every reading")
        return value

    def key(self, default_site: str) -> tuple[str, str, str, str]:
        """(site, agent, instrument, channel)."""
        return (self.site or default_site, self.agent, self.instrument, self.channel)

    def label(self) -> str:
        """``agent/instrument/channel`` (with ``site:`` when given)."""
        path = f"{self.agent}/{self.instrument}/{self.channel}"
        return f"{self.site}:{path}" if self.site else path


class Conditions(FrozenModel):
    """Conditions of a calibration as the certificate states them."""

    temperature_c: Finite | None = None
    pressure_hpa: Finite | None = Field(None, gt=0)
    humidity_rh: Finite | None = Field(None, ge=0, le=100)
    notes: Text | None = None


class TraceabilityNode(FrozenModel):
    """A standard the certificate is traceable to, at the lab that holds it; its own
    ``traceable_to`` continues the chain up to a national standard (``national: true``)."""

    lab: Text
    standard: Text
    description: Text | None = None
    certificate: Text | None = Field(None, description="That standard's own certificate.")
    national: bool = Field(False, description="A national (primary) standard: the chain's top.")
    traceable_to: list[TraceabilityNode] = Field(default_factory=list)


def _as_date_or_datetime(value: Any) -> Any:
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value.strip()!r} is not a date YYYY-MM-DD ({exc})") from None
    return value


def _aware(value: date | datetime) -> date | datetime:
    in_range(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


When = Annotated[date | datetime, BeforeValidator(_as_date_or_datetime), AfterValidator(_aware)]
"""A date (``2024-05-01``) or an ISO 8601 date-time (naive is UTC), from 1900 to 2200."""


def when_ns(value: date | datetime) -> int:
    """UTC nanoseconds of a date (its midnight UTC) or a date-time."""
    moment = (
        value
        if isinstance(value, datetime)
        else datetime(value.year, value.month, value.day, tzinfo=UTC)
    )
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def when_text(value: date | datetime) -> str:
    """ISO 8601: ``2024-05-01`` or ``2024-05-01T10:00:00Z``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _hash_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("read as a number: write the SHA-256 in quotes")
    return value.lower() if isinstance(value, str) else value


SHA256 = Annotated[
    str, BeforeValidator(_hash_text), Field(pattern=r"^[0-9a-f]{64}$", description="hex")
]


class CertificateSpec(FrozenModel):
    """A calibration certificate of a standard."""

    number: Text
    issuer: Text = Field(..., description="The issuing laboratory.")
    calibration_date: When
    due_date: When | None = None
    value: Finite = Field(..., description="Certified value, in the standard's unit.")
    expanded_uncertainty: Finite = Field(..., gt=0, description="U, in the standard's unit.")
    coverage_factor: Finite = Field(..., gt=0, le=10, description="k of U.")
    conditions: Conditions = Field(default_factory=Conditions)
    file: str | None = Field(
        None,
        description="The certificate (PDF or DCC XML): a path, relative to the import file.",
    )
    file_sha256: SHA256 | None = Field(
        None, description="When given, the file must have this SHA-256."
    )
    traceable_to: list[TraceabilityNode] = Field(default_factory=list)
    notes: Text | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> CertificateSpec:
        if self.due_date is not None and when_ns(self.due_date) <= when_ns(self.calibration_date):
            raise ValueError("due_date must be after calibration_date")
        if self.file_sha256 is not None and self.file is None:
            raise ValueError("file_sha256 given without a file")
        return self

    @property
    def standard_uncertainty(self) -> float:
        """u = U / k."""
        return self.expanded_uncertainty / self.coverage_factor


class AnalysisOverrides(FrozenModel):
    """Per-standard choices that differ from the gateway's ``standards:`` defaults."""

    certificate_model: ModelChoice | None = None
    monitor_model: ModelChoice | None = None
    period_s: float | None = Field(None, ge=1)
    baseline_start: Day | None = Field(
        None,
        description="First day of a dated (frozen) control-chart baseline; with baseline_end.",
    )
    baseline_end: Day | None = Field(
        None, description="Last day (included) of the dated control-chart baseline."
    )

    _baseline_end_after_start = field_validator("baseline_end")(end_after_start)

    @model_validator(mode="after")
    def _baseline_dates_together(self) -> AnalysisOverrides:
        dates_together(self.baseline_start, self.baseline_end)
        return self


class StandardSpec(FrozenModel):
    """A reference standard: identity, nominal value, tolerance, the channels measuring it."""

    id: str = Field(..., pattern=NAME_PATTERN, description="The lab's identifier, e.g. Z10-01.")
    kind: StandardKind
    description: Text | None = None
    nominal: Finite
    unit: str = Field(..., min_length=1, max_length=32, pattern=PLAIN_TEXT)
    manufacturer: Text | None = None
    model: Text | None = None
    serial: Text | None = None
    owner_lab: Text
    tolerance: Tolerance | None = None
    status: Literal["active", "retired"] = "active"
    analysis: AnalysisOverrides = Field(default_factory=AnalysisOverrides)
    channels: list[ChannelLink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tolerance_unit(self) -> StandardSpec:
        tolerance = self.tolerance
        if tolerance is not None and tolerance.unit is not None and tolerance.unit != self.unit:
            raise ValueError(
                f"the tolerance is in {tolerance.unit!r} but the standard's unit is {self.unit!r}"
                " (write ppm, %, relative, or the standard's unit)"
            )
        if tolerance is not None and tolerance.mode != "absolute" and self.nominal == 0.0:
            raise ValueError("a relative tolerance needs a nominal value other than 0")
        return self

    @model_validator(mode="after")
    def _channels_unique(self) -> StandardSpec:
        seen = set()
        for link in self.channels:
            key = (link.site, link.agent, link.instrument, link.channel)
            if key in seen:
                raise ValueError(f"channel {link.label()} is linked twice")
            seen.add(key)
        return self


class StandardEntry(StandardSpec):
    """A standard in an import file or an export: with its certificates."""

    certificates: list[CertificateSpec] = Field(default_factory=list)


class CertificateEntry(CertificateSpec):
    """A certificate for a standard named by id (already registered or in the same file)."""

    standard: str = Field(..., pattern=NAME_PATTERN)


class StandardsDocument(FrozenModel):
    """An import file (YAML or JSON), and what ``export --format json`` writes."""

    format: Literal["etalon.standards/1"] = FORMAT
    exported_at: str | None = None
    standards: list[StandardEntry] = Field(default_factory=list)
    certificates: list[CertificateEntry] = Field(default_factory=list)


def certificate_fields(spec: CertificateSpec) -> dict[str, Any]:
    """A certificate's own fields (no file, no traceability) as stored and compared."""
    return spec.model_dump(
        mode="json", exclude={"file", "file_sha256", "traceable_to"}, exclude_none=False
    )


def standard_fields(spec: StandardSpec) -> dict[str, Any]:
    """A standard's own fields (no channels) as stored and compared."""
    data = spec.model_dump(mode="json", exclude={"channels"})
    data.pop("certificates", None)
    return data
