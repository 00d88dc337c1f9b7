"""A standard's latest evaluation shaped for drawing (``GET /standards/{id}/chart``): the
certificates with their U, each drift fit with its prediction band carried on to the dates it
forecasts, the tolerance limits over the whole time axis, the monitored period means and the
control chart of the residuals with every rule signal in the window.

Pure: the stored :class:`StandardResult`, the registry's entry and the analytics' options in,
a :class:`StandardChart` out, so the dashboard draws without doing statistics of its own.
Only the models are imported with the API; the arithmetic (numpy) is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from gateway.standards.config import StandardsConfig
from gateway.standards.crossing import CrossingFields
from gateway.standards.registry import StandardRecord
from metrology._common import from_attributes

if TYPE_CHECKING:  # numpy and scipy are loaded when a chart is drawn, not with the API
    from gateway.standards.results import ChannelAnalysis, CrossingDates, DriftSummary

CURVE_POINTS = 120
TOLERANCE_POINTS = 60
MARGIN = 0.04
"""Room left after the latest date drawn, as a fraction of the time axis."""


class CrossingView(CrossingFields):
    """When a drift fit reaches a tolerance limit (see ``CrossingDates`` in evaluation.py)."""


class SignalView(BaseModel):
    """A control-chart signal, named in English and Vietnamese."""

    rule: str
    ts_ns: int
    channel: str
    name: str
    name_vi: str


class BandPointView(BaseModel):
    """The fitted value and its prediction interval at one time."""

    ts_ns: int
    value: float
    low: float
    high: float


class FitView(BaseModel):
    """One drift fit: of the certificates, or of a monitored channel's period means."""

    source: Literal["certificates", "channel"]
    channel: str | None
    """``site:agent/instrument/channel`` of a channel's fit."""
    model: str
    n: int
    coverage_factor: float
    slope_per_year: float | None
    u_slope_per_year: float | None
    slope_ppm_per_year: float | None
    crossing: CrossingView | None
    curve: list[BandPointView]
    """From the first point fitted to the later of the evaluation's band and the dates this fit
    forecasts (its out-of-tolerance dates; the due date for the certificates)."""


class ToleranceView(BaseModel):
    """The tolerance limits at one time."""

    ts_ns: int
    low: float
    high: float


class CertificatePoint(BaseModel):
    """A certificate as a point with its expanded uncertainty."""

    id: int
    number: str
    ts_ns: int
    value: float
    expanded_uncertainty: float
    coverage_factor: float


class MonitoredPoint(BaseModel):
    """A period mean in the standard's unit with its combined standard uncertainty."""

    ts_ns: int
    value: float
    u: float | None
    n: int


class MonitoredView(BaseModel):
    """The period means of one linked channel."""

    channel: str
    agent: str
    instrument: str
    channel_name: str
    points: list[MonitoredPoint]


class ControlPoint(BaseModel):
    """A residual of a period mean about its channel's drift fit."""

    ts_ns: int
    value: float


class ControlView(BaseModel):
    """Individuals chart of a channel's residuals: centre and ±3 sigma from the baseline."""

    channel: str
    center: float
    sigma: float
    ucl: float
    lcl: float
    points: list[ControlPoint]
    violations: list[SignalView]
    """Every signal in the window (the evaluation reports only the recent ones)."""


class ValueInUse(BaseModel):
    """The reference value now, with its expanded uncertainty."""

    value: float
    expanded_uncertainty: float
    coverage_factor: float
    source: Literal["fit", "latest certificate"]


class Measured(BaseModel):
    """The latest monitored period mean."""

    value: float
    u: float | None
    ts_ns: int


