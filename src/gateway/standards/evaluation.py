"""One evaluation of one reference standard: a pure function of its registry entry, its
certificates, the period means of its monitored channels and the time of evaluation.

- **Certificates** (three or more): a drift fit of certified value against calibration date,
  weighted by u = U/k; the value in use now is the reference. With one or two certificates the
  latest certified value and its U are the reference, without a drift model.
- **Monitored channels**: period means (daily by default) of each linked channel, converted to
  the standard's unit; a drift fit of the means weighted by their Type A uncertainty; the latest
  mean is the measured value, its uncertainty the Type A one combined with the readings' own
  (Type B) uncertainty; control-chart rules on the residuals about the fit; the overlapping
  Allan deviation of the latest contiguous run of periods.
- **Out of tolerance**: for each drift fit, the dates at which the prediction interval (plan by
  this), the fitted curve, and the confidence band of the curve reach a tolerance limit. The
  confidence-band dates bound when the standard's true value crosses.

Every number is in the standard's unit; times are UTC nanoseconds. See docs/standards.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from gateway.analytics import AnalyticsError, DriftFit, allan_deviation, control_report, fit_drift
from gateway.analytics.aggregate import PeriodStat
from gateway.analytics.control import ControlReport
from gateway.standards.config import StandardsConfig
from gateway.standards.results import (
    BAND_POINTS,
    DAYS_PER_YEAR,
    MIN_STABILITY_PERIODS,
    NS_PER_DAY,
    BandPoint,
    CertificateAnalysis,
    ChannelAnalysis,
    ChannelInput,
    ControlBaseline,
    DriftSummary,
    PeriodPoint,
    StandardInput,
    StandardResult,
    ToleranceNow,
    ViolationRecord,
    date_ns,
    days,
    iso,
    ns,
)
from gateway.standards.tolerance import Limits, crossing_dates, curve, tolerance_limits


def _summary(
    fit: DriftFit,
    nominal: float,
    now_days: float,
    limits: Limits | None,
    options: StandardsConfig,
    u_systematic: float,
) -> DriftSummary:
    prediction = fit.predict(now_days, options.confidence)
    k = prediction.coverage_factor
    slope = next((c for c in fit.coefficients if c.name == "slope"), None)
    per_year = slope.value * DAYS_PER_YEAR if slope is not None else None
    u_per_year = slope.standard_uncertainty * DAYS_PER_YEAR if slope is not None else None
    interval = None
    if per_year is not None and u_per_year is not None:
        interval = (per_year - k * u_per_year, per_year + k * u_per_year)
    crossing = None
    if limits is not None:
        start = max(now_days, fit.x_max)
        crossing = crossing_dates(fit, limits, start, start + options.horizon_days, k, u_systematic)
    span = max(fit.x_max - fit.x_min, 1.0)
    xs = np.linspace(fit.x_min, max(now_days, fit.x_max) + 0.2 * span, BAND_POINTS)
    values, u_fit = curve(fit, xs)
    u_curve = np.hypot(u_fit, u_systematic)
    u_pred = np.hypot(u_curve, fit.u_new)
    band = [
        BandPoint(
            ts_ns=ns(float(x)),
            value=float(v),
            ci_low=float(v - k * c),
            ci_high=float(v + k * c),
            pi_low=float(v - k * p),
            pi_high=float(v + k * p),
        )
        for x, v, c, p in zip(xs, values, u_curve, u_pred, strict=True)
    ]
    return DriftSummary(
        n=fit.n,
        model=fit.model,
        fit=fit,
        slope_per_year=per_year,
        u_slope_per_year=u_per_year,
        slope_interval_per_year=interval,
        slope_ppm_per_year=per_year / nominal * 1e6 if per_year is not None and nominal else None,
        coverage_factor=k,
        u_systematic=u_systematic,
        value_now=prediction.value,
        u_fit_now=math.hypot(prediction.u_fit, u_systematic),
        u_prediction_now=math.hypot(prediction.u_prediction, u_systematic),
        crossing=crossing,
        band=band,
    )


# -- certificates --------------------------------------------------------------------------------


def analyse_certificates(
    data: StandardInput, limits: Limits | None, notes: list[str]
) -> CertificateAnalysis:
    """The reference value now, from the certificate history."""
    certificates = sorted(data.certificates, key=lambda c: c.calibration_ns)
    if not certificates:
        notes.append("no certificate: no reference value")
        return CertificateAnalysis(
            n=0, latest_number=None, latest_calibration_ns=None, due_ns=None, reference=None,
            reference_u=None, reference_expanded_u=None, k=None, reference_from=None, drift=None,
        )  # fmt: skip
    latest = certificates[-1]
    drift = None
    if len(certificates) >= 3:
        try:
            fit = fit_drift(
                [days(c.calibration_ns) for c in certificates],
                [c.value for c in certificates],
                [c.expanded_uncertainty / c.coverage_factor for c in certificates],
                model=data.certificate_model,
                x_kind="date",
            )
            drift = _summary(fit, data.nominal, days(data.now_ns), limits, data.options, 0.0)
        except AnalyticsError as exc:
            notes.append(f"certificates: no drift fit: {exc}")
    else:
        notes.append(
            f"{len(certificates)} certificate(s): the latest certified value is the reference "
            "(a drift model needs 3)"
        )
    if drift is not None:
        k, reference, reference_u = drift.coverage_factor, drift.value_now, drift.u_prediction_now
    else:
        k, reference = latest.coverage_factor, latest.value
        reference_u = latest.expanded_uncertainty / latest.coverage_factor
    return CertificateAnalysis(
        n=len(certificates),
        latest_number=latest.number,
        latest_calibration_ns=latest.calibration_ns,
        due_ns=latest.due_ns,
        reference=reference,
        reference_u=reference_u,
        reference_expanded_u=k * reference_u if drift is not None else latest.expanded_uncertainty,
        k=k,
        reference_from="fit" if drift is not None else "latest certificate",
        drift=drift,
    )


# -- monitored channels --------------------------------------------------------------------------


def pooled_sd(periods: Sequence[PeriodStat], min_count: int) -> float | None:
    """The pooled within-period standard deviation √(Σ m2 / Σ (n - 1)) of the periods used."""
    used = [p for p in periods if p.n >= min_count and p.n > 1]
    dof = sum(p.n - 1 for p in used)
    return math.sqrt(sum(p.m2 for p in used) / dof) if dof else None


def _points(channel: ChannelInput, min_count: int) -> list[PeriodPoint]:
    """Period means in the standard's unit. Their Type A uncertainty is the *pooled* standard
    deviation over √n: one instrument's noise, estimated from every period, so a period whose
    few readings happen to agree does not get a falsely small uncertainty (and a large weight)."""
    link = channel.link
    scale, offset = link.scale, link.offset
    pooled = pooled_sd(channel.periods, min_count)
    points = []
    for period in channel.periods:
        if period.n < min_count:
            continue
        u_mean = abs(scale) * pooled / math.sqrt(period.n) if pooled is not None else None
        u_b = abs(scale) * period.u_b if period.u_b is not None else None
        parts = [u for u in (u_mean, u_b) if u is not None]
        points.append(
            PeriodPoint(
                start_ns=period.start_ns,
                ts_ns=period.mean_ns,
                n=period.n,
                mean=scale * period.mean + offset,
                u_mean=u_mean,
                u=math.sqrt(sum(u * u for u in parts)) if parts else None,
                residual=None,
            )
        )
    return points


def _latest_run(points: Sequence[PeriodPoint], period_ns: int) -> list[PeriodPoint]:
    run: list[PeriodPoint] = []
    for point in reversed(points):
        if run and run[-1].start_ns - point.start_ns != period_ns:
            break
        run.append(point)
    return list(reversed(run))


def control_signals(
    report: ControlReport,
    points: Sequence[PeriodPoint],
    channel: str,
    only: set[int] | None = None,
) -> list[ViolationRecord]:
    """The Nelson, EWMA and CUSUM signals of a control report on ``points`` (at the indices in
    ``only``, or all), named in English and Vietnamese."""

    def wanted(index: int) -> bool:
        return only is None or index in only

    signals = [
        ViolationRecord(
            rule=f"nelson-{violation.rule}",
            ts_ns=points[violation.index].ts_ns,
            channel=channel,
            name=violation.name,
            name_vi=violation.name_vi,
        )
        for violation in report.violations
        if wanted(violation.index)
    ]
    signals += [
        ViolationRecord(
            rule="ewma",
            ts_ns=points[index].ts_ns,
            channel=channel,
            name="EWMA beyond its control limits",
            name_vi="EWMA vượt giới hạn kiểm soát",
        )
        for index in report.ewma.signals
        if wanted(index)
    ]
    signals += [
        ViolationRecord(
            rule="cusum",
            ts_ns=points[signal.index].ts_ns,
            channel=channel,
            name=f"CUSUM beyond its decision interval ({signal.side})",
            name_vi="CUSUM vượt khoảng quyết định "
            f"({'phía trên' if signal.side == 'above' else 'phía dưới'})",
        )
        for signal in report.cusum.signals
        if wanted(signal.index)
    ]
    return signals


def in_window(data: StandardInput, points: Sequence[PeriodPoint]) -> list[PeriodPoint]:
    """The points inside the analysis window (a dated baseline may reach further back)."""
    period_ns = round(data.period_s * 1e9)
    window_start = data.now_ns - round(data.options.window_days * NS_PER_DAY)
    window_start -= window_start % period_ns
    return [p for p in points if p.start_ns >= window_start]


def _dated_chart(
    data: StandardInput,
    points: list[PeriodPoint],
    dated: tuple[date, date],
    label: str,
    notes: list[str],
) -> tuple[
    list[PeriodPoint],
    tuple[float, float, ControlBaseline, list[ViolationRecord]] | None,
]:
    """The control chart against a dated baseline: a drift model of the baseline periods alone
    (so nothing that arrives later moves it), the residuals of every period from the baseline's
    start about it, centre and sigma from the baseline's residuals. Returns the points with
    their ``control`` value set, and (centre, sigma, baseline, recent signals) or None."""
    start_ns = date_ns(dated[0])
    end_ns = date_ns(dated[1] + timedelta(days=1))
    base = [p for p in points if start_ns <= p.start_ns < end_ns]
    text = f"{dated[0].isoformat()}..{dated[1].isoformat()}"
    if len(base) < 3:
        notes.append(
            f"control chart: the baseline {text} holds {len(base)} period(s) with data; it needs 3"
        )
        return points, None
    weights = [p.u_mean for p in base]
    try:
        fit = fit_drift(
            [days(p.ts_ns) for p in base],
            [p.mean for p in base],
            None if any(w is None or w <= 0.0 for w in weights) else weights,  # type: ignore[arg-type]
            model=data.monitor_model,
            x_kind="date",
        )
        first = next(i for i, p in enumerate(points) if p.start_ns >= start_ns)
        charted = points[first:]
        values, _ = curve(fit, np.asarray([days(p.ts_ns) for p in charted]))
        controls = [p.mean - float(v) for p, v in zip(charted, values, strict=True)]
        report = control_report(controls, len(base))
    except AnalyticsError as exc:
        notes.append(f"no control chart (baseline {text}): {exc}")
        return points, None
    points = points[:first] + [
        PeriodPoint.model_construct(**{**p.__dict__, "control": c})
        for p, c in zip(charted, controls, strict=True)
    ]
    charted = points[first:]
    recent = set(range(len(charted) - data.options.recent_periods, len(charted)))
    recent = {i for i in recent if i >= len(base)}
    baseline = ControlBaseline(
        rule="dated",
        start=dated[0].isoformat(),
        end=dated[1].isoformat(),
        first_ns=base[0].ts_ns,
        last_ns=base[-1].ts_ns,
        periods=len(base),
    )
    signals = control_signals(report, charted, label, recent)
    return points, (report.limits.center, report.limits.sigma, baseline, signals)


def analyse_channel(
    data: StandardInput, channel: ChannelInput, limits: Limits | None
) -> ChannelAnalysis:
    """Drift, control chart and stability of one monitored channel."""
    options = data.options
    link = channel.link
    label = f"{channel.site}:{link.agent}/{link.instrument}/{link.channel}"
    period_ns = round(data.period_s * 1e9)
    notes: list[str] = []
    points = _points(channel, options.min_period_readings)
    dated = data.baseline_dates()
    before_window: list[PeriodPoint] = []
    if dated is not None:  # the service reads back to the baseline's start: keep only the window
        inside = in_window(data, points)
        before_window, points = points[: len(points) - len(inside)], inside
    latest = points[-1] if points else None
    drift: DriftSummary | None = None
    u_systematic = 0.0
    if len(points) >= 3:
        u_bs = [abs(link.scale) * p.u_b for p in channel.periods if p.u_b is not None]
        u_systematic = float(np.mean(u_bs)) if u_bs else 0.0
        x = [days(p.ts_ns) for p in points]
        y = [p.mean for p in points]
        weights = [p.u_mean for p in points]
        u = None if any(w is None or w <= 0.0 for w in weights) else weights
        try:
            fit = fit_drift(x, y, u, model=data.monitor_model, x_kind="date")  # type: ignore[arg-type]
            drift = _summary(fit, data.nominal, days(data.now_ns), limits, options, u_systematic)
            values, _ = curve(fit, np.asarray(x))
            points = [
                PeriodPoint.model_construct(**{**p.__dict__, "residual": p.mean - float(v)})
                for p, v in zip(points, values, strict=True)
            ]
        except AnalyticsError as exc:
            notes.append(f"no drift fit: {exc}")
    else:
        notes.append(f"{len(points)} period(s) with data: a drift fit needs 3")
    violations: list[ViolationRecord] = []
    center = sigma = None
    control_baseline: ControlBaseline | None = None
    baseline = options.baseline_periods
    if dated is not None:
        # The result keeps the baseline's periods from before the window: the chart shows them.
        points, chart = _dated_chart(data, before_window + points, dated, label, notes)
        if chart is not None:
            center, sigma, control_baseline, violations = chart
    elif drift is not None and len(points) > baseline:
        residuals = [p.residual or 0.0 for p in points]
        try:
            report = control_report(residuals, baseline)
            center, sigma = report.limits.center, report.limits.sigma
            recent = set(range(len(points) - options.recent_periods, len(points)))
            violations = control_signals(report, points, label, recent)
            control_baseline = ControlBaseline(
                rule="first_periods",
                start=None,
                end=None,
                first_ns=points[0].ts_ns,
                last_ns=points[baseline - 1].ts_ns,
                periods=baseline,
            )
        except AnalyticsError as exc:
            notes.append(f"no control chart: {exc}")
    elif drift is not None:
        notes.append(
            f"control chart: {len(points)} of the {baseline + 1} periods needed "
            f"(baseline {baseline})"
        )
    stability = None
    run = _latest_run(points[len(before_window) :], period_ns)
    if len(run) >= MIN_STABILITY_PERIODS:
        try:
            stability = allan_deviation(
                [p.mean for p in run], 1.0 / data.period_s, kind="oadev", taus="octave"
            )
        except AnalyticsError as exc:
            notes.append(f"no Allan deviation: {exc}")
    return ChannelAnalysis(
        channel=label,
        site=channel.site,
        agent=link.agent,
        instrument=link.instrument,
        channel_name=link.channel,
        periods_total=len(channel.periods),
        periods_used=len(points) - len(before_window),
        measured=latest.mean if latest else None,
        measured_u=latest.u if latest else None,
        measured_ts_ns=latest.ts_ns if latest else None,
        drift=drift,
        control_center=center,
        control_sigma=sigma,
        control_baseline=control_baseline,
        violations=sorted(violations, key=lambda v: (v.ts_ns, v.rule)),
        stability=stability,
        points=points,
        notes=notes,
    )


# -- one standard --------------------------------------------------------------------------------


def evaluate(data: StandardInput) -> StandardResult:
    """Evaluate one standard now (pure: same input, same result)."""
    notes: list[str] = []
    certificates = sorted(data.certificates, key=lambda c: c.calibration_ns)
    limits = tolerance_limits(data.tolerance, data.nominal, certificates)
    if data.tolerance is None:
        notes.append("no tolerance registered: no out-of-tolerance prediction")
    elif limits is None:
        notes.append("the tolerance is centred on the latest certificate, and there is none")
    tolerance_now = None
    if limits is not None:
        low, high = limits.at(np.array([days(data.now_ns)]))
        tolerance_now = ToleranceNow(
            centre=limits.centre,
            low=float(low[0]),
            high=float(high[0]),
            around=limits.tolerance.around,
        )
    certificate_analysis = analyse_certificates(
        dataclasses.replace(data, certificates=certificates), limits, notes
    )
    channels = [analyse_channel(data, channel, limits) for channel in data.channels]
    if not data.channels:
        notes.append("no channel linked: nothing is monitored")
    with_data = [c for c in channels if c.measured_ts_ns is not None]
    newest = max(with_data, key=lambda c: c.measured_ts_ns or 0) if with_data else None
    candidates: list[tuple[int, str]] = []
    if certificate_analysis.drift and certificate_analysis.drift.crossing:
        earliest = certificate_analysis.drift.crossing.earliest_ns
        if earliest is not None:
            candidates.append((earliest, "certificates"))
    for channel in channels:
        if channel.drift and channel.drift.crossing and channel.drift.crossing.earliest_ns:
            candidates.append((channel.drift.crossing.earliest_ns, channel.channel))
    predicted = min(candidates) if candidates else None
    due = certificate_analysis.due_ns
    recommended_options = [t for t in (due, predicted[0] if predicted else None) if t is not None]
    violations = sorted(
        (v for c in channels for v in c.violations), key=lambda v: (v.ts_ns, v.rule)
    )
    return StandardResult(
        standard_id=data.standard_id,
        site=data.site,
        ts_ns=data.now_ns,
        evaluated_at=iso(data.now_ns) or "",
        unit=data.unit,
        nominal=data.nominal,
        tolerance=tolerance_now,
        certificates=certificate_analysis,
        channels=channels,
        measured=newest.measured if newest else None,
        measured_u=newest.measured_u if newest else None,
        measured_ts_ns=newest.measured_ts_ns if newest else None,
        predicted_out_of_tolerance_ns=predicted[0] if predicted else None,
        predicted_out_of_tolerance_from=predicted[1] if predicted else None,
        calibration_due_ns=due,
        recommended_recalibration_ns=min(recommended_options) if recommended_options else None,
        violations=violations,
        notes=notes + [f"{c.channel}: {note}" for c in channels for note in c.notes],
    )
