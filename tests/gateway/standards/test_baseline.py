"""A dated control-chart baseline: chosen by the metrologist, frozen (the limits do not move as
new periods arrive or the window slides), reported in the result, importable and validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.analytics.aggregate import period_stats
from gateway.standards.config import StandardsConfig
from gateway.standards.evaluation import evaluate
from gateway.standards.models import AnalysisOverrides
from gateway.standards.results import (
    NS_PER_DAY,
    ChannelInput,
    StandardResult,
    baseline_dates,
    date_ns,
)
from tests.gateway.standards.test_evaluation import LINK, T0, YEAR_NS, simulated_year, standard

BASELINE = (date(2026, 1, 1), date(2026, 6, 30))
BASELINE_DAYS = 181


def run(
    ts: np.ndarray,
    values: np.ndarray,
    until_ns: int,
    window_days: float,
    baseline: tuple[date, date] | None = BASELINE,
) -> StandardResult:
    """Evaluate at ``until_ns`` with the readings before it (what the service would read)."""
    keep = ts < until_ns
    periods = period_stats(ts[keep], values[keep], np.full(int(keep.sum()), np.nan), NS_PER_DAY)
    data = standard(
        [ChannelInput(LINK, "lab-1", periods)],
        now_ns=until_ns,
        options=StandardsConfig(window_days=window_days),
    )
    if baseline is not None:
        data = replace(data, baseline=baseline)
    return evaluate(data)


def test_dated_limits_stay_frozen_as_data_arrive_and_the_window_slides() -> None:
    ts, values, _ = simulated_year(21)
    # 270 days in, the 200-day window no longer holds the baseline's first months...
    early = run(ts, values, T0 + 270 * NS_PER_DAY, window_days=200)
    # ...and a year in, the window has moved 95 days on and 95 more periods have arrived.
    late = run(ts, values, T0 + YEAR_NS, window_days=200)
    for result in (early, late):
        channel = result.channels[0]
        baseline = channel.control_baseline
        assert baseline is not None and baseline.rule == "dated"
        assert (baseline.start, baseline.end) == ("2026-01-01", "2026-06-30")
        assert baseline.periods == BASELINE_DAYS
        assert date_ns(BASELINE[0]) <= baseline.first_ns < baseline.last_ns
        assert baseline.last_ns < date_ns(date(2026, 7, 1))
        # The drift fit uses the window only; the baseline's older periods are kept for the chart.
        assert channel.periods_used < len(channel.points)
        assert channel.points[0].ts_ns < result.ts_ns - 200 * NS_PER_DAY
    first, second = early.channels[0], late.channels[0]
    assert first.control_center == second.control_center
    assert first.control_sigma == second.control_sigma
    assert first.control_baseline == second.control_baseline
    # Control values of periods both evaluations chart are the same numbers.
    shared = {p.start_ns: p.control for p in first.points if p.control is not None}
    assert shared and all(
        shared[p.start_ns] == p.control for p in second.points if p.start_ns in shared
    )
    # The default rule (first periods of the window) moves with the window: the contrast.
    moving_early = run(ts, values, T0 + 270 * NS_PER_DAY, window_days=200, baseline=None)
    moving_late = run(ts, values, T0 + YEAR_NS, window_days=200, baseline=None)
    a, b = moving_early.channels[0], moving_late.channels[0]
    assert a.control_baseline is not None and a.control_baseline.rule == "first_periods"
    assert a.control_baseline.periods == 20 and a.control_sigma != b.control_sigma


def test_a_step_after_the_baseline_fires_a_rule() -> None:
    ts, values, _ = simulated_year(11)
    now = T0 + YEAR_NS
    clean = run(ts, values, now, window_days=730)
    assert clean.channels[0].control_baseline is not None
    assert clean.violations == []
    stepped = values + np.where(ts > now - 5 * NS_PER_DAY, 2e-7, 0.0)
    result = run(ts, stepped, now, window_days=730)
    assert {v.rule for v in result.violations} & {"nelson-1", "nelson-5", "cusum", "ewma"}
    assert all(v.ts_ns >= now - 7 * NS_PER_DAY for v in result.violations)
    # The baseline itself did not move with the step.
    assert result.channels[0].control_sigma == clean.channels[0].control_sigma


def test_a_baseline_without_enough_periods_says_so() -> None:
    ts, values, _ = simulated_year(3)
    result = run(ts, values, T0 + YEAR_NS, 730, baseline=(date(2025, 1, 1), date(2025, 1, 31)))
    assert result.channels[0].control_center is None
    assert result.channels[0].control_baseline is None
    assert any("baseline 2025-01-01..2025-01-31 holds 0 period(s)" in n for n in result.notes)


def test_the_standards_own_dates_take_precedence_over_the_gateways() -> None:
    gateway = StandardsConfig(baseline_start="2025-01-01", baseline_end="2025-12-31")
    own = AnalysisOverrides(baseline_start="2026-01-01", baseline_end="2026-06-30")
    assert baseline_dates(own, gateway) == BASELINE
    assert baseline_dates(AnalysisOverrides(), gateway) == (date(2025, 1, 1), date(2025, 12, 31))
    assert baseline_dates(AnalysisOverrides(), StandardsConfig()) is None


@pytest.mark.parametrize("model", [StandardsConfig, AnalysisOverrides])
def test_an_end_before_the_start_is_refused_naming_the_field(model: type) -> None:
    with pytest.raises(ValidationError) as caught:
        model(baseline_start="2026-03-01", baseline_end="2026-02-01")
    (error,) = caught.value.errors()
    assert error["loc"] == ("baseline_end",)
    assert "before baseline_start 2026-03-01" in error["msg"]
    with pytest.raises(ValidationError, match="given together"):
        model(baseline_start="2026-03-01")


def test_the_dates_import_from_yaml_and_round_trip_through_csv(
    standards: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "z.yaml"
    source.write_text(
        "standards:\n"
        "  - {id: Z10-05, kind: dc_voltage, nominal: 10, unit: V, owner_lab: VMI,\n"
        "     analysis: {baseline_start: 2026-01-01, baseline_end: 2026-06-30}}\n",
        encoding="utf-8",
    )
    assert standards("import", str(source)) == 0
    exported = tmp_path / "s.csv"
    assert standards("export", "--format", "csv", "-o", str(exported)) == 0
    header, row = exported.read_text(encoding="utf-8").splitlines()[:2]
    assert header.endswith(",baseline_start,baseline_end")
    assert row.endswith(",2026-01-01,2026-06-30")
    capsys.readouterr()
    assert standards("import", str(exported)) == 0
    assert "1 unchanged" in capsys.readouterr().out
