"""The chart view of an evaluation (GET /standards/{id}/chart): the fits run on to the dates they
forecast with the evaluation's own band, the tolerance covers the time axis, the control chart
marks every signal of the window from the evaluation's baseline."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.standards.chart import chart_view
from gateway.standards.config import StandardsConfig
from gateway.standards.evaluation import evaluate
from gateway.standards.registry import StandardRecord
from gateway.standards.results import CertificateInput
from tests.gateway.standards.test_evaluation import (
    NOMINAL,
    T0,
    YEAR_NS,
    monitored,
    standard,
    true_value,
)

CERTIFICATES = [
    CertificateInput(
        f"VMI-{i}", T0 - (3 - i) * YEAR_NS, T0 - (2 - i) * YEAR_NS, float(v), 4e-7, 2.0
    )
    for i, v in enumerate(true_value(np.array([T0 - 3 * YEAR_NS, T0 - 2 * YEAR_NS, T0 - YEAR_NS])))
]


def record(tolerance: str = "±5 ppm") -> StandardRecord:
    return StandardRecord.model_validate(
        {
            "id": "Z10-01",
            "kind": "dc_voltage",
            "nominal": NOMINAL,
            "unit": "V",
            "owner_lab": "VMI",
            "tolerance": tolerance,
            "channels": [
                {"agent": "bench-1", "instrument": "zener-10v", "channel": "voltage", "unit": "V"}
            ],
            "created_ns": 0,
            "updated_ns": 0,
            "certificates": [
                {
                    "id": i + 1,
                    "standard": "Z10-01",
                    "number": c.number,
                    "issuer": "VMI",
                    "calibration_date": "2023-01-01",
                    "calibration_ns": c.calibration_ns,
                    "due_date": None,
                    "due_ns": c.due_ns,
                    "value": c.value,
                    "expanded_uncertainty": c.expanded_uncertainty,
                    "coverage_factor": c.coverage_factor,
                    "conditions": {},
                    "notes": None,
                    "traceable_to": [],
                    "file": None,
                    "created_ns": 0,
                    "updated_ns": 0,
                }
                for i, c in enumerate(CERTIFICATES)
            ],
        }
    )


def test_fits_run_to_their_forecast_and_the_tolerance_spans_the_axis() -> None:
    options = StandardsConfig()
    result = evaluate(standard([monitored(1)], CERTIFICATES, options=options))
    view = chart_view(result.model_dump_json(), record(), options)
    assert [p.number for p in view.certificates] == ["VMI-0", "VMI-1", "VMI-2"]
    by_source = {fit.source: fit for fit in view.fits}
    certificates_fit, channel_fit = by_source["certificates"], by_source["channel"]
    # The certificates' fit reaches past its plan-by date, where its band touches +5 ppm.
    crossing = certificates_fit.crossing
    assert crossing is not None and crossing.earliest_ns is not None
    assert result.certificates.drift is not None
    assert certificates_fit.curve[-1].ts_ns >= crossing.earliest_ns
    limit = NOMINAL * (1 + 5e-6)
    before = [p.high for p in certificates_fit.curve if p.ts_ns < crossing.earliest_ns]
    after = [p.high for p in certificates_fit.curve if p.ts_ns > crossing.earliest_ns]
    assert max(before) < limit <= after[0]
    # Inside the evaluation's own range the band is the evaluation's band.
    band = result.certificates.drift.band
    first = certificates_fit.curve[0]
    assert (first.ts_ns, first.value, first.low) == pytest.approx(
        (band[0].ts_ns, band[0].value, band[0].pi_low), rel=1e-12
    )
    assert channel_fit.channel == "lab-1:bench-1/zener-10v/voltage"
    assert view.predicted_out_of_tolerance_ns == result.predicted_out_of_tolerance_ns
    # The tolerance limits cover the axis, which holds every date drawn.
    assert view.tolerance == "±5.0 ppm"
    limits = view.tolerance_limits
    ms = 1_000_000  # days as floats keep about a microsecond
    assert abs(limits[0].ts_ns - view.start_ns) < ms and abs(limits[-1].ts_ns - view.end_ns) < ms
    assert [p.high for p in limits] == pytest.approx([limit] * len(limits))
    assert view.start_ns < CERTIFICATES[0].calibration_ns
    assert view.end_ns > max(p.ts_ns for fit in view.fits for p in fit.curve)
    assert view.value_in_use is not None and view.value_in_use.source == "fit"
    assert len(view.monitored[0].points) == result.channels[0].periods_used


def test_control_chart_marks_every_signal_of_the_window() -> None:
    options = StandardsConfig(recent_periods=1)
    channel = monitored(2)
    # A step of 3 µV in the middle of the year: rule signals long before the recent periods.
    periods = [
        p if i < 150 or i > 200 else p.__class__(**{**p.__dict__, "mean": p.mean + 3e-6})
        for i, p in enumerate(channel.periods)
    ]
    channel = channel.__class__(channel.link, channel.site, periods)
    result = evaluate(standard([channel], options=options))
    view = chart_view(result.model_dump_json(), record(), options)
    [control] = view.control
    analysis = result.channels[0]
    assert analysis.control_center is not None and analysis.control_sigma is not None
    assert control.ucl == pytest.approx(analysis.control_center + 3 * analysis.control_sigma)
    assert len(control.points) == analysis.periods_used
    marked = {v.ts_ns for v in control.violations}
    step = {p.ts_ns for p in analysis.points[150:201]}
    assert marked & step, "the step's signals are on the chart"
    assert len(view.violations) < len(control.violations)  # the evaluation reports recent ones
    assert all(v.name_vi for v in control.violations)


def test_a_dated_baseline_charts_the_residuals_about_the_baselines_fit() -> None:
    from dataclasses import replace
    from datetime import date

    options = StandardsConfig(recent_periods=1)
    channel = monitored(2)
    periods = [  # a step of 3 µV from day 250, long after the baseline
        p if i < 250 else p.__class__(**{**p.__dict__, "mean": p.mean + 3e-6})
        for i, p in enumerate(channel.periods)
    ]
    channel = channel.__class__(channel.link, channel.site, periods)
    data = replace(
        standard([channel], options=options), baseline=(date(2026, 1, 1), date(2026, 4, 30))
    )
    result = evaluate(data)
    view = chart_view(result.model_dump_json(), record(), options)
    [control] = view.control
    analysis = result.channels[0]
    assert analysis.control_baseline is not None and analysis.control_baseline.periods == 120
    assert [p.value for p in control.points] == [p.control for p in analysis.points]
    assert control.center == analysis.control_center
    marked = {v.ts_ns for v in control.violations}
    assert marked & {p.ts_ns for p in analysis.points[250:]}, "the step is on the chart"
