"""ILAC-G8 decision rules: zones, limits, risks, the fast path against the full verdict."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from metrology.conformity import (
    ConformityCheck,
    DecisionRule,
    Tolerance,
    Verdict,
    conformance_probability,
    decide,
)

MPE = Tolerance.symmetric(1.0)  # error within ±1
U = 0.2

# measured error -> decision, for each rule with w = U = 0.2 (tolerance ±1)
ZONES = {
    "simple_acceptance": [
        (0.0, "pass"), (0.9, "pass"), (1.0, "pass"), (1.05, "fail"), (-1.0, "pass"),
        (-1.1, "fail"),
    ],
    "guarded_acceptance": [
        (0.0, "pass"), (0.8, "pass"), (0.81, "fail"), (1.0, "fail"), (-0.8, "pass"),
        (-0.85, "fail"),
    ],
    "guarded_rejection": [
        (0.0, "pass"), (1.1, "pass"), (1.2, "pass"), (1.21, "fail"), (-1.2, "pass"),
        (-1.25, "fail"),
    ],
    "non_binary": [
        (0.0, "pass"), (0.8, "pass"), (0.9, "conditional_pass"), (1.0, "conditional_pass"),
        (1.1, "conditional_fail"), (1.2, "conditional_fail"), (1.3, "fail"),
        (-0.9, "conditional_pass"), (-1.1, "conditional_fail"), (-1.5, "fail"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("kind", list(ZONES))
def test_the_zones_of_each_rule(kind: str) -> None:
    check = ConformityCheck(MPE, DecisionRule(kind=kind))  # type: ignore[arg-type]
    for measured, expected in ZONES[kind]:
        assert check.decide(measured, U) == expected, (kind, measured)
        assert check.verdict(measured, U).decision == expected


def test_a_verdict_carries_the_numbers_behind_it() -> None:
    verdict = decide(0.9, 0.2, MPE, DecisionRule(kind="guarded_acceptance", guard_factor=1.5))
    assert verdict.decision == "fail" and not verdict.conforms
    assert verdict.guard_band == pytest.approx(0.3)
    assert (verdict.acceptance_lower, verdict.acceptance_upper) == pytest.approx((-0.7, 0.7))
    assert (verdict.tolerance_lower, verdict.tolerance_upper) == (-1.0, 1.0)
    assert verdict.measured == 0.9 and verdict.expanded_uncertainty == 0.2
    assert verdict.rule.describe() == "guarded acceptance, w = 1.5·U (ILAC-G8:09/2019 4.2.2)"
    # the item is in fact within tolerance with probability p_c: rejecting it risks exactly that
    assert verdict.false_reject_probability == pytest.approx(
        stats.norm.cdf(1.0, 0.9, 0.1) - stats.norm.cdf(-1.0, 0.9, 0.1), rel=1e-12
    )
    assert verdict.false_accept_probability is None
    assert Verdict.model_validate_json(verdict.model_dump_json()) == verdict
    rejection = decide(1.1, 0.2, MPE, DecisionRule(kind="guarded_rejection"))
    assert (rejection.acceptance_lower, rejection.acceptance_upper) == pytest.approx((-1.2, 1.2))
    simple = decide(0.5, 0.2, MPE)
    assert simple.guard_band == 0.0 and simple.acceptance_upper == 1.0
    assert simple.rule.describe() == "simple acceptance, w = 0 (ILAC-G8:09/2019 4.2.1)"


def test_guard_band_w_equal_u_bounds_the_false_accept_risk() -> None:
    """ILAC-G8 4.2.2: with w = U (k = 2, normal) a pass risks under 2.5 % false accept; the
    worst case is a value on the acceptance limit: 1 − Φ(2) = 2.28 %."""
    verdict = decide(0.8, 0.2, MPE, DecisionRule(kind="guarded_acceptance"))
    assert verdict.decision == "pass"
    assert verdict.false_accept_probability == pytest.approx(stats.norm.sf(2.0), rel=1e-9)
    assert verdict.false_accept_probability < 0.025
    # simple acceptance on the limit: 50 % (ILAC-G8: "shared risk")
    on_limit = decide(1.0, 0.2, Tolerance(upper=1.0))
    assert on_limit.decision == "pass"
    assert on_limit.false_accept_probability == pytest.approx(0.5, rel=1e-12)


def test_one_sided_tolerances() -> None:
    humidity = Tolerance(upper=60.0)  # %RH at most 60
    rule = DecisionRule(kind="non_binary")
    assert decide(10.0, 2.0, humidity, rule).decision == "pass"
    assert decide(59.0, 2.0, humidity, rule).decision == "conditional_pass"
    assert decide(61.0, 2.0, humidity, rule).decision == "conditional_fail"
    assert decide(63.0, 2.0, humidity, rule).decision == "fail"
    lower_only = Tolerance(lower=18.0)
    assert decide(-1e300, 0.1, lower_only).decision == "fail"
    verdict = decide(17.9, 0.2, lower_only, rule)
    assert verdict.acceptance_upper is None and verdict.acceptance_lower == pytest.approx(18.2)
    assert verdict.conformance_probability == pytest.approx(stats.norm.sf(18.0, 17.9, 0.1))


def test_degenerate_cases() -> None:
    # no uncertainty: no probability to state, the decision is the simple one
    exact = decide(0.5, 0.0, MPE, DecisionRule(kind="guarded_acceptance"))
    assert exact.decision == "pass" and exact.conformance_probability is None
    tiny = decide(0.5, 5e-324, MPE, DecisionRule(kind="non_binary"))  # U/k underflows to 0
    assert tiny.decision == "pass" and tiny.conformance_probability is None
    # a zero-width tolerance (a relative MPE at a zero reading) accepts its centre only
    assert decide(0.0, 0.0, Tolerance.symmetric(0.0)).decision == "pass"
    assert decide(1e-12, 0.0, Tolerance.symmetric(0.0)).decision == "fail"
    # a guard band wider than half the tolerance leaves no acceptance zone
    wide = ConformityCheck(MPE, DecisionRule(kind="guarded_acceptance", guard_factor=2.0))
    assert wide.decide(0.0, 1.0) == "fail"
    # NaN never passes on the fast path; the full verdict refuses it
    assert ConformityCheck(MPE).decide(math.nan, 0.1) == "fail"
    assert ConformityCheck(MPE, DecisionRule(kind="non_binary")).decide(math.nan, 0.1) == "fail"
    with pytest.raises(ValueError, match="finite"):
        decide(math.nan, 0.1, MPE)
    with pytest.raises(ValueError, match="expanded uncertainty"):
        decide(0.0, -0.1, MPE)
    with pytest.raises(ValueError, match="coverage factor"):
        decide(0.0, 0.1, MPE, coverage_factor=0.0)
    with pytest.raises(ValueError, match="positive standard uncertainty"):
        conformance_probability(0.0, 0.0, MPE)


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        (Tolerance, {}, "lower limit, an upper limit, or both"),
        (Tolerance, {"lower": 2.0, "upper": 1.0}, "above the upper"),
        (Tolerance, {"upper": math.inf}, "finite"),
        (Tolerance, {"upper": "high"}, "valid number"),
        (DecisionRule, {"kind": "lenient"}, "simple_acceptance"),
        (DecisionRule, {"guard_factor": -1.0}, "greater than or equal to 0"),
        (DecisionRule, {"guard_factor": math.nan}, "guard_factor"),
        (DecisionRule, {"kind": "non_binary", "w": 1}, "Extra inputs"),
    ],
)
def test_bad_tolerances_and_rules_are_refused(
    model: type[Tolerance] | type[DecisionRule], fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        model.model_validate(fields)
    with pytest.raises(ValueError, match=">= 0"):
        Tolerance.symmetric(-1.0)


@settings(max_examples=300, deadline=None)  # timing is not what this tests
@given(
    kind=st.sampled_from(list(ZONES)),
    r=st.floats(0.0, 3.0),
    measured=st.floats(-5.0, 5.0),
    expanded=st.one_of(st.just(0.0), st.floats(1e-6, 2.0)),
    k=st.floats(1.0, 3.0),
)
def test_fast_path_equals_the_verdict_and_the_probability_equals_scipy(
    kind: str, r: float, measured: float, expanded: float, k: float
) -> None:
    check = ConformityCheck(MPE, DecisionRule(kind=kind, guard_factor=r))  # type: ignore[arg-type]
    verdict = check.verdict(measured, expanded, k)
    assert check.decide(measured, expanded) == verdict.decision
    assert verdict.conforms == (verdict.decision in ("pass", "conditional_pass"))
    if expanded > 0.0:
        u = expanded / k
        expected = stats.norm.cdf(1.0, measured, u) - stats.norm.cdf(-1.0, measured, u)
        assert verdict.conformance_probability == pytest.approx(expected, abs=1e-12)
    # a stricter guard band never turns a fail into a pass
    if kind == "guarded_acceptance":
        stricter = ConformityCheck(MPE, DecisionRule(kind=kind, guard_factor=r + 0.5))
        assert not (verdict.decision == "fail" and stricter.decide(measured, expanded) == "pass")