class StandardChart(BaseModel):
    """What the standard's page draws (see the module doc); values in ``unit``."""

    standard_id: str
    unit: str
    nominal: float
    tolerance: str | None
    """Compact form, e.g. ``±1 ppm``."""
    evaluated_ns: int
    start_ns: int
    end_ns: int
    value_in_use: ValueInUse | None
    measured: Measured | None
    calibration_due_ns: int | None
    predicted_out_of_tolerance_ns: int | None
    predicted_out_of_tolerance_from: str | None
    recommended_recalibration_ns: int | None
    certificates: list[CertificatePoint]
    fits: list[FitView]
    tolerance_limits: list[ToleranceView]
    monitored: list[MonitoredView]
    control: list[ControlView]
    violations: list[SignalView]
    """What the evaluation reported (signals in the latest periods)."""
    notes: list[str]


def _forecast_dates(crossing: CrossingDates | None) -> list[int]:
    if crossing is None:
        return []
    dates = [crossing.earliest_ns, crossing.likely_ns, *crossing.bounds_ns]
    return [d for d in dates if d is not None]


def _curve(drift: DriftSummary, until_ns: int) -> list[BandPointView]:
    """The fit and its prediction band from its first point to ``until_ns`` (the evaluation's
    own formulas: the band holds the channel's systematic part and one new observation)."""
    import numpy as np

    from gateway.standards.results import days, ns
    from gateway.standards.tolerance import curve

    fit = drift.fit
    start = fit.x_min
    end = max(days(until_ns), days(drift.band[-1].ts_ns) if drift.band else start)
    xs = np.linspace(start, max(end, start + 1e-6), CURVE_POINTS)
    values, u_fit = curve(fit, xs)
    u_prediction = np.hypot(np.hypot(u_fit, drift.u_systematic), fit.u_new)
    k = drift.coverage_factor
    return [
        BandPointView(
            ts_ns=ns(float(x)), value=float(v), low=float(v - k * u), high=float(v + k * u)
        )
        for x, v, u in zip(xs, values, u_prediction, strict=True)
    ]


def _fit_view(
    drift: DriftSummary, source: Literal["certificates", "channel"], channel: str | None, end: int
) -> FitView:
    return from_attributes(
        FitView,
        drift,
        source=source,
        channel=channel,
        crossing=CrossingView.model_validate(drift.crossing.model_dump())
        if drift.crossing
        else None,
        curve=_curve(drift, end),
    )


def _control_series(
    channel: ChannelAnalysis, baseline_periods: int
) -> tuple[list[tuple[int, float]], int, float, float]:
    """What a channel's control chart plots, its baseline's length, sigma and centre: the
    residuals about the window's fit, or with a dated baseline those about the baseline's."""
    assert channel.control_sigma is not None and channel.control_center is not None
    baseline = channel.control_baseline
    if baseline is not None and baseline.rule == "dated":
        points = [(p.ts_ns, p.control) for p in channel.points if p.control is not None]
        return points, baseline.periods, channel.control_sigma, channel.control_center
    points = [(p.ts_ns, p.residual) for p in channel.points if p.residual is not None]
    return points, baseline_periods, channel.control_sigma, channel.control_center


def _control(
    channel: str, points: list[tuple[int, float]], baseline: int, sigma: float, center: float
) -> ControlView:
    """The chart of one channel; its signals over the whole window, from the same baseline."""
    from gateway.analytics import AnalyticsError, control_report
    from gateway.standards.evaluation import control_signals
    from gateway.standards.results import PeriodPoint

    violations: list[SignalView] = []
    try:
        report = control_report([v for _, v in points], baseline)
        periods = [
            PeriodPoint(start_ns=ts, ts_ns=ts, n=1, mean=v, u_mean=None, u=None, residual=v)
            for ts, v in points
        ]
        violations = [
            SignalView.model_validate(signal.model_dump())
            for signal in sorted(
                control_signals(report, periods, channel), key=lambda v: (v.ts_ns, v.rule)
            )
        ]
    except AnalyticsError:
        pass  # the evaluation drew the chart, so its baseline was enough; nothing to mark
    return ControlView(
        channel=channel,
        center=center,
        sigma=sigma,
        ucl=center + 3 * sigma,
        lcl=center - 3 * sigma,
        points=[ControlPoint(ts_ns=ts, value=v) for ts, v in points],
        violations=violations,
    )


