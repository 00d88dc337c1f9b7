"""Drift fits against published reference data and against GTC (MSL's GUM Tree Calculator).

Sources:
- NIST/ITL Statistical Reference Datasets, linear regression: Norris (straight line) and Pontius
  (quadratic), certified values, https://www.itl.nist.gov/div898/strd/lls/lls.shtml
  (data/Norris.dat, data/Pontius.dat; see data/README.md).
- JCGM 100:2008 (GUM), Annex H.3, calibration of a thermometer (data/gum_h3_thermometer.csv):
  y1 = -0.1712 °C, s(y1) = 0.0029 °C, y2 = 0.00218, s(y2) = 0.00067, r(y1, y2) = -0.930,
  s = 0.0035 °C (9 dof), b(30 °C) = -0.1494 °C with u = 0.0041 °C.
- GTC 1.5 type_a.line_fit / line_fit_wls / line_fit_rwls as an independent implementation.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from GTC import dof as gtc_dof
from GTC import get_correlation, type_a, uncertainty, value
from scipy import stats

from gateway.analytics import AnalyticsError, DriftReport, drift_report, fit_drift, predict
from gateway.analytics.drift import time_to_out_of_tolerance, value_in_use
from gateway.analytics.timebase import datetime_to_days, parse_datetime

DATA = Path(__file__).parent / "data"


def read_strd(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) columns of a NIST StRD file (data start after the 'Data:' line)."""
    text = (DATA / name).read_text()
    rows = [line.split() for line in text.split("Data:", 2)[-1].splitlines()[1:] if line.strip()]
    y = np.array([float(row[0]) for row in rows])
    x = np.array([float(row[1]) for row in rows])
    return x, y


def significant_digits(computed: float, certified: float) -> float:
    """NIST's log relative error: the number of agreeing significant digits."""
    if computed == certified:
        return 16.0
    return -math.log10(abs(computed - certified) / abs(certified))


def test_norris_matches_certified_values_to_nine_digits() -> None:
    x, y = read_strd("Norris.dat")
    assert x.size == 36
    fit = fit_drift(x, y, model="linear")
    intercept, slope = fit.coefficients
    # Certified values, Norris.dat lines 31-46.
    assert significant_digits(intercept.value, -0.262323073774029) >= 9
    assert significant_digits(intercept.standard_uncertainty, 0.232818234301152) >= 9
    assert significant_digits(slope.value, 1.00211681802045) >= 9
    assert significant_digits(slope.standard_uncertainty, 0.429796848199937e-03) >= 9
    assert significant_digits(fit.residual_sd, 0.884796396144373) >= 9
    assert fit.dof == 34
    assert fit.weighting == "none"


def test_pontius_quadratic_matches_certified_values_to_nine_digits() -> None:
    x, y = read_strd("Pontius.dat")
    assert x.size == 40
    fit = fit_drift(x, y, model="quadratic")
    certified = [
        (0.673565789473684e-03, 0.107938612033077e-03),
        (0.732059160401003e-06, 0.157817399981659e-09),
        (-0.316081871345029e-14, 0.486652849992036e-16),
    ]
    for coefficient, (estimate, sd) in zip(fit.coefficients, certified, strict=True):
        assert significant_digits(coefficient.value, estimate) >= 9, coefficient.name
        assert significant_digits(coefficient.standard_uncertainty, sd) >= 9, coefficient.name
    assert significant_digits(fit.residual_sd, 0.205177424076185e-03) >= 9
    assert [c.name for c in fit.coefficients] == ["intercept", "slope", "curvature"]


def gum_h3() -> tuple[list[float], list[float]]:
    with (DATA / "gum_h3_thermometer.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return (
        [float(row["thermometer_reading_degC"]) for row in rows],
        [float(row["correction_degC"]) for row in rows],
    )


def test_gum_h3_calibration_curve() -> None:
    t, b = gum_h3()
    fit = fit_drift(t, b, model="linear", x0=20.0)
    y1, y2 = fit.coefficients
    # Published to the digits printed; half a unit in the last place.
    assert y1.value == pytest.approx(-0.1712, abs=0.00005)
    assert y1.standard_uncertainty == pytest.approx(0.0029, abs=0.00005)
    assert y2.value == pytest.approx(0.00218, abs=0.000005)
    assert y2.standard_uncertainty == pytest.approx(0.00067, abs=0.000005)
    assert fit.correlation[0][1] == pytest.approx(-0.930, abs=0.0005)
    assert fit.residual_sd == pytest.approx(0.0035, abs=0.00005)
    assert fit.dof == 9
    at_30 = fit.predict(30.0)
    assert at_30.value == pytest.approx(-0.1494, abs=0.00005)
    assert at_30.u_fit == pytest.approx(0.0041, abs=0.00005)
    assert at_30.extrapolated


