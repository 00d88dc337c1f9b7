"""Control charts: Nelson rules on hand-built series, and the e-Handbook's worked examples.

Sources:
- Nelson, L. S. (1984), "The Shewhart control chart -- tests for special causes", J. Qual.
  Technol. 16(4): the eight rules. Each series below is a quiet background that breaks no rule,
  with one pattern inserted; the test asserts every (rule, point) that fires, across all rules.
- NIST/SEMATECH e-Handbook of Statistical Methods: §6.3.2.2 individuals chart (flow rate;
  centre 50.81, MR̄ 1.8778, UCL 55.8041, LCL 45.8159), §6.3.2.4 EWMA (λ = 0.3, EWMA₀ = 50,
  s = 2.0539, UCL 52.5884, LCL 47.4115, no point out of control), §6.3.2.3 tabular CUSUM
  (target 325, k = 0.3175, h = 4.1959, groups 14-20 out of control). Data in data/*.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gateway.analytics import AnalyticsError, control_report, cusum_chart, ewma_chart
from gateway.analytics.control import (
    NELSON_RULES,
    NELSON_RULES_VI,
    individuals_limits,
    nelson_rules,
)

DATA = Path(__file__).parent / "data"

# Quiet background (centre 0, sigma 1): runs on one side <= 3, monotone runs <= 4 points, no
# alternation, within-1-sigma runs <= 2, beyond-1-sigma runs of 1, nothing beyond 2 sigma.
QUIET = [-0.5, 0.5, 1.5, 0.3, -0.3, -1.5]
BEFORE = QUIET * 2  # the pattern starts at index 12
START = len(BEFORE)


def fired(series: list[float]) -> set[tuple[int, int, int, str | None]]:
    """(rule, index, first_index, side) of every violation of every rule."""
    return {
        (v.rule, v.index, v.first_index, v.side)
        for v in nelson_rules(series, center=0.0, sigma=1.0)
    }


def test_quiet_background_breaks_no_rule() -> None:
    assert fired(QUIET * 20) == set()


def test_rule_1_one_point_beyond_three_sigma() -> None:
    series = BEFORE + [3.5] + QUIET * 2 + [-3.2] + QUIET * 2
    below = START + 1 + 12
    assert fired(series) == {(1, START, START, "above"), (1, below, below, "below")}


def test_rule_1_is_strictly_beyond() -> None:
    assert fired(BEFORE + [3.0] + QUIET * 2) == set()


def test_rule_2_nine_in_a_row_on_one_side() -> None:
    pattern = [0.5, 0.6, 0.2, 0.4, 0.7, 0.3, 0.5, 0.8, 0.2, 0.6]  # ten above
    assert fired(BEFORE + pattern + QUIET * 2) == {
        (2, START + 8, START, "above"),
        (2, START + 9, START + 1, "above"),
    }


def test_rule_2_run_is_broken_by_a_point_on_the_centre_line() -> None:
    pattern = [0.5, 0.6, 0.2, 0.4, 0.0, 0.3, 0.5, 0.8, 0.2, 0.6]
    assert fired(BEFORE + pattern + QUIET * 2) == set()


def test_rule_3_six_points_falling_and_rising() -> None:
    falling = [0.9, 0.6, 0.2, -0.1, -0.4, -0.8]
    rising = [0.0, -0.8, -0.4, -0.1, 0.2, 0.5, 0.9]
    second = START + len(falling) + 12
    series = BEFORE + falling + QUIET * 2 + rising + QUIET * 2
    assert fired(series) == {
        (3, START + 5, START, "falling"),
        (3, second + 6, second + 1, "rising"),
    }


def test_rule_4_fourteen_points_alternating() -> None:
    pattern = [-0.5, 0.5, -1.2, 0.4, -0.6, 1.2, -0.4, 0.6, -1.2, 0.5, -0.5, 1.2, -0.9, -0.6]
    assert fired(BEFORE + pattern + QUIET * 2) == {(4, START + 13, START, None)}


def test_rule_4_needs_fourteen_not_thirteen() -> None:
    pattern = [-0.5, 0.5, -1.2, 0.4, -0.6, 1.2, -0.4, 0.6, -1.2, 0.5, -0.5, -0.9, -0.6]
    assert fired(BEFORE + pattern + QUIET * 2) == set()


def test_rule_5_two_of_three_beyond_two_sigma() -> None:
    above = [2.5, 0.5, 2.3]
    below = [-2.4, -2.2]
    second = START + len(above) + 12
    series = BEFORE + above + QUIET * 2 + below + QUIET * 2
    assert fired(series) == {
        (5, START + 2, START, "above"),
        (5, second + 1, second - 1, "below"),
    }


def test_rule_6_four_of_five_beyond_one_sigma() -> None:
    pattern = [1.2, 1.5, 0.5, 1.3, 1.1]
    assert fired(BEFORE + pattern + QUIET * 2) == {(6, START + 4, START, "above")}


def test_rule_7_fifteen_within_one_sigma() -> None:
    pattern = [0.2, 0.4, -0.1, -0.3, 0.1, 0.5, -0.2, -0.4, 0.3, 0.6, -0.1, -0.5, 0.2, 0.4, -0.2]
    assert fired(BEFORE + pattern + [1.3] + QUIET * 2) == {(7, START + 14, START, None)}


def test_rule_8_eight_beyond_one_sigma_on_either_side() -> None:
    pattern = [0.2, 1.5, -1.5, -1.2, 1.3, 1.6, -1.4, -1.1, 1.2]
    assert fired(BEFORE + pattern + QUIET * 2) == {(8, START + 8, START + 1, None)}


def test_rules_can_be_chosen_and_are_named() -> None:
    series = [*BEFORE, 3.5, 0.5, 0.6, 0.2, 0.4, 0.7, 0.3, 0.5, 0.8, 0.2, 0.6, *QUIET]
    violations = nelson_rules(series, center=0.0, sigma=1.0, rules=[2])
    assert {v.rule for v in violations} == {2}
    assert all(v.name == NELSON_RULES[2] for v in violations)
    assert all(v.name_vi == NELSON_RULES_VI[2] for v in violations)
    assert set(NELSON_RULES_VI) == set(NELSON_RULES)
    with pytest.raises(AnalyticsError, match="no Nelson rule 9"):
        nelson_rules(series, center=0.0, sigma=1.0, rules=[9])


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as handle:
        return list(csv.DictReader(handle))


def test_individuals_limits_match_the_e_handbook_flow_rate_example() -> None:
    rows = read_csv("ehandbook_individuals.csv")
    flow = [float(row["flowrate"]) for row in rows]
    limits = individuals_limits(flow, baseline=len(flow))
    assert limits.center == pytest.approx(50.81, abs=1e-9)
    assert limits.mr_bar == pytest.approx(1.8778, abs=5e-5)
    assert limits.ucl == pytest.approx(55.8041, abs=5e-5)
    assert limits.lcl == pytest.approx(45.8159, abs=5e-5)
    published = [float(row["moving_range_published"]) for row in rows[1:]]
    np.testing.assert_allclose(np.abs(np.diff(flow)), published, atol=1e-9)
    # "The process is in control": no point beyond the limits.
    report = control_report(flow, baseline=len(flow), rules=[1])
    assert report.violations == []
    assert report.moving_range_signals == []


def test_ewma_matches_the_e_handbook_example() -> None:
    rows = read_csv("ehandbook_ewma.csv")
    chart = ewma_chart(
        [float(row["x"]) for row in rows],
        target=50.0,
        sigma=2.0539,
        lambda_=0.3,
        L=3.0,
        limits="asymptotic",
    )
    published = [float(row["ewma_published"]) for row in rows]
    np.testing.assert_allclose(chart.ewma, published, atol=0.005)
    # The handbook rounds sqrt(λ/(2-λ)) to 0.4201 before multiplying: allow that rounding.
    assert chart.ucl[0] == pytest.approx(52.5884, abs=1e-4)
    assert chart.lcl[0] == pytest.approx(47.4115, abs=1e-4)
    assert chart.signals == []


def test_ewma_exact_limits_start_narrow_and_approach_the_asymptote() -> None:
    chart = ewma_chart([0.0] * 50, target=0.0, sigma=1.0, lambda_=0.2, L=3.0)
    assert chart.ucl[0] == pytest.approx(3.0 * 0.2)  # first limit: L·σ·λ
    assert chart.ucl[-1] == pytest.approx(3.0 * np.sqrt(0.2 / 1.8), rel=1e-6)
    shifted = ewma_chart([0.0] * 10 + [1.5] * 20, target=0.0, sigma=1.0)
    assert shifted.signals
    assert shifted.signals[0] > 10


def test_cusum_matches_the_e_handbook_tabular_example() -> None:
    rows = read_csv("ehandbook_cusum.csv")
    # The handbook's k and h are in data units (σ of the group means = 0.635): k = 0.5σ.
    chart = cusum_chart(
        [float(row["x"]) for row in rows], target=325.0, sigma=0.635, k=0.5, h=4.1959 / 0.635
    )
    assert chart.k_value == pytest.approx(0.3175)
    assert chart.h_value == pytest.approx(4.1959)
    # Printed to two decimals; ties such as 14.445 were rounded either way.
    tolerance = 0.005 + 1e-9
    np.testing.assert_allclose(
        chart.upper, [float(r["s_hi_published"]) for r in rows], atol=tolerance
    )
    np.testing.assert_allclose(
        chart.lower, [float(r["s_lo_published"]) for r in rows], atol=tolerance
    )
    # Groups 14 to 20 (indices 13-19) are starred on the upper sum; none on the lower.
    assert [(s.index, s.side) for s in chart.signals] == [(i, "above") for i in range(13, 20)]


def test_control_report_json_is_documented_shape() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(10.0, 0.1, 30), rng.normal(10.5, 0.1, 10)])
    report = control_report(values, baseline=30)
    document = json.loads(report.model_dump_json())
    assert document["format"] == "etalon.drift.chart/1"
    assert set(document) == {
        "format", "n", "limits", "violations", "moving_range_signals", "ewma", "cusum"
    }  # fmt: skip
    # A five-sigma shift after the baseline: rule 1 fires on the shifted points, CUSUM too.
    assert any(v["rule"] == 1 and v["index"] >= 30 for v in document["violations"])
    assert document["cusum"]["signals"][0]["index"] >= 30
    assert type(report).model_validate_json(report.model_dump_json()) == report


def test_baseline_must_leave_a_moving_range() -> None:
    with pytest.raises(AnalyticsError, match="baseline"):
        control_report([1.0, 2.0, 3.0], baseline=1)
    with pytest.raises(AnalyticsError, match="moving ranges are all zero"):
        control_report([1.0, 1.0, 1.0, 2.0], baseline=3)
