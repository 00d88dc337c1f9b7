"""Corrections from certificate points: interpolation, fits, uncertainty, range, fast paths."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from metrology.correction import (
    CalibrationPoint,
    ChannelCalibration,
    CorrectionSummary,
    LinearCorrection,
    PolynomialCorrection,
    build_correction,
    correction_from_points,
)

XS = [0.0, 10.0, 20.0, 40.0, 50.0]
CS = [0.10, 0.13, 0.12, 0.20, 0.18]
US = [0.02, 0.02, 0.04, 0.03, 0.03]  # expanded, k = 2


def linear(**options: object) -> LinearCorrection:
    correction = correction_from_points("ch", XS, CS, US, **options)
    assert isinstance(correction, LinearCorrection)
    return correction


def test_points_convert_error_and_reference_into_the_correction() -> None:
    assert (
        CalibrationPoint(indication=10.0, error=0.2, expanded_uncertainty=0.1).correction_value
        == -0.2
    )
    by_reference = CalibrationPoint(indication=10.0, reference=9.7, expanded_uncertainty=0.1)
    assert by_reference.correction_value == pytest.approx(-0.3)
    assert by_reference.standard_uncertainty == 0.05
    point = CalibrationPoint(
        indication=1.0, correction=0.1, expanded_uncertainty=0.3, coverage_factor=3
    )
    assert point.standard_uncertainty == pytest.approx(0.1)


def test_at_each_point_the_certificate_is_returned_unchanged() -> None:
    correction = linear()
    for x, c, u in zip(XS, CS, US, strict=True):
        assert correction.correction_at(x) == pytest.approx((c, u / 2), rel=1e-15)
        corrected, u_total, in_range = correction.apply(x)
        assert corrected == pytest.approx(x + c, rel=1e-15) and u_total == pytest.approx(u / 2)
        assert in_range


def test_between_points_linear_value_and_linear_u_plus_the_interpolation_term() -> None:
    plain = linear(interpolation_component=False)
    c, u = plain.correction_at(30.0)  # halfway between 20 and 40
    assert c == pytest.approx(0.16, rel=1e-14)
    assert u == pytest.approx((0.02 + 0.015) / 2, rel=1e-14)  # never below the points' u
    assert plain.correction_at(25.0)[1] == pytest.approx(0.75 * 0.02 + 0.25 * 0.015, rel=1e-14)
    _, u_with = linear().correction_at(30.0)
    assert u_with > u


def test_the_interpolation_term_is_the_lagrange_bound_for_a_quadratic_table() -> None:
    """For c(x) = a·x² the second differences are exact (f'' = 2a), the chord's error at x is
    a·(x − x_i)(x_j − x), and the term is that bound taken as a rectangular half-width."""
    a = 3e-4
    xs = [0.0, 10.0, 20.0, 30.0]
    correction = correction_from_points(
        "q", xs, [a * x * x for x in xs], [0.0] * 4, interpolation_component=True
    )
    for x in (2.5, 5.0, 15.0, 27.0):
        c, u = correction.correction_at(x)
        i = int(x // 10)
        bound = a * (x - xs[i]) * (xs[i + 1] - x)
        assert u == pytest.approx(bound / math.sqrt(3), rel=1e-12)
        assert abs(c - a * x * x) == pytest.approx(bound, rel=1e-9)  # the bound is attained
    straight = correction_from_points("s", xs, [0.1 + 0.01 * x for x in xs], [0.02] * 4)
    assert straight.correction_at(15.0)[1] == pytest.approx(0.01, rel=1e-14)  # no curvature
    two = correction_from_points("two", [0.0, 1.0], [0.0, 1.0], [0.02, 0.02])
    assert two.correction_at(0.5)[1] == pytest.approx(0.01, rel=1e-14)


def test_outside_the_range_linear_extrapolation_or_clamp_and_the_flag() -> None:
    extended = linear(interpolation_component=False)
    corrected, u, in_range = extended.apply(60.0)  # λ = 2 on the last interval (40, 50)
    assert not in_range
    assert corrected == pytest.approx(60.0 + 0.18 + (0.18 - 0.20), rel=1e-14)
    assert u == pytest.approx(1 * 0.015 + 2 * 0.015, rel=1e-14)  # |1−λ|u_i + |λ|u_j, grows
    below = extended.apply(-10.0)
    assert not below[2] and below[0] == pytest.approx(-10.0 + 0.10 - 0.03, rel=1e-14)
    clamped = linear(extrapolation="clamp")
    assert clamped.apply(60.0) == pytest.approx((60.18, 0.015, False))
    assert clamped.apply(-1.0) == pytest.approx((-0.9, 0.01, False))
    assert clamped.correction_at(1e9) == pytest.approx((0.18, 0.015))
    for correction in (extended, clamped):
        assert correction.apply(0.0)[2] and correction.apply(50.0)[2]  # the ends are in range
        assert not correction.apply(math.nextafter(50.0, 99.0))[2]
        nan = correction.apply(math.nan)
        assert math.isnan(nan[0]) and not nan[2]


def test_the_readings_own_uncertainty_with_the_sensitivity_of_the_correction() -> None:
    correction = linear(resolution=0.01, reading_uncertainty=0.003)
    slope = (0.13 - 0.10) / 10.0
    _, u, _ = correction.apply(5.0)
    u_correction = correction.correction_at(5.0)[1]
    reading = 0.01**2 / 12 + 0.003**2
    assert u == pytest.approx(math.sqrt(u_correction**2 + (1 + slope) ** 2 * reading), rel=1e-14)
    _, u_own, _ = correction.apply(5.0, u_reading=0.0)  # a reading with its own u replaces it
    assert u_own == pytest.approx(
        math.sqrt(u_correction**2 + (1 + slope) ** 2 * 0.01**2 / 12), rel=1e-14
    )
    clamped = linear(resolution=0.01, extrapolation="clamp")
    assert clamped.apply(99.0, u_reading=0.1)[1] == pytest.approx(
        math.sqrt(0.015**2 + 0.01**2 / 12 + 0.1**2), rel=1e-14
    )


@st.composite
def calibrations(draw: st.DrawFn) -> ChannelCalibration:
    n = draw(st.integers(2, 12))
    xs = sorted(draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n, unique=True)))
    if min(b - a for a, b in pairwise(xs)) < 1e-3:
        xs = [float(i) for i in range(n)]
    method = draw(st.sampled_from(("linear", "polynomial")))
    degree = draw(st.integers(1, min(4, n - 1)))
    points = [
        CalibrationPoint(
            indication=x,
            correction=draw(st.floats(-1.0, 1.0)),
            expanded_uncertainty=draw(st.floats(1e-4, 0.1)),
        )
        for x in xs
    ]
    return ChannelCalibration(
        channel="c", points=tuple(points), method=method, degree=degree,
        extrapolation=draw(st.sampled_from(("linear", "clamp"))),
        resolution=draw(st.one_of(st.none(), st.floats(1e-4, 0.1))),
        reading_uncertainty=draw(st.floats(0.0, 0.05)),
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(calibration=calibrations(), data=st.data())
def test_the_array_path_equals_the_scalar_path(
    calibration: ChannelCalibration, data: st.DataObject
) -> None:
    correction = build_correction(calibration)
    span = correction.x_max - correction.x_min
    inside_and_beyond = st.floats(correction.x_min - span, correction.x_max + span)
    drawn = data.draw(st.lists(inside_and_beyond, min_size=1, max_size=20))
    xs = np.array([*drawn, correction.x_min, correction.x_max])
    u_reading = data.draw(st.one_of(st.none(), st.floats(0.0, 0.1)))
    corrected, u, in_range = correction.apply_array(
        xs, None if u_reading is None else np.full(xs.shape, u_reading)
    )
    for i, x in enumerate(xs):
        one = correction.apply(float(x), u_reading)
        assert corrected[i] == pytest.approx(one[0], rel=1e-12, abs=1e-12)
        assert u[i] == pytest.approx(one[1], rel=1e-9, abs=1e-15)
        assert bool(in_range[i]) == one[2] == correction.in_range(float(x))
        c, u_c = correction.correction_at(float(x))
        assert c == pytest.approx(one[0] - x, rel=1e-9, abs=1e-9)
        assert u_c <= one[1] * (1 + 1e-12)


def test_an_ill_conditioned_polynomial_gives_the_same_bits_by_both_paths() -> None:
    # Found by the property above in a CI run: a quadratic through a 0.01-wide step and a far
    # point has terms of ~10⁴ that cancel to 0 at 0.99; adding x to them one by one (x + a·t + b)
    # instead of to their sum lost 1.6e-12 against the array path.
    calibration = ChannelCalibration(
        channel="c", method="polynomial", degree=2, extrapolation="linear",
        points=tuple(
            CalibrationPoint(indication=x, correction=c, expanded_uncertainty=0.0625)
            for x, c in ((0.99, 0.0), (1.0, 1.0), (739.0, 0.0))
        ),
    )  # fmt: skip
    correction = build_correction(calibration)
    xs = np.array([0.0, 0.99, 0.995, 1.0, 300.0, 739.0, 800.0])
    corrected, u, _ = correction.apply_array(xs)
    for i, x in enumerate(xs):
        one = correction.apply(float(x))
        assert (float(corrected[i]), float(u[i])) == (one[0], one[1])
    # The fit passes through its points only as closely as the cancelling terms allow, and how
    # closely depends on the machine's LAPACK (0.99 to the bit on one CPU, 0.990000000003638 on
    # another): what must hold to the bit is that both paths agree, above.
    assert math.isclose(correction.apply(0.99)[0], 0.99, rel_tol=0, abs_tol=1e-9)


def test_polynomial_fit_equals_numpy_weighted_least_squares() -> None:
    rng = np.random.default_rng(7)
    xs = np.linspace(-50.0, 150.0, 9)
    truth = 0.02 + 1e-4 * xs - 3e-6 * xs**2 + 1e-8 * xs**3
    us = rng.uniform(0.002, 0.006, xs.size)
    ys = truth + rng.normal(0.0, us)
    for degree in (1, 2, 3):
        correction = correction_from_points(
            "p", xs.tolist(), ys.tolist(), (2 * us).tolist(), method="polynomial", degree=degree,
            residual_component=False,
        )  # fmt: skip
        assert isinstance(correction, PolynomialCorrection)
        coefficients, covariance = np.polyfit(xs, ys, degree, w=1 / us, cov="unscaled")
        summary = correction.summary(x0=0.0)
        assert summary.coefficients is not None and summary.covariance is not None
        assert np.allclose(summary.coefficients, coefficients[::-1], rtol=1e-9, atol=1e-15)
        assert np.allclose(
            np.array(summary.covariance), covariance[::-1, ::-1], rtol=1e-8, atol=1e-20
        )
        for x in (-60.0, 0.0, 33.3, 150.0, 200.0):
            g = np.array([x**k for k in range(degree + 1)])
            u_curve = math.sqrt(g @ covariance[::-1, ::-1] @ g)
            assert correction.correction_at(x)[1] == pytest.approx(u_curve, rel=1e-8)
            assert correction.curve_uncertainty(x) == pytest.approx(u_curve, rel=1e-8)
            assert correction.correction_at(x)[0] == pytest.approx(
                np.polyval(coefficients, x), rel=1e-9, abs=1e-12
            )


def test_polynomial_residual_component_and_relative_weighting() -> None:
    xs = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [0.0, 0.11, 0.19, 0.32, 0.38, 0.52]
    plain = correction_from_points("p", xs, ys, [0.02] * 6, method="polynomial", degree=1)
    summary = plain.summary()
    assert summary.residual_sd is not None and summary.birge_ratio is not None
    assert summary.dof == math.inf and summary.weighting == "absolute"
    assert isinstance(plain, PolynomialCorrection)
    assert plain.correction_at(2.5)[1] == pytest.approx(
        math.hypot(plain.curve_uncertainty(2.5), summary.residual_sd), rel=1e-12
    )
    relative = correction_from_points(
        "p", xs, ys, [0.02] * 6, method="polynomial", degree=1, weighting="relative",
        residual_component=False,
    )  # fmt: skip
    assert isinstance(relative, PolynomialCorrection)
    assert relative.summary().dof == 4
    assert relative.curve_uncertainty(2.5) == pytest.approx(
        plain.curve_uncertainty(2.5) * summary.birge_ratio, rel=1e-12
    )
    # the per-reading u adds the reading with the polynomial's slope as sensitivity
    with_reading = correction_from_points(
        "p", xs, ys, [0.02] * 6, method="polynomial", degree=1, resolution=0.1,
    )  # fmt: skip
    slope = with_reading.summary().coefficients[1]  # type: ignore[index]
    _, u, _ = with_reading.apply(2.5)
    assert u == pytest.approx(
        math.sqrt(plain.correction_at(2.5)[1] ** 2 + (1 + slope) ** 2 * 0.01 / 12), rel=1e-12
    )


def test_corrected_values_cover_the_truth_at_their_stated_uncertainty() -> None:
    """A simulated instrument with a smooth error curve and forty certificates of 11 noisy
    points each: within the range, at least 95 % of corrected readings lie within 2u of the
    truth for both methods (a fixed seed: the same draw every run)."""
    rng = np.random.default_rng(2024)

    def truth(x: np.ndarray) -> np.ndarray:
        return 0.05 + 0.002 * x - 4e-5 * x**2 + 0.01 * np.sin(x / 9.0)

    xs = np.linspace(0.0, 100.0, 11)
    u_points = 0.004
    for method, degree in (("linear", 1), ("polynomial", 3)):
        covered = []
        for _ in range(40):  # forty certificates
            noisy = truth(xs) + rng.normal(0.0, u_points, xs.size)
            correction = correction_from_points(
                "t", xs.tolist(), noisy.tolist(), [2 * u_points] * xs.size, method=method,
                degree=degree,
            )  # fmt: skip
            readings = rng.uniform(0.0, 100.0, 200)
            corrected, u, in_range = correction.apply_array(readings)
            assert in_range.all()
            covered.append(np.abs(corrected - (readings + truth(readings))) <= 2 * u)
        assert np.mean(covered) >= 0.95, method


def test_summaries_for_reports_and_json() -> None:
    summary = linear(resolution=0.01).summary()
    assert (summary.method, summary.points, summary.x_min, summary.x_max) == ("linear", 5, 0, 50)
    assert summary.indication_variance == pytest.approx(0.01**2 / 12)
    assert CorrectionSummary.model_validate_json(summary.model_dump_json()) == summary
    fit = correction_from_points("p", XS, CS, US, method="polynomial", degree=2).summary(x0=25.0)
    assert fit.x0 == 25.0 and fit.degree == 2 and len(fit.coefficients or ()) == 3
    assert CorrectionSummary.model_validate_json(fit.model_dump_json()) == fit


POINT = {"indication": 1.0, "correction": 0.1, "expanded_uncertainty": 0.02}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"points": [POINT, POINT]}, "distinct indications"),
        ({"points": [POINT]}, "at least 2"),
        ({"points": []}, "at least 2"),
        (
            {"points": [POINT, {**POINT, "indication": 2.0}], "method": "polynomial", "degree": 2},
            "at least 3 distinct",
        ),
        (
            {
                "points": [POINT, {**POINT, "indication": 2.0}],
                "method": "polynomial",
                "weighting": "relative",
            },
            "at least 3 points",
        ),
        (
            {
                "points": [POINT, {**POINT, "indication": 2.0, "expanded_uncertainty": 0.0}],
                "method": "polynomial",
            },
            "positive",
        ),
        ({"points": [{**POINT, "error": 0.1}, {**POINT, "indication": 2}]}, "exactly one"),
        ({"points": [{"indication": 1.0, "expanded_uncertainty": 0.1}, POINT]}, "exactly one"),
        ({"points": [{**POINT, "indication": math.nan}, POINT]}, "finite"),
        ({"points": [{**POINT, "indication": math.inf}, POINT]}, "finite"),
        ({"points": [{**POINT, "expanded_uncertainty": -0.1}, POINT]}, "greater than or equal"),
        ({"points": [{**POINT, "coverage_factor": 0}, POINT]}, "greater than 0"),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "method": "spline"}, "linear"),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "degree": 7}, "less than or equal"),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "resolution": 0}, "greater than 0"),
        (
            {"points": [POINT, {**POINT, "indication": 2.0}], "reading_uncertainty": math.inf},
            "finite",
        ),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "channel": ""}, "at least 1"),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "channel": "a\tb"}, "control"),
        ({"points": [POINT, {**POINT, "indication": 2.0}], "table": []}, "Extra inputs"),
        ({"points": [{**POINT, "indication": float(i)} for i in range(10_001)]}, "at most 10000"),
    ],
)
def test_bad_calibrations_are_refused_with_a_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ChannelCalibration.model_validate({"channel": "ch", **fields})


def test_a_channel_name_never_reaches_the_generated_code() -> None:
    hostile = "x'); import os; os._exit(1) #"
    correction = correction_from_points(hostile, XS, CS, US, method="polynomial", degree=2)
    assert correction.channel == hostile
    assert correction.apply(25.0)[2]