def chart_view(
    result_json: str | bytes, standard: StandardRecord, options: StandardsConfig
) -> StandardChart:
    """See the module doc (``result_json``: the stored evaluation)."""
    import numpy as np

    from gateway.standards.results import StandardResult, certificate_inputs, days, ns
    from gateway.standards.tolerance import tolerance_limits

    result = StandardResult.model_validate_json(result_json)
    certificates = result.certificates
    certificate_points = [
        from_attributes(CertificatePoint, c, ts_ns=c.calibration_ns) for c in standard.certificates
    ]
    monitored = [
        from_attributes(
            MonitoredView,
            channel,
            points=[
                MonitoredPoint(ts_ns=p.ts_ns, value=p.mean, u=p.u, n=p.n) for p in channel.points
            ],
        )
        for channel in result.channels
    ]
    # Every fit runs on to what it forecasts; the time axis holds everything drawn.
    fits: list[FitView] = []
    if certificates.drift is not None:
        until = max(
            [result.ts_ns, *_forecast_dates(certificates.drift.crossing)]
            + ([certificates.due_ns] if certificates.due_ns is not None else [])
        )
        fits.append(_fit_view(certificates.drift, "certificates", None, until))
    for channel in result.channels:
        if channel.drift is not None:
            until = max([result.ts_ns, *_forecast_dates(channel.drift.crossing)])
            fits.append(_fit_view(channel.drift, "channel", channel.channel, until))
    stamps = [result.ts_ns]
    stamps += [p.ts_ns for p in certificate_points]
    stamps += [p.ts_ns for fit in fits for p in (fit.curve[0], fit.curve[-1])]
    stamps += [p.ts_ns for view in monitored for p in view.points[:1]]
    for moment in (result.calibration_due_ns, result.predicted_out_of_tolerance_ns):
        if moment is not None:
            stamps.append(moment)
    first, last = min(stamps), max(stamps)
    margin = max(round((last - first) * MARGIN), 1)
    start_ns, end_ns = first - margin, last + margin
    tolerance: list[ToleranceView] = []
    limits = tolerance_limits(
        standard.tolerance,
        standard.nominal,
        certificate_inputs(standard.certificates),
    )
    if limits is not None:
        xs = np.linspace(days(start_ns), days(end_ns), TOLERANCE_POINTS)
        lows, highs = limits.at(xs)
        tolerance = [
            ToleranceView(ts_ns=ns(float(x)), low=float(lo), high=float(hi))
            for x, lo, hi in zip(xs, lows, highs, strict=True)
        ]
    control = [
        _control(channel.channel, *_control_series(channel, options.baseline_periods))
        for channel in result.channels
        if channel.control_center is not None and channel.control_sigma is not None
    ]
    value_in_use = None
    if (
        certificates.reference is not None
        and certificates.reference_expanded_u is not None
        and certificates.k is not None
        and certificates.reference_from is not None
    ):
        value_in_use = ValueInUse(
            value=certificates.reference,
            expanded_uncertainty=certificates.reference_expanded_u,
            coverage_factor=certificates.k,
            source=certificates.reference_from,
        )
    measured = None
    if result.measured is not None and result.measured_ts_ns is not None:
        measured = Measured(value=result.measured, u=result.measured_u, ts_ns=result.measured_ts_ns)
    return from_attributes(
        StandardChart,
        result,
        nominal=standard.nominal,
        tolerance=standard.tolerance.compact() if standard.tolerance else None,
        evaluated_ns=result.ts_ns,
        start_ns=start_ns,
        end_ns=end_ns,
        value_in_use=value_in_use,
        measured=measured,
        certificates=certificate_points,
        fits=fits,
        tolerance_limits=tolerance,
        monitored=monitored,
        control=control,
        violations=[SignalView.model_validate(v.model_dump()) for v in result.violations],
    )
