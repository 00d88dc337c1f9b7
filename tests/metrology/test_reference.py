"""The value in use of a reference standard: certificate + drift since, from a drift fit.

The drift curve is taken from the gateway's own drift fit (``gateway.analytics.drift``), as the
calibration runner will take it: the test proves the mapping of its fields is the right one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from GTC import dof as gtc_dof
from GTC import uncertainty as gtc_uncertainty
from GTC import ureal
from GTC import value as gtc_value
from pydantic import ValidationError
from scipy import stats

from gateway.analytics.drift import fit_drift
from gateway.analytics.drift_results import DriftFit
from metrology.reference import DriftCurve, DriftTerm, drift_since, value_in_use
from metrology.uncertainty import Budget, type_a

REL = 1e-12


def curve_of(fit: DriftFit) -> DriftCurve:
    """What the runner passes: the fit's polynomial in x − x0, covariance, dof, u_new."""
    return DriftCurve(
        x0=fit.x0,
        coefficients=tuple(c.value for c in fit.coefficients),
        covariance=tuple(tuple(row) for row in fit.covariance),
        dof=fit.dof,
        u_new=fit.u_new,
    )


def monitoring_fit(model: str) -> DriftFit:
    """A year of daily comparisons of a 10 V standard against a check standard (µV)."""
    rng = np.random.default_rng(11)
    days = 19_000.0 + np.arange(0.0, 365.0, 1.0)
    t = days - days[0]
    drift = 0.05 * t - 2e-5 * t**2
    return fit_drift(days, drift + rng.normal(0.0, 0.3, days.size), model=model, x_kind="date")  # type: ignore[arg-type]


def test_no_drift_the_certificate_alone() -> None:
    used = value_in_use(10.000_012, 0.4e-6, 2.0, unit="V")
    assert used.value == 10.000_012 and used.certified_value == 10.000_012
    assert used.standard_uncertainty == pytest.approx(0.2e-6, rel=REL)
    assert used.coverage_factor == pytest.approx(2.0, rel=1e-15)
    assert used.expanded_uncertainty == pytest.approx(0.4e-6, rel=1e-14)
    assert used.effective_dof == math.inf and used.drift is None


@pytest.mark.parametrize("model", ["linear", "quadratic"])
def test_the_drift_since_the_certificate_from_the_gateways_fit(model: str) -> None:
    fit = monitoring_fit(model)
    curve = curve_of(fit)
    certificate_day, today = 19_100.0, 19_400.0  # extrapolated 35 days past the data
    change, u_curve = curve.change(certificate_day, today)
    assert change == pytest.approx(
        fit.predict(today).value - fit.predict(certificate_day).value, rel=1e-10
    )
    # the same variance computed in the fit's own centred basis
    basis = fit.basis
    p = len(basis.coefficients)
    g = np.array(
        [
            ((today - basis.center) / basis.scale) ** k
            - ((certificate_day - basis.center) / basis.scale) ** k
            for k in range(p)
        ]
    )
    assert u_curve == pytest.approx(math.sqrt(g @ np.array(basis.covariance) @ g), rel=1e-9)
    if model == "linear":
        slope = fit.coefficients[1].standard_uncertainty
        assert u_curve == pytest.approx(300.0 * slope, rel=1e-9)
    term = drift_since(curve, certificate_day, today)
    assert term.standard_uncertainty == pytest.approx(math.hypot(u_curve, fit.u_new), rel=REL)
    assert term.dof == fit.dof
    without_scatter = drift_since(curve, certificate_day, today, include_scatter=False)
    assert without_scatter.standard_uncertainty == pytest.approx(u_curve, rel=REL)


def test_certificate_plus_drift_agrees_with_gtc() -> None:
    fit = monitoring_fit("linear")
    term = drift_since(curve_of(fit), 19_100.0, 19_400.0)
    used = value_in_use(10.0, 1.1, 2.0, drift=term, unit="µV")
    certificate = ureal(10.0, 0.55)
    drift = ureal(term.change, term.standard_uncertainty, term.dof)
    total = certificate + drift
    assert used.value == pytest.approx(gtc_value(total), rel=REL)
    assert used.standard_uncertainty == pytest.approx(gtc_uncertainty(total), rel=REL)
    assert used.effective_dof == pytest.approx(gtc_dof(total), rel=REL)
    assert [row.name for row in used.budget.contributions] == [
        "reference (certificate)",
        "reference (drift since certificate)",
    ]


def test_a_prediction_interval_as_the_drift_term() -> None:
    term = DriftTerm.from_interval(2.0, 0.8, 0.95, dof=12)
    assert term.standard_uncertainty == pytest.approx(0.8 / stats.t.ppf(0.975, 12), rel=REL)
    assert DriftTerm.from_interval(2.0, 0.8, 0.95).standard_uncertainty == pytest.approx(
        0.8 / stats.norm.ppf(0.975), rel=REL
    )


def test_the_value_in_use_enters_a_points_budget_with_its_sign() -> None:
    """error = indication − reference: the reference's two contributions with c = −1."""
    used = value_in_use(
        10.0, 2e-6, 2.0, drift=DriftTerm(change=1e-6, standard_uncertainty=5e-7, dof=20), unit="V"
    )
    readings = [10.000_031, 10.000_029, 10.000_030, 10.000_032]
    budget = Budget(
        quantity="error", unit="V",
        contributions=(type_a("indication", readings), *used.contributions(sensitivity=-1.0)),
    )  # fmt: skip
    result = budget.evaluate()
    assert result.estimate == pytest.approx(np.mean(readings) - 10.000_001, abs=1e-15)
    reference = math.hypot(1e-6, 5e-7)
    assert result.combined_standard_uncertainty == pytest.approx(
        math.hypot(reference, stats.sem(readings)), rel=1e-12
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"x0": 0.0, "coefficients": (1.0, 2.0), "covariance": ((1.0,),)}, "2×2"),
        ({"x0": 0.0, "coefficients": (1.0,), "covariance": ((math.nan,),)}, "non-finite"),
        (
            {"x0": 0.0, "coefficients": (1.0, 2.0), "covariance": ((1.0, 0.5), (0.4, 1.0))},
            "symmetric",
        ),
        ({"x0": 0.0, "coefficients": (1.0,), "covariance": ((-1.0,),)}, "negative variance"),
        ({"x0": math.inf, "coefficients": (1.0,), "covariance": ((1.0,),)}, "finite"),
        ({"x0": 0.0, "coefficients": (), "covariance": ()}, "at least 1"),
        ({"x0": 0.0, "coefficients": (1.0,), "covariance": ((1.0,),), "u_new": -1}, "greater"),
    ],
)
def test_a_bad_drift_curve_is_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        DriftCurve.model_validate(fields)


def test_bad_drift_terms_and_certificates_are_refused() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        DriftTerm(change=0.0, standard_uncertainty=-1.0)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        DriftTerm(change=0.0, standard_uncertainty=1.0, dof=0.5)
    with pytest.raises(ValidationError, match="finite"):
        DriftTerm(change=math.nan, standard_uncertainty=1.0)
    with pytest.raises(ValidationError):
        value_in_use(10.0, -1.0)
    with pytest.raises(ValueError, match="zero"):
        value_in_use(10.0, 0.0)