def test_gum_h3_against_gtc_to_full_precision() -> None:
    t, b = gum_h3()
    fit = fit_drift(t, b, model="linear", x0=20.0)
    reference = type_a.line_fit([ti - 20.0 for ti in t], b)
    a, s = reference.a_b
    assert fit.coefficients[0].value == pytest.approx(value(a), rel=1e-12)
    assert fit.coefficients[1].value == pytest.approx(value(s), rel=1e-12)
    assert fit.coefficients[0].standard_uncertainty == pytest.approx(uncertainty(a), rel=1e-12)
    assert fit.coefficients[1].standard_uncertainty == pytest.approx(uncertainty(s), rel=1e-12)
    assert fit.correlation[0][1] == pytest.approx(get_correlation(a, s), rel=1e-12)
    at_30 = a + s * 10.0
    assert fit.predict(30.0).u_fit == pytest.approx(uncertainty(at_30), rel=1e-12)


def noisy_history(seed: int, n: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 2000.0, n))
    u = rng.uniform(0.5e-6, 2.0e-6, n)
    y = 10.0 + 3.0e-9 * x + rng.normal(0.0, 1.0, n) * u
    return x, y, u


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_fits_agree_with_gtc(seed: int) -> None:
    x, y, u = noisy_history(seed)
    absolute = fit_drift(x, y, u, model="linear", weighting="absolute")
    relative = fit_drift(x, y, u, model="linear", weighting="relative")
    for fit, reference, expected_dof in (
        (absolute, type_a.line_fit_wls(x.tolist(), y.tolist(), u.tolist()), math.inf),
        (relative, type_a.line_fit_rwls(x.tolist(), y.tolist(), u.tolist()), x.size - 2),
    ):
        a, s = reference.a_b
        assert fit.coefficients[0].value == pytest.approx(value(a), rel=1e-11)
        assert fit.coefficients[1].value == pytest.approx(value(s), rel=1e-9)
        assert fit.coefficients[0].standard_uncertainty == pytest.approx(uncertainty(a), rel=1e-9)
        assert fit.coefficients[1].standard_uncertainty == pytest.approx(uncertainty(s), rel=1e-9)
        assert fit.correlation[0][1] == pytest.approx(get_correlation(a, s), rel=1e-8)
        assert fit.dof == expected_dof == gtc_dof(s)


def test_ordinary_fit_agrees_with_gtc_on_a_long_series() -> None:
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 365.0, 2000)
    y = 1.0 + 1e-6 * x + rng.normal(0.0, 1e-6, x.size)
    fit = fit_drift(x, y, model="linear")
    a, s = type_a.line_fit(x.tolist(), y.tolist()).a_b
    assert fit.coefficients[1].value == pytest.approx(value(s), rel=1e-9)
    assert fit.coefficients[1].standard_uncertainty == pytest.approx(uncertainty(s), rel=1e-9)
    assert fit.coefficients[0].standard_uncertainty == pytest.approx(uncertainty(a), rel=1e-9)


def test_birge_rule_keeps_certificate_uncertainties_when_consistent() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    u = np.full(6, 1.0)
    y = 2.0 * x + np.array([0.1, -0.2, 0.15, -0.1, 0.05, 0.0])  # scatter well below u
    birge = fit_drift(x, y, u, model="linear")
    absolute = fit_drift(x, y, u, model="linear", weighting="absolute")
    assert birge.birge_ratio is not None
    assert birge.birge_ratio < 1.0
    assert birge.dof == math.inf
    np.testing.assert_allclose(birge.covariance, absolute.covariance, rtol=1e-12)


def test_birge_rule_enlarges_uncertainties_when_scatter_exceeds_them() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    u = np.full(6, 0.01)
    y = 2.0 * x + np.array([0.1, -0.2, 0.15, -0.1, 0.05, 0.0])  # scatter 10x u
    birge = fit_drift(x, y, u, model="linear")
    relative = fit_drift(x, y, u, model="linear", weighting="relative")
    assert birge.birge_ratio is not None
    assert birge.birge_ratio > 1.0
    assert birge.dof == 4
    np.testing.assert_allclose(birge.covariance, relative.covariance, rtol=1e-12)
    assert birge.covariance_scale == pytest.approx(birge.birge_ratio**2)
    # Prediction intervals use the latest certificate's u, scaled the same way.
    assert birge.u_new == pytest.approx(0.01 * birge.birge_ratio)


