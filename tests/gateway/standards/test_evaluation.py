"""One evaluation of a standard, on synthetic histories whose truth is known: honest intervals
(coverage over many noise draws), out-of-tolerance dates, references from certificates, control
signals, and the event handed to the alert engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from gateway.analytics import period_means
from gateway.analytics.aggregate import period_stats
from gateway.standards.config import StandardsConfig
from gateway.standards.evaluation import evaluate
from gateway.standards.models import ChannelLink, Tolerance
from gateway.standards.results import NS_PER_DAY, CertificateInput, ChannelInput, StandardInput

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
YEAR_NS = int(365.25 * NS_PER_DAY)
NOMINAL = 10.0
OFFSET_PPM, DRIFT_PPM, NOISE_V = 0.8, 1.0, 0.2e-6
LINK = ChannelLink(agent="bench-1", instrument="zener-10v", channel="voltage", unit="V")


def true_value(t_ns: np.ndarray | int) -> np.ndarray:
    years = (np.asarray(t_ns, dtype=np.float64) - T0) / YEAR_NS
    return np.asarray(NOMINAL * (1 + (OFFSET_PPM + DRIFT_PPM * years) * 1e-6))


def simulated_year(
    seed: int, u: float = float("nan"), readings: int = 3000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(T0, T0 + YEAR_NS, readings)).astype(np.int64)
    values = true_value(ts) + rng.normal(0.0, NOISE_V, ts.size)
    return ts, values, np.full(ts.size, u)


def standard(
    channels: Sequence[ChannelInput] = (),
    certificates: Sequence[CertificateInput] = (),
    tolerance: str | None = "±5 ppm",
    now_ns: int = T0 + YEAR_NS + NS_PER_DAY,
    options: StandardsConfig | None = None,
) -> StandardInput:
    return StandardInput(
        standard_id="Z10-01",
        site="lab-1",
        unit="V",
        nominal=NOMINAL,
        tolerance=Tolerance.model_validate(tolerance) if tolerance else None,
        certificates=list(certificates),
        channels=list(channels),
        certificate_model="auto",
        monitor_model="linear",
        period_s=86_400.0,
        now_ns=now_ns,
        options=options or StandardsConfig(),
    )


def monitored(seed: int, u: float = float("nan")) -> ChannelInput:
    ts, values, us = simulated_year(seed, u)
    return ChannelInput(LINK, "lab-1", period_stats(ts, values, us, NS_PER_DAY))


TRUE_CROSSING_NS = T0 + (5.0 - OFFSET_PPM) / DRIFT_PPM * YEAR_NS


def test_intervals_are_honest_over_many_noise_draws() -> None:
    """The 95 % interval of the slope and the interval of the true crossing date contain the
    truth in about 95 % of simulated years (80 draws: 70-80 is the binomial 99.9 % range)."""
    slope_hits = crossing_hits = 0
    draws = 80
    for seed in range(draws):
        result = evaluate(standard([monitored(seed)]))
        drift = result.channels[0].drift
        assert drift is not None and drift.crossing is not None
        low, high = drift.slope_interval_per_year or (0.0, 0.0)
        slope_hits += low / NOMINAL * 1e6 <= DRIFT_PPM <= high / NOMINAL * 1e6
        first, last = drift.crossing.bounds_ns
        assert first is not None and last is not None
        crossing_hits += first <= TRUE_CROSSING_NS <= last
    assert 70 <= slope_hits <= 80
    assert 70 <= crossing_hits <= 80


def test_one_year_of_a_zener() -> None:
    result = evaluate(standard([monitored(7, u=5e-7)]))
    channel = result.channels[0]
    drift = channel.drift
    assert drift is not None and drift.crossing is not None
    assert drift.slope_ppm_per_year == pytest.approx(DRIFT_PPM, abs=0.01)
    # Plan-by date (prediction interval) ≤ likely date (curve) ≤ the true date's upper bound.
    crossing = drift.crossing
    assert crossing.earliest_ns is not None and crossing.likely_ns is not None
    assert crossing.earliest_ns <= crossing.likely_ns <= (crossing.bounds_ns[1] or 0)
    assert crossing.side == "upper"
    assert abs(crossing.likely_ns - TRUE_CROSSING_NS) < 30 * NS_PER_DAY
    # The channel's own uncertainty (0.5 µV, common to every reading) widens the bands, not the
    # slope: the true crossing lies inside.
    assert drift.u_systematic == pytest.approx(5e-7)
    first, last = crossing.bounds_ns
    assert first is not None and last is not None and first <= TRUE_CROSSING_NS <= last
    assert result.predicted_out_of_tolerance_ns == crossing.earliest_ns
    assert result.predicted_out_of_tolerance_from == "lab-1:bench-1/zener-10v/voltage"
    # Measured: the latest daily mean, u combining Type A (pooled) and the readings' own u.
    latest = channel.points[-1]
    assert result.measured == latest.mean and result.measured_ts_ns == latest.ts_ns
    assert latest.u_mean is not None and result.measured_u is not None
    assert result.measured_u == pytest.approx(np.hypot(latest.u_mean, 5e-7))
    assert channel.stability is not None and channel.stability.points[0].tau == 86_400.0
    assert result.tolerance is not None
    assert (result.tolerance.low, result.tolerance.high) == pytest.approx((9.99995, 10.00005))


def test_certificates_give_the_reference_value() -> None:
    certificates = [
        CertificateInput(
            f"C{i}",
            T0 - (3 - i) * YEAR_NS,
            None,
            float(true_value(T0 - (3 - i) * YEAR_NS)),
            4e-7,
            2.0,
        )
        for i in range(4)
    ]
    certificates[-1] = CertificateInput(
        "C3", certificates[-1].calibration_ns, T0 + YEAR_NS, certificates[-1].value, 4e-7, 2.0
    )
    now = T0 + YEAR_NS // 2
    result = evaluate(standard(certificates=certificates, now_ns=now))
    analysis = result.certificates
    assert analysis.reference_from == "fit" and analysis.drift is not None
    assert analysis.drift.model == "linear"
    assert analysis.reference == pytest.approx(float(true_value(now)), abs=1e-8)
    assert analysis.k is not None and analysis.reference_expanded_u is not None
    assert analysis.reference_expanded_u == pytest.approx(analysis.k * (analysis.reference_u or 0))
    assert result.calibration_due_ns == T0 + YEAR_NS
    assert result.recommended_recalibration_ns == T0 + YEAR_NS
    event = result.event()
    assert (event.reference, event.k, event.calibration_due_ns) == (
        analysis.reference,
        analysis.k,
        T0 + YEAR_NS,
    )
    assert event.measured is None and "no channel linked" in " ".join(result.notes)
    # With fewer than three certificates the latest one is the reference, as certified.
    few = evaluate(standard(certificates=certificates[-2:], now_ns=now)).certificates
    assert (few.reference_from, few.reference, few.reference_expanded_u, few.k) == (
        "latest certificate",
        certificates[-1].value,
        4e-7,
        2.0,
    )


def test_tolerance_growing_per_year_from_the_latest_calibration() -> None:
    calibrated = T0 - NS_PER_DAY
    certificates = [CertificateInput("C1", calibrated, None, 10.0000080, 4e-7, 2.0)]
    result = evaluate(
        standard(
            [monitored(3)],
            certificates,
            tolerance="±1 µV/V + 2 µV/V/year",
            now_ns=calibrated + YEAR_NS,
        )
    )
    assert result.tolerance is not None and result.tolerance.around == "certificate"
    assert result.tolerance.centre == 10.0000080
    assert result.tolerance.high - result.tolerance.centre == pytest.approx(3e-5, rel=1e-9)
    # The band widens at 2 ppm/year, the Zener drifts 1 ppm/year: it never leaves.
    drift = result.channels[0].drift
    assert drift is not None and drift.crossing is not None
    assert drift.crossing.earliest_ns is None


def test_a_step_is_signalled_in_the_recent_periods_only() -> None:
    ts, values, us = simulated_year(11)
    clean = evaluate(
        standard([ChannelInput(LINK, "lab-1", period_stats(ts, values, us, NS_PER_DAY))])
    )
    assert clean.violations == [] and clean.event().violations == ()
    stepped = values + np.where(ts > T0 + YEAR_NS - 5 * NS_PER_DAY, 2e-7, 0.0)
    result = evaluate(
        standard([ChannelInput(LINK, "lab-1", period_stats(ts, stepped, us, NS_PER_DAY))])
    )
    assert result.violations, "a 0.2 µV step over the last 5 days must be signalled"
    recent_start = result.channels[0].points[-7].ts_ns
    assert all(v.ts_ns >= recent_start for v in result.violations)
    assert {v.rule for v in result.violations} & {"nelson-1", "nelson-5", "cusum", "ewma"}
    event = result.event()
    assert [(v.rule, v.ts_ns) for v in event.violations] == [
        (v.rule, v.ts_ns) for v in result.violations
    ]


def test_conversion_of_a_channel_through_a_divider() -> None:
    ts, values, us = simulated_year(5)
    link = LINK.model_copy(update={"scale": 10.0, "offset": 1e-6})
    result = evaluate(
        standard([ChannelInput(link, "lab-1", period_stats(ts, values / 10.0, us, NS_PER_DAY))])
    )
    drift = result.channels[0].drift
    assert drift is not None and drift.slope_ppm_per_year == pytest.approx(DRIFT_PPM, abs=0.02)
    assert result.measured == pytest.approx(float(true_value(ts[-1])) + 1e-6, abs=1e-6)


def test_aggregate_matches_period_means() -> None:
    ts, values, us = simulated_year(2, u=3e-7, readings=500)
    ours = period_stats(ts[::-1].copy(), values[::-1].copy(), us, NS_PER_DAY)
    theirs = period_means(ts, values).periods
    assert [p.start_ns for p in ours] == [p.start_ns for p in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.n == reference.n and mine.mean == pytest.approx(reference.mean, rel=1e-15)
        assert (mine.first_ns, mine.last_ns) == (reference.first_ns, reference.last_ns)
        if reference.sd is not None:
            assert mine.sd == pytest.approx(reference.sd, rel=1e-9)
        assert mine.first_ns <= mine.mean_ns <= mine.last_ns
        assert mine.u_b == pytest.approx(3e-7)


def test_too_little_data_says_why() -> None:
    ts, values, us = simulated_year(1, readings=4)
    result = evaluate(
        standard(
            [ChannelInput(LINK, "lab-1", period_stats(ts, values, us, NS_PER_DAY))], tolerance=None
        )
    )
    assert result.channels[0].drift is None
    notes = " ".join(result.notes)
    assert "a drift fit needs 3" in notes and "no tolerance registered" in notes
    assert result.predicted_out_of_tolerance_ns is None
