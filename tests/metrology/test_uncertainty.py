"""GUM budgets: divisors, dof, Welch–Satterthwaite, k, correlations, rounding; GTC as oracle.

Every budget hypothesis draws is built a second time with GTC (MSL's GUM Tree Calculator:
``ureal``, ``multiple_ureal``, ``set_correlation``, ``reporting.k_factor``) and u_c, ν_eff, k
and U must agree to 1e-12 (relative).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from GTC import dof as gtc_dof
from GTC import multiple_ureal, reporting, set_correlation, ureal, value
from GTC import uncertainty as gtc_uncertainty
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from metrology.uncertainty import (
    DEFAULT_COVERAGE_PROBABILITY,
    Budget,
    BudgetResult,
    Contribution,
    Correlation,
    MetrologyError,
    arcsine,
    coverage_factor,
    dof_from_reliability,
    normal,
    rectangular,
    resolution,
    round_result,
    standard,
    triangular,
    truncate_dof,
    type_a,
    welch_satterthwaite,
)

REL = 1e-12


def close(a: float, b: float, rel: float = REL) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


# -- contributions ----------------------------------------------------------------------------


def test_divisors_of_each_distribution() -> None:
    assert rectangular("r", 1.0).standard_uncertainty == pytest.approx(1 / math.sqrt(3), rel=REL)
    assert triangular("t", 1.0).standard_uncertainty == pytest.approx(1 / math.sqrt(6), rel=REL)
    assert arcsine("a", 1.0).standard_uncertainty == pytest.approx(1 / math.sqrt(2), rel=REL)
    assert normal("n", 0.2, 2.0).standard_uncertainty == pytest.approx(0.1, rel=REL)
    assert standard("s", 0.3).standard_uncertainty == 0.3
    # U at a stated probability: the normal quantile, or Student's t with the stated dof
    at_95 = Contribution(name="c", quoted=1.96, coverage_probability=0.95)
    assert at_95.divisor == pytest.approx(stats.norm.ppf(0.975), rel=REL)
    t = Contribution(
        name="t", distribution="student_t", quoted=2.0, coverage_probability=0.95, dof=12
    )
    assert t.divisor == pytest.approx(stats.t.ppf(0.975, 12), rel=REL)
    assert t.standard_uncertainty == pytest.approx(2.0 / stats.t.ppf(0.975, 12), rel=REL)
    assert resolution("res", 0.01).standard_uncertainty == pytest.approx(
        0.01 / math.sqrt(12), rel=REL
    )


def test_type_a_mean_and_experimental_standard_deviation_of_the_mean() -> None:
    readings = [10.01, 10.03, 9.98, 10.00, 10.02]
    c = type_a("repeatability", readings)
    assert c.estimate == pytest.approx(10.008, rel=REL)
    assert c.standard_uncertainty == pytest.approx(stats.sem(readings), rel=1e-12)
    assert c.dof == 4 and c.evaluation == "A"
    pooled = type_a("δm", [0.01, 0.03, 0.02], pooled_sd=0.025, pooled_dof=30)
    assert pooled.standard_uncertainty == pytest.approx(0.025 / math.sqrt(3), rel=REL)
    assert pooled.dof == 30


def test_reliability_sets_the_degrees_of_freedom_gum_g42() -> None:
    # GUM G.4.2: judged reliable to 25 % -> ν = ½ (0.25)⁻² = 8; 10 % -> 50
    assert dof_from_reliability(0.25) == pytest.approx(8.0, rel=REL)
    assert rectangular("r", 1.0, reliability=0.10).dof == pytest.approx(50.0, rel=REL)
    contribution = rectangular("r", 1.0, reliability=0.25)
    again = Contribution.model_validate_json(contribution.model_dump_json())
    assert again == contribution and again.dof == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quoted": math.nan}, "greater than or equal to 0"),
        ({"quoted": math.inf}, "finite"),
        ({"quoted": -1.0}, "greater than or equal to 0"),
        ({"quoted": 1.0, "sensitivity": math.inf}, "finite"),
        ({"quoted": 1.0, "dof": 0.5}, "greater than or equal to 1"),
        ({"quoted": 1.0, "dof": math.nan}, "greater than or equal to 1"),
        ({"quoted": 1.0, "distribution": "rectangular", "coverage_factor": 2}, "half-width"),
        ({"quoted": 1.0, "coverage_factor": 2, "coverage_probability": 0.95}, "not both"),
        ({"quoted": 1.0, "coverage_probability": 1.0}, "less than 1"),
        ({"quoted": 1.0, "distribution": "student_t", "coverage_probability": 0.95}, "finite"),
        ({"quoted": 1.0, "distribution": "student_t", "dof": 5}, "coverage_probability"),
        ({"quoted": 1.0, "distribution": "lognormal"}, "distribution"),
        ({"quoted": 1.0, "reliability": 0.9}, "0.707"),
        ({"quoted": 1.0, "reliability": 0.25, "dof": 20}, "not both"),
        ({"quoted": 1.0, "name": ""}, "at least 1 character"),
        ({"quoted": 1.0, "name": "a\nb"}, "control character"),
        ({"quoted": 1.0, "name": "x" * 201}, "at most 200"),
        ({"quoted": 1.0, "surprise": 1}, "Extra inputs"),
    ],
)
def test_a_bad_contribution_is_refused_with_its_reason(
    fields: dict[str, object], reason: str
) -> None:
    data = {"name": "x", **fields}
    with pytest.raises(ValidationError, match=reason):
        Contribution.model_validate(data)


# -- budgets ----------------------------------------------------------------------------------


def test_budget_combines_contributions_and_reports_every_row() -> None:
    budget = Budget(
        quantity="E",
        unit="V",
        contributions=(
            normal("reference", 2e-6, 2.0, sensitivity=-1.0, estimate=10.0),
            type_a("indication", [10.000012, 10.000015, 10.000011, 10.000014]),
            resolution("resolution", 1e-6),
        ),
    )
    result = budget.evaluate()
    rows = {row.name: row for row in result.contributions}
    u = [1e-6, rows["indication"].standard_uncertainty, 1e-6 / math.sqrt(12)]
    assert result.combined_standard_uncertainty == pytest.approx(math.hypot(*u), rel=REL)
    assert result.estimate == pytest.approx(10.000013 - 10.0, rel=1e-9)
    assert result.effective_dof == pytest.approx(welch_satterthwaite(u, [math.inf, 3, math.inf]))
    assert result.dof_used == math.floor(result.effective_dof)
    assert result.coverage_factor == pytest.approx(coverage_factor(result.dof_used), rel=REL)
    assert result.expanded_uncertainty == pytest.approx(
        result.coverage_factor * result.combined_standard_uncertainty, rel=REL
    )
    assert sum(r.variance_fraction for r in result.contributions) == pytest.approx(1.0)
    assert rows["reference"].sensitivity == -1.0 and rows["reference"].contribution == 1e-6


def test_welch_satterthwaite_gum_formula() -> None:
    # two equal contributions with 4 and infinite dof: ν = (2u²)² / (u⁴/4) = 16
    assert welch_satterthwaite([1.0, 1.0], [4, math.inf]) == pytest.approx(16.0, rel=REL)
    assert welch_satterthwaite([1.0, 2.0], [math.inf, math.inf]) == math.inf
    with pytest.raises(MetrologyError, match="zero"):
        welch_satterthwaite([0.0], [3])
    for bad in (0.0, 0.5, math.nan):
        with pytest.raises(MetrologyError, match="at least 1"):
            welch_satterthwaite([1.0, 1.0], [4, bad])
    with pytest.raises(MetrologyError, match="per contribution"):
        welch_satterthwaite([1.0], [4, 5])


def test_truncation_of_the_effective_dof_and_its_alternative() -> None:
    contributions = (standard("a", 1.0, dof=4), standard("b", 1.0, dof=5))
    floored = Budget(contributions=contributions).evaluate()
    fractional = Budget(contributions=contributions, dof_rounding="none").evaluate()
    assert floored.effective_dof == fractional.effective_dof == pytest.approx(4 / (1 / 4 + 1 / 5))
    assert floored.dof_used == 8.0 and fractional.dof_used == pytest.approx(8.888888888888889)
    assert floored.coverage_factor > fractional.coverage_factor  # truncation is conservative
    assert truncate_dof(15.9999999999999) == 16.0  # rounding noise does not lose a whole dof
    assert truncate_dof(math.inf) == math.inf


def test_the_default_coverage_probability_gives_k_2_for_a_normal_result() -> None:
    assert pytest.approx(0.9545, abs=1e-6) == DEFAULT_COVERAGE_PROBABILITY
    assert coverage_factor() == pytest.approx(2.0, rel=1e-15)
    assert coverage_factor(math.inf, 0.95) == pytest.approx(1.959964, rel=1e-6)
    assert coverage_factor(2e5) == coverage_factor(math.inf)  # GTC's convention above 1e5


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"contributions": ()}, "at least 1"),
        ({"contributions": (standard("a", 1.0), standard("a", 2.0))}, "two contributions"),
        (
            {
                "contributions": (standard("a", 1.0),),
                "correlations": (Correlation(first="a", second="b", coefficient=0.5),),
            },
            "not in the budget",
        ),
        (
            {
                "contributions": (standard("a", 1.0),),
                "correlations": (Correlation(first="a", second="a", coefficient=0.5),),
            },
            "itself",
        ),
        ({"contributions": (standard("a", 1.0),), "coverage_probability": 1.5}, "less than 1"),
        ({"contributions": (standard("a", 1.0),), "estimate": math.nan}, "finite"),
        ({"contributions": (standard("a", 1.0),), "dof_rounding": "ceil"}, "floor"),
    ],
)
def test_a_bad_budget_is_refused_with_its_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Budget.model_validate(fields)


def test_correlations_that_cannot_be_combined_are_refused() -> None:
    a, b, c = standard("a", 1.0), standard("b", 1.0), standard("c", 1.0)
    inconsistent = Budget(
        contributions=(a, b, c),
        correlations=(
            Correlation(first="a", second="b", coefficient=0.9),
            Correlation(first="b", second="c", coefficient=0.9),
            Correlation(first="a", second="c", coefficient=-0.9),
        ),
    )
    with pytest.raises(MetrologyError, match="positive semi-definite"):
        inconsistent.evaluate()
    mixed = Budget(
        contributions=(standard("a", 1.0, dof=5), standard("b", 1.0, dof=9)),
        correlations=(Correlation(first="a", second="b", coefficient=0.5),),
    )
    with pytest.raises(MetrologyError, match="different degrees of freedom"):
        mixed.evaluate()
    with pytest.raises(MetrologyError, match="zero"):
        Budget(contributions=(standard("a", 0.0),)).evaluate()
    with pytest.raises(ValidationError, match="twice"):
        Budget(
            contributions=(a, b),
            correlations=(
                Correlation(first="a", second="b", coefficient=0.1),
                Correlation(first="b", second="a", coefficient=0.2),
            ),
        )


def test_fully_anticorrelated_equal_contributions_cancel_but_the_rest_remains() -> None:
    budget = Budget(
        contributions=(standard("a", 1.0), standard("b", 1.0), standard("c", 0.5)),
        correlations=(Correlation(first="a", second="b", coefficient=-1.0),),
    )
    assert budget.evaluate().combined_standard_uncertainty == pytest.approx(0.5, rel=REL)


def test_result_json_round_trip_writes_infinite_dof_as_null() -> None:
    result = Budget(contributions=(normal("ref", 0.2), type_a("rep", [1.0, 1.2, 1.1]))).evaluate()
    data = json.loads(result.model_dump_json())
    assert data["contributions"][0]["dof"] is None
    assert BudgetResult.model_validate_json(result.model_dump_json()) == result
    budget = Budget(contributions=(normal("ref", 0.2), rectangular("r", 1.0, reliability=0.2)))
    assert Budget.model_validate_json(budget.model_dump_json()) == budget


# -- GTC as the oracle --------------------------------------------------------------------------

DISTRIBUTIONS = ("normal", "rectangular", "triangular", "arcsine", "student_t")
finite_dof = st.one_of(st.integers(1, 60).map(float), st.floats(1.0, 200.0))
dofs = st.one_of(st.just(math.inf), finite_dof)
magnitudes = st.floats(1e-6, 1e3)


@st.composite
def contributions(draw: st.DrawFn, index: int) -> Contribution:
    distribution = draw(st.sampled_from(DISTRIBUTIONS))
    fields: dict[str, object] = {
        "name": f"x{index}",
        "estimate": draw(st.floats(-1e3, 1e3)),
        "distribution": distribution,
        "quoted": draw(magnitudes),
        "sensitivity": draw(magnitudes) * draw(st.sampled_from((-1.0, 1.0))),
    }
    if distribution == "student_t":
        fields["dof"] = draw(finite_dof)
        way = draw(st.sampled_from(("k", "p")))
    else:
        fields["dof"] = draw(dofs)
        way = draw(st.sampled_from(("k", "p", "u"))) if distribution == "normal" else "a"
    if way == "k":
        fields["coverage_factor"] = draw(st.floats(1.0, 4.0))
    elif way == "p":
        fields["coverage_probability"] = draw(st.floats(0.5, 0.999))
    return Contribution.model_validate(fields)


@st.composite
def budgets(draw: st.DrawFn) -> Budget:
    n = draw(st.integers(1, 8))
    items = [draw(contributions(i)) for i in range(n)]
    # correlated pairs, disjoint (block-diagonal, hence always positive semi-definite):
    # either both of infinite dof, or an ensemble sharing one finite dof (Willink 2007)
    correlations = []
    order = draw(st.permutations(range(n)))
    for a, b in zip(order[0::2], order[1::2], strict=False):
        if not draw(st.booleans()):
            continue
        if items[a].distribution == "student_t" or items[b].distribution == "student_t":
            continue
        shared = draw(dofs)
        items[a] = items[a].model_copy(update={"dof": shared})
        items[b] = items[b].model_copy(update={"dof": shared})
        # r = 0 is independence here (two terms of W–S); GTC's ensemble would still be one
        r = draw(st.floats(-0.99, 0.99).filter(lambda r: abs(r) > 1e-6))
        correlations.append(Correlation(first=f"x{a}", second=f"x{b}", coefficient=r))
    p = draw(st.sampled_from((DEFAULT_COVERAGE_PROBABILITY, 0.95, 0.99, 0.6827)))
    return Budget(
        contributions=tuple(items), correlations=tuple(correlations), coverage_probability=p
    )


def gtc_result(budget: Budget) -> tuple[float, float, float]:
    """The budget evaluated by GTC: value, u and dof of y = Σ c_i x_i."""
    inputs = {c.name: c for c in budget.contributions}
    numbers = {}
    paired = {name for r in budget.correlations for name in (r.first, r.second)}
    for c in budget.contributions:
        if c.name not in paired:
            numbers[c.name] = ureal(c.estimate, c.standard_uncertainty, c.dof, label=c.name)
    for r in budget.correlations:
        a, b = inputs[r.first], inputs[r.second]
        if math.isinf(a.dof):
            pair = [
                ureal(a.estimate, a.standard_uncertainty, label=a.name, independent=False),
                ureal(b.estimate, b.standard_uncertainty, label=b.name, independent=False),
            ]
        else:
            pair = multiple_ureal(
                [a.estimate, b.estimate],
                [a.standard_uncertainty, b.standard_uncertainty],
                a.dof,
                label_seq=[a.name, b.name],
            )
        set_correlation(r.coefficient, pair[0], pair[1])
        numbers[a.name], numbers[b.name] = pair
    y = sum(c.sensitivity * numbers[c.name] for c in budget.contributions)
    return value(y), gtc_uncertainty(y), gtc_dof(y)


@settings(max_examples=300, deadline=None)
@given(budgets())
def test_every_budget_agrees_with_gtc(budget: Budget) -> None:
    result = budget.evaluate()
    y, u, nu = gtc_result(budget)
    assert close(result.combined_standard_uncertainty, u), (result, u)
    assert close(result.effective_dof, nu, rel=1e-11), (result.effective_dof, nu)
    scale = math.fsum(abs(c.sensitivity * c.estimate) for c in budget.contributions) + 1e-300
    assert abs(result.estimate - y) <= 1e-13 * scale
    k = reporting.k_factor(truncate_dof(nu), budget.coverage_probability * 100)
    assert close(result.coverage_factor, k), (result.coverage_factor, k)
    assert close(result.expanded_uncertainty, k * u)


@settings(max_examples=200, deadline=None)
@given(dof=st.one_of(st.just(math.inf), st.floats(1.0, 2e5)), p=st.floats(0.01, 0.999))
def test_coverage_factor_agrees_with_gtc_and_scipy(dof: float, p: float) -> None:
    k = coverage_factor(dof, p)
    assert close(k, reporting.k_factor(dof, p * 100))
    reference = stats.norm.ppf((1 + p) / 2) if dof > 1e5 else stats.t.ppf((1 + p) / 2, dof)
    assert close(k, float(reference), rel=1e-9)


# -- rounding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "u", "expected_value", "expected_u"),
    [
        (10000.1780007665, 0.016656298989919258, "10000.178", "0.017"),  # EA-4/02 S3
        (1.0, 0.0996, "1.00", "0.10"),  # carrying into a new digit keeps 2 significant digits
        (1.0, 0.0585, "1.000", "0.059"),  # half up for U
        (0.1245, 0.011, "0.124", "0.011"),  # half to even for the value
        (2.675, 0.11, "2.68", "0.11"),  # the decimal 2.675, not the binary 2.67499999…
        (-3.14159, 0.00271, "-3.1416", "0.0027"),
        (5.0e-9, 1.7e-10, "0.00000000500", "0.00000000017"),
        (123456.0, 2345.0, "123500", "2300"),
        (0.0, 0.5, "0.00", "0.50"),
    ],
)
def test_round_result_to_two_significant_digits(
    value: float, u: float, expected_value: str, expected_u: str
) -> None:
    rounded = round_result(value, u)
    assert f"{rounded.value:f}" == expected_value
    assert f"{rounded.expanded_uncertainty:f}" == expected_u


def test_ea402_rounds_up_when_nearest_would_lower_u_by_more_than_5_percent() -> None:
    # one significant digit: 0.14 to the nearest is 0.1 (-29 %): EA-4/02 rounds it up to 0.2
    assert round_result(1.0, 0.14, significant_digits=1).expanded_uncertainty == Decimal("0.2")
    assert round_result(1.0, 0.14, significant_digits=1, rule="nearest").expanded_uncertainty == (
        Decimal("0.1")
    )
    assert round_result(1.0, 0.101, significant_digits=1).expanded_uncertainty == Decimal("0.1")
    assert round_result(1.0, 0.0581, rule="up").expanded_uncertainty == Decimal("0.059")


def test_rounded_text_and_refusals() -> None:
    text = round_result(10.000013, 2.3e-6, coverage_factor=2.0, unit="V").text
    assert text == "10.0000130 V ± 0.0000023 V (k = 2.00)"
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(MetrologyError):
            round_result(1.0, bad)
    with pytest.raises(MetrologyError):
        round_result(math.inf, 1.0)
    with pytest.raises(MetrologyError, match="significant"):
        round_result(1.0, 0.1, significant_digits=4)
    huge = round_result(1.7976931348623157e308, 1e300)
    assert huge.expanded_uncertainty == Decimal("1.0E+300")