def test_mean_model_is_the_mean_with_its_standard_uncertainty() -> None:
    y = [10.0, 10.2, 9.9, 10.1, 9.8]
    fit = fit_drift([1, 2, 3, 4, 5], y, model="mean")
    assert fit.coefficients[0].value == pytest.approx(np.mean(y))
    assert fit.coefficients[0].standard_uncertainty == pytest.approx(
        np.std(y, ddof=1) / math.sqrt(5)
    )
    assert fit.dof == 4


def make_series(kind: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(0.0, 100.0, 30)
    # Alternating noise: uncorrelated with x and x², so the mean series shows no trend at all
    # (random noise would show a "significant" slope in 5 % of seeds).
    noise = 0.1 * (-1.0) ** np.arange(x.size)
    if kind == "quadratic":
        return x, 5.0 + 0.02 * x + 0.001 * x**2 + noise
    if kind == "linear":
        return x, 5.0 + 0.02 * x + noise
    return x, 5.0 + noise


@pytest.mark.parametrize("kind", ["quadratic", "linear", "mean"])
def test_model_selection_finds_the_generating_model(kind: str) -> None:
    x, y = make_series(kind)
    fit = fit_drift(x, y)
    assert fit.model == kind
    assert fit.selection is not None
    assert fit.selection.chosen == kind
    steps = {step.model: step for step in fit.selection.steps}
    # Backward elimination: the quadratic is always tested first.
    assert fit.selection.steps[0].model == "quadratic"
    assert steps["quadratic"].significant == (kind == "quadratic")
    if kind != "quadratic":
        assert steps["linear"].significant == (kind == "linear")


def test_model_selection_statistic_is_the_t_test_of_the_leading_term() -> None:
    x, y = make_series("linear")
    fit = fit_drift(x, y)
    quadratic = fit_drift(x, y, model="quadratic")
    step = fit.selection.steps[0] if fit.selection else None
    assert step is not None
    assert step.model == "quadratic"
    curvature = quadratic.coefficients[2]
    assert step.estimate == pytest.approx(curvature.value, rel=1e-9)
    assert step.t_statistic == pytest.approx(
        abs(curvature.value) / curvature.standard_uncertainty, rel=1e-9
    )
    assert step.critical_value == pytest.approx(stats.t.ppf(0.975, x.size - 3))


def test_prediction_intervals_use_student_t() -> None:
    x, y = make_series("linear")
    fit = fit_drift(x, y, model="linear")
    prediction = predict(fit, 150.0, confidence=0.9)
    k = stats.t.ppf(0.95, x.size - 2)
    assert prediction.coverage_factor == pytest.approx(k)
    assert prediction.u_prediction == pytest.approx(math.hypot(prediction.u_fit, fit.residual_sd))
    low, high = prediction.prediction_interval
    assert high - low == pytest.approx(2 * k * prediction.u_prediction)
    low, high = prediction.confidence_interval
    assert high - low == pytest.approx(2 * k * prediction.u_fit)
    # The curve's variance from the covariance of the coefficients around x0.
    row = np.array([1.0, 150.0 - fit.x0])
    assert prediction.u_fit**2 == pytest.approx(row @ np.array(fit.covariance) @ row, rel=1e-9)


def test_value_in_use_carries_the_prediction_uncertainty() -> None:
    x, y = make_series("linear")
    fit = fit_drift(x, y, model="linear")
    in_use = value_in_use(fit, 120.0)
    prediction = predict(fit, 120.0)
    assert in_use.value == prediction.value
    assert in_use.standard_uncertainty == prediction.u_prediction
    assert in_use.expanded_uncertainty == pytest.approx(
        prediction.coverage_factor * prediction.u_prediction
    )


def test_predictions_do_not_depend_on_the_reference_point() -> None:
    # Modified Julian dates: x0 = 0 is 60000 days from the data, a badly conditioned basis.
    rng = np.random.default_rng(5)
    x = 60_000.0 + np.linspace(0.0, 400.0, 40)
    y = 10.0 + 1e-7 * (x - 60_000.0) + 2e-10 * (x - 60_000.0) ** 2 + rng.normal(0, 1e-7, x.size)
    near = fit_drift(x, y, model="quadratic", x0=60_000.0)
    far = fit_drift(x, y, model="quadratic", x0=0.0)
    for point in (60_000.0, 60_200.0, 60_500.0):
        assert far.predict(point).value == pytest.approx(near.predict(point).value, rel=1e-14)
        assert far.predict(point).u_fit == pytest.approx(near.predict(point).u_fit, rel=1e-10)


def test_time_to_out_of_tolerance_is_where_the_prediction_interval_meets_the_limit() -> None:
    x, y = make_series("linear")  # rises 0.02 per unit
    fit = fit_drift(x, y, model="linear")
    crossing = time_to_out_of_tolerance(fit, lower=4.0, upper=8.0)
    assert not crossing.already_outside
    assert crossing.side == "upper"
    assert crossing.crossing is not None
    assert crossing.crossing > fit.x_max
    at = predict(fit, crossing.crossing)
    assert at.prediction_interval[1] == pytest.approx(8.0, abs=1e-9)
    before = predict(fit, crossing.crossing - 0.01)
    assert before.prediction_interval[1] < 8.0
    assert crossing.time_to_crossing == pytest.approx(crossing.crossing - fit.x_max)
    # Rough check: the line alone reaches 8 near x = 150; the interval earlier.
    assert 120.0 < crossing.crossing < 150.0


def test_tolerance_already_exceeded_and_never_reached() -> None:
    x, y = make_series("mean")
    fit = fit_drift(x, y, model="mean")
    never = time_to_out_of_tolerance(fit, lower=4.0, upper=6.0)
    assert never.crossing is None
    assert never.side is None
    assert not never.already_outside
    already = time_to_out_of_tolerance(fit, lower=4.9, upper=5.1)
    assert already.already_outside
    assert already.crossing == already.start
    assert already.time_to_crossing == 0.0


def test_dates_fit_per_day_and_report_iso_dates() -> None:
    dates = ["2020-01-15", "2021-01-20", "2022-01-18", "2023-01-16", "2024-01-22"]
    days = [datetime_to_days(parse_datetime(d)) for d in dates]
    values = [10.000_012_0, 10.000_013_1, 10.000_013_9, 10.000_015_2, 10.000_016_0]
    u = [0.3e-6] * 5
    fit = fit_drift(days, values, u, model="linear", x_kind="date")
    assert fit.x0_date == "2020-01-15T00:00:00Z"
    assert fit.coefficients[1].value == pytest.approx(1.0e-6 / 365.25, rel=0.1)
    report = drift_report(
        fit,
        at=datetime_to_days(parse_datetime("2024-07-01")),
        tolerance=5e-6,
        nominal=10.000_016,
    )
    assert report.prediction.date == "2024-07-01T00:00:00Z"
    assert report.tolerance is not None
    assert report.tolerance.start_date == "2024-07-01T00:00:00Z"
    assert report.tolerance.crossing_date is not None
    assert report.tolerance.crossing_date > "2024-07-01"


def test_report_json_is_stable_and_round_trips() -> None:
    x = [0.0, 1.0, 2.0, 3.0, 4.0]
    fit = fit_drift(x, [1.0, 1.1, 1.2, 1.3, 1.45], [0.5] * 5, model="linear")
    assert fit.dof == math.inf
    report = drift_report(fit, tolerance=1.0)
    document = json.loads(report.model_dump_json())
    assert document["format"] == "etalon.drift.fit/1"
    assert document["fit"]["dof"] is None  # infinite degrees of freedom
    assert set(document) == {"format", "fit", "prediction", "value_in_use", "tolerance"}
    assert DriftReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize(
    ("x", "y", "u", "model", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0], None, "linear", "at least 3 points"),
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], None, "linear", "all x values are equal"),
        ([1.0, 2.0, 3.0], [1.0, float("nan"), 3.0], None, "linear", r"y\[1\] is not a finite"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.1, 0.0, 0.1], "linear", "must be positive"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], None, "linear", "x has 3 values but y has 2"),
        ([1.0, 1.0, 2.0, 2.0], [1.0, 2.0, 3.0, 3.0], None, "quadratic", "cannot determine"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    x: list[float], y: list[float], u: list[float] | None, model: str, message: str
) -> None:
    with pytest.raises(AnalyticsError, match=message):
        fit_drift(x, y, u, model=model)  # type: ignore[arg-type]
