"""What one evaluation of a standard takes and gives: its inputs (certificates, period
statistics of its channels), its result models (drift summaries, crossings, control signals,
the standard's result and event), and the time helpers they share (UTC ns ↔ days)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from gateway.analytics import DriftFit
from gateway.analytics.aggregate import PeriodStat
from gateway.analytics.stability import StabilityResult
from gateway.ingest.events import ControlViolation, StandardEvaluated
from gateway.standards.config import ModelChoice, StandardsConfig
from gateway.standards.crossing import CrossingFields
from gateway.standards.models import (
    SECONDS_PER_YEAR,
    SUMMARY_FROM_EVENT,
    AnalysisOverrides,
    ChannelLink,
    Tolerance,
)
from metrology._common import MetrologyModel, from_attributes

if TYPE_CHECKING:
    from gateway.standards.registry import CertificateRecord

NS_PER_DAY = 86_400_000_000_000
DAYS_PER_YEAR = SECONDS_PER_YEAR / 86_400
BAND_POINTS = 60
MIN_STABILITY_PERIODS = 16

FORMAT: Literal["etalon.standards.evaluation/1"] = "etalon.standards.evaluation/1"


def days(ns: int | float) -> float:
    """Days since the epoch of UTC nanoseconds."""
    return float(ns) / NS_PER_DAY


def ns(days_since_epoch: float) -> int:
    """UTC nanoseconds of days since the epoch."""
    return round(days_since_epoch * NS_PER_DAY)


def iso(ts_ns: int | None) -> str | None:
    """ISO 8601 UTC to the second, or None."""
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInput:
    """What the analytics need of a certificate."""

    number: str
    calibration_ns: int
    due_ns: int | None
    value: float
    expanded_uncertainty: float
    coverage_factor: float


def certificate_inputs(records: Sequence[CertificateRecord]) -> list[CertificateInput]:
    """What the analytics need of a standard's registered certificates."""
    return [
        CertificateInput(
            c.number,
            c.calibration_ns,
            c.due_ns,
            c.value,
            c.expanded_uncertainty,
            c.coverage_factor,
        )
        for c in records
    ]


@dataclass(frozen=True)
class ChannelInput:
    """A linked channel and its period statistics (oldest first)."""

    link: ChannelLink
    site: str
    periods: Sequence[PeriodStat]


@dataclass(frozen=True)
class StandardInput:
    """Everything one evaluation looks at."""

    standard_id: str
    site: str
    unit: str
    nominal: float
    tolerance: Tolerance | None
    certificates: Sequence[CertificateInput]
    channels: Sequence[ChannelInput]
    certificate_model: ModelChoice
    monitor_model: ModelChoice
    period_s: float
    now_ns: int
    options: StandardsConfig = field(default_factory=StandardsConfig)
    baseline: tuple[date, date] | None = None
    """A dated control-chart baseline (first and last day); None: the gateway-wide one, if
    any, else the first ``baseline_periods`` periods of the window."""

    def baseline_dates(self) -> tuple[date, date] | None:
        """The dated baseline in force: the standard's own, else the gateway's, else None."""
        if self.baseline is not None:
            return self.baseline
        start, end = self.options.baseline_start, self.options.baseline_end
        return (start, end) if start is not None and end is not None else None


def date_ns(day: date) -> int:
    """UTC nanoseconds of a day's midnight."""
    return (day - date(1970, 1, 1)).days * NS_PER_DAY


def baseline_dates(
    overrides: AnalysisOverrides, options: StandardsConfig
) -> tuple[date, date] | None:
    """A standard's own dated baseline, else the gateway's, else None."""
    for start, end in (
        (overrides.baseline_start, overrides.baseline_end),
        (options.baseline_start, options.baseline_end),
    ):
        if start is not None and end is not None:
            return (start, end)
    return None


# -- results -------------------------------------------------------------------------------------


class ToleranceNow(MetrologyModel):
    """The tolerance band at the time of evaluation."""

    centre: float
    low: float
    high: float
    around: Literal["nominal", "certificate"]


class CrossingDates(MetrologyModel, CrossingFields):
    """When a drift fit reaches a tolerance limit, searched from ``searched_from_ns``."""


class BandPoint(MetrologyModel):
    """The fitted curve and its bands at one time (for drawing)."""

    ts_ns: int
    value: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float


class DriftSummary(MetrologyModel):
    """A drift fit as the registry and the dashboards show it."""

    n: int
    model: str
    fit: DriftFit
    slope_per_year: float | None
    u_slope_per_year: float | None
    slope_interval_per_year: tuple[float, float] | None
    slope_ppm_per_year: float | None
    """Relative to the nominal value, in parts per million per year (µV/V per year)."""
    coverage_factor: float
    u_systematic: float
    """Standard uncertainty common to every point (the channel's own), added to the bands."""
    value_now: float
    u_fit_now: float
    u_prediction_now: float
    crossing: CrossingDates | None
    band: list[BandPoint]


class CertificateAnalysis(MetrologyModel):
    """The certificate history and the reference value it gives now."""

    n: int
    latest_number: str | None
    latest_calibration_ns: int | None
    due_ns: int | None
    reference: float | None
    reference_u: float | None
    reference_expanded_u: float | None
    k: float | None
    reference_from: Literal["fit", "latest certificate"] | None
    drift: DriftSummary | None


class PeriodPoint(MetrologyModel):
    """One period mean in the standard's unit."""

    start_ns: int
    ts_ns: int
    n: int
    mean: float
    u_mean: float | None
    u: float | None
    """Combined standard uncertainty of the mean: Type A and the readings' own."""
    residual: float | None
    control: float | None = None
    """With a dated baseline: the value on the control chart, the residual about the drift
    model fitted to the baseline periods (None before the baseline)."""


class ControlBaseline(MetrologyModel):
    """Which periods set a control chart's centre line and sigma."""

    rule: Literal["first_periods", "dated"]
    """``first_periods``: the first ``baseline_periods`` of the window, residuals about the
    window's drift fit (the limits move as the window slides); ``dated``: the periods between
    two dates, residuals about a drift fit of those periods only (frozen limits)."""
    start: str | None
    end: str | None
    """The dates asked for (dated baseline), the end included."""
    first_ns: int
    last_ns: int
    """Mean times of the first and last baseline period used."""
    periods: int


class ViolationRecord(MetrologyModel):
    """A control-chart signal of a channel's period means."""

    rule: str
    ts_ns: int
    channel: str
    name: str
    name_vi: str


class ChannelAnalysis(MetrologyModel):
    """One monitored channel."""

    channel: str
    site: str
    agent: str
    instrument: str
    channel_name: str
    periods_total: int
    periods_used: int
    measured: float | None
    measured_u: float | None
    measured_ts_ns: int | None
    drift: DriftSummary | None
    control_center: float | None
    control_sigma: float | None
    control_baseline: ControlBaseline | None = None
    violations: list[ViolationRecord]
    stability: StabilityResult | None
    points: list[PeriodPoint]
    notes: list[str]


class StandardResult(MetrologyModel):
    """One evaluation of one standard; ``event()`` is what the alert engine receives."""

    format: Literal["etalon.standards.evaluation/1"] = FORMAT
    standard_id: str
    site: str
    ts_ns: int
    evaluated_at: str
    unit: str
    nominal: float
    tolerance: ToleranceNow | None
    certificates: CertificateAnalysis
    channels: list[ChannelAnalysis]
    measured: float | None
    measured_u: float | None
    measured_ts_ns: int | None
    predicted_out_of_tolerance_ns: int | None
    predicted_out_of_tolerance_from: str | None
    calibration_due_ns: int | None
    recommended_recalibration_ns: int | None
    """The earlier of the certificate's due date and the predicted out-of-tolerance date."""
    violations: list[ViolationRecord]
    notes: list[str]

    def event(self) -> StandardEvaluated:
        """The agreed event for the alert engine."""
        certificates = self.certificates
        return from_attributes(
            StandardEvaluated,
            self,
            reference=certificates.reference,
            reference_expanded_u=certificates.reference_expanded_u,
            k=certificates.k,
            tolerance_low=self.tolerance.low if self.tolerance else None,
            tolerance_high=self.tolerance.high if self.tolerance else None,
            violations=tuple(ControlViolation(v.rule, v.ts_ns) for v in self.violations),
        )

    def summary(self) -> dict[str, object]:
        """The few numbers kept for every evaluation in the history."""
        first = next((c.drift for c in self.channels if c.drift is not None), None)
        certificates = self.certificates
        event = self.event()
        return {
            "ts_ns": self.ts_ns,
            "evaluated_at": self.evaluated_at,
            **{name: getattr(event, name) for name in SUMMARY_FROM_EVENT},
            "certificate_slope_per_year": certificates.drift.slope_per_year
            if certificates.drift
            else None,
            "monitor_slope_per_year": first.slope_per_year if first else None,
            "monitor_u_slope_per_year": first.u_slope_per_year if first else None,
            "predicted_out_of_tolerance_ns": self.predicted_out_of_tolerance_ns,
            "predicted_out_of_tolerance": iso(self.predicted_out_of_tolerance_ns),
            "predicted_out_of_tolerance_from": self.predicted_out_of_tolerance_from,
            "calibration_due_ns": self.calibration_due_ns,
            "calibration_due": iso(self.calibration_due_ns),
            "recommended_recalibration_ns": self.recommended_recalibration_ns,
            "violations": [v.model_dump() for v in self.violations],
            "notes": list(self.notes),
        }
