"""Drift of a reference standard: least-squares fits of value against time, with uncertainties.

The fits are the ones of the NIST/SEMATECH e-Handbook (ch. 2.3.6, 4.4) and of the GUM (JCGM 100,
Annex H.3): a mean, a straight line or a quadratic in ``x - x0`` by ordinary least squares, or by
weighted least squares when each value has a standard uncertainty (a certificate history).

Numerics: x is centred and scaled and the mean of y removed before a QR decomposition (LAPACK via
numpy) of the (weighted) design matrix, so the fit is accurate to ~1e-13 relative on the NIST
StRD sets; coefficients and covariance are then transformed exactly to the basis around ``x0``.
Predictions are computed in the centred basis, so they stay exact far from ``x0``.

Weighting (``weighting``, only when uncertainties are given), as in GTC's ``type_a``:

* ``absolute`` -- the uncertainties are taken as known: covariance ``(XᵀWX)⁻¹``, infinite degrees
  of freedom (GTC ``line_fit_wls``).
* ``relative`` -- the uncertainties give relative weights only: the covariance is scaled by
  ``χ²/ν``, ``ν = n - p`` degrees of freedom (GTC ``line_fit_rwls``).
* ``birge`` (default) -- absolute, unless the values scatter more than their uncertainties explain
  (Birge ratio ``√(χ²/ν) > 1``): then as ``relative``. Uncertainties are never made smaller than
  the certificates say, and are enlarged when the standard is less stable than they claim.

The result models are in :mod:`gateway.analytics.drift_results`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg, optimize, special, stats

from gateway.analytics.arrays import FloatArray, finite_array
from gateway.analytics.drift_results import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    DEGREE,
    SELECTION_RULE,
    TERM_NAMES,
    Coefficient,
    DriftFit,
    DriftReport,
    FitBasis,
    ModelChoice,
    ModelName,
    ModelSelection,
    Prediction,
    SelectionStep,
    ToleranceCrossing,
    ValueInUse,
    Weighting,
)
from gateway.analytics.errors import AnalyticsError
from gateway.analytics.timebase import XKind, days_to_iso
from metrology._common import from_attributes


@dataclass(frozen=True)
class _Solved:
    """One least-squares solution in the centred basis (internal)."""

    degree: int
    center: float
    scale: float
    coefficients: FloatArray
    covariance: FloatArray
    dof: float
    ssr: float
    chi2: float | None
    covariance_scale: float
    u_new: float
    weighting: Literal["none", "birge", "absolute", "relative"]


def _quantile(confidence: float, dof: float) -> float:
    """Two-sided coverage factor for ``confidence`` with ``dof`` degrees of freedom."""
    level = (1.0 + confidence) / 2.0
    if math.isinf(dof):
        return float(stats.norm.ppf(level))
    return float(stats.t.ppf(level, dof))


def _solve(
    x: FloatArray,
    y: FloatArray,
    u: FloatArray | None,
    degree: int,
    weighting: Weighting,
    u_new: float | None,
) -> _Solved:
    n = x.size
    parameters = degree + 1
    if n < parameters + 1:
        raise AnalyticsError(
            f"a {_model_of(degree)} fit needs at least {parameters + 1} points, got {n}"
        )
    center = float(np.mean(x))
    half_range = float(np.max(x) - np.min(x)) / 2.0
    if degree > 0 and half_range == 0.0:
        raise AnalyticsError(f"all x values are equal: a {_model_of(degree)} fit is impossible")
    scale = half_range if half_range > 0.0 else 1.0
    t = (x - center) / scale
    y_offset = float(np.mean(y))
    design = np.vander(t, parameters, increasing=True)
    root_weights = np.ones(n) if u is None else 1.0 / u
    q, r = np.linalg.qr(design * root_weights[:, None])
    if np.min(np.abs(np.diag(r))) <= 1e-12 * np.max(np.abs(np.diag(r))):
        raise AnalyticsError(
            f"the x values cannot determine a {_model_of(degree)} (too few distinct x values)"
        )
    coefficients = linalg.solve_triangular(r, q.T @ ((y - y_offset) * root_weights))
    residuals = (y - y_offset) - design @ coefficients
    r_inverse = linalg.solve_triangular(r, np.eye(parameters))
    unscaled = r_inverse @ r_inverse.T
    dof_residual = n - parameters
    ssr = float(residuals @ residuals)
    coefficients[0] += y_offset
    if u is None:
        variance = ssr / dof_residual
        return _Solved(
            degree, center, scale, coefficients, unscaled * variance, float(dof_residual), ssr,
            None, variance, math.sqrt(variance), "none",
        )  # fmt: skip
    chi2 = float(np.sum((residuals * root_weights) ** 2))
    reduced = chi2 / dof_residual
    if weighting == "absolute" or (weighting == "birge" and reduced <= 1.0):
        factor, dof = 1.0, math.inf
    else:
        factor, dof = reduced, float(dof_residual)
    latest_u = float(u[int(np.argmax(x))]) if u_new is None else u_new
    return _Solved(
        degree, center, scale, coefficients, unscaled * factor, dof, ssr, chi2, factor,
        latest_u * math.sqrt(factor), weighting,
    )  # fmt: skip


def _model_of(degree: int) -> ModelName:
    return ("mean", "linear", "quadratic")[degree]


def _to_x0_basis(solved: _Solved, x0: float) -> tuple[FloatArray, FloatArray]:
    """Coefficients and covariance of the polynomial in ``x - x0`` (exact linear transform)."""
    parameters = solved.degree + 1
    shift = x0 - solved.center
    transform = np.zeros((parameters, parameters))
    for k in range(parameters):
        for j in range(k, parameters):
            transform[k, j] = special.comb(j, k, exact=True) * shift ** (j - k) / solved.scale**j
    return transform @ solved.coefficients, transform @ solved.covariance @ transform.T


def _build_fit(
    solved: _Solved,
    x: FloatArray,
    x_kind: XKind,
    x0: float,
    selection: ModelSelection | None,
) -> DriftFit:
    coefficients, covariance = _to_x0_basis(solved, x0)
    sd = np.sqrt(np.diag(covariance))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = covariance / np.outer(sd, sd)
    correlation = np.where(np.isfinite(correlation), correlation, 0.0)
    np.fill_diagonal(correlation, 1.0)
    dof_residual = x.size - (solved.degree + 1)
    return DriftFit(
        model=_model_of(solved.degree),
        n=int(x.size),
        dof=solved.dof,
        weighting=solved.weighting,
        x_kind=x_kind,
        x0=x0,
        x0_date=days_to_iso(x0) if x_kind == "date" else None,
        x_min=float(np.min(x)),
        x_max=float(np.max(x)),
        coefficients=[
            Coefficient(
                name=TERM_NAMES[i], value=float(coefficients[i]), standard_uncertainty=float(sd[i])
            )
            for i in range(solved.degree + 1)
        ],
        covariance=covariance.tolist(),
        correlation=correlation.tolist(),
        residual_sd=math.sqrt(solved.ssr / dof_residual) if dof_residual > 0 else 0.0,
        chi2=solved.chi2,
        birge_ratio=None if solved.chi2 is None else math.sqrt(solved.chi2 / dof_residual),
        covariance_scale=solved.covariance_scale,
        u_new=solved.u_new,
        basis=FitBasis(
            center=solved.center,
            scale=solved.scale,
            coefficients=solved.coefficients.tolist(),
            covariance=solved.covariance.tolist(),
        ),
        selection=selection,
    )


def fit_drift(
    x: Sequence[float] | FloatArray,
    y: Sequence[float] | FloatArray,
    u: Sequence[float] | FloatArray | None = None,
    *,
    model: ModelChoice = "auto",
    x0: float | None = None,
    x_kind: XKind = "number",
    weighting: Weighting = "birge",
    u_new: float | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> DriftFit:
    """Fit ``y`` against ``x`` (numbers, or days since the epoch when ``x_kind="date"``).

    ``u``: standard uncertainties of ``y`` (weighted fit, see ``weighting``); None: ordinary
    least squares. ``model="auto"`` applies the documented selection rule (``SELECTION_RULE``)
    at significance ``alpha``. ``x0``: the reference point of the coefficients (default 0 for
    numbers, the first date for dates). ``u_new``: standard uncertainty of one future observation
    for prediction intervals of a weighted fit (default: that of the latest observation).
    """
    x_values = finite_array(x, "x", "x")
    y_values = finite_array(y, "y", "y")
    if x_values.size != y_values.size:
        raise AnalyticsError(f"x has {x_values.size} values but y has {y_values.size}")
    u_values: FloatArray | None = None
    if u is not None:
        u_values = finite_array(u, "u", "u")
        if u_values.size != y_values.size:
            raise AnalyticsError(f"u has {u_values.size} values but y has {y_values.size}")
        if np.any(u_values <= 0.0):
            bad = int(np.flatnonzero(u_values <= 0.0)[0])
            raise AnalyticsError(f"u[{bad}] = {u_values[bad]!r}: uncertainties must be positive")
    if weighting not in ("birge", "absolute", "relative"):
        raise AnalyticsError(f"unknown weighting {weighting!r}")
    if u_new is not None and not (math.isfinite(u_new) and u_new >= 0.0):
        raise AnalyticsError("u_new must be a non-negative number")
    if not 0.0 < alpha < 1.0:
        raise AnalyticsError("alpha must lie between 0 and 1")
    if x0 is None:
        x0 = float(np.min(x_values)) if x_kind == "date" and x_values.size else 0.0
    if model == "auto":
        solved, selection = _select(x_values, y_values, u_values, weighting, u_new, alpha)
        return _build_fit(solved, x_values, x_kind, x0, selection)
    if model not in DEGREE:
        raise AnalyticsError(f"unknown model {model!r}: choose auto, mean, linear or quadratic")
    solved = _solve(x_values, y_values, u_values, DEGREE[model], weighting, u_new)
    return _build_fit(solved, x_values, x_kind, x0, None)


def _select(
    x: FloatArray,
    y: FloatArray,
    u: FloatArray | None,
    weighting: Weighting,
    u_new: float | None,
    alpha: float,
) -> tuple[_Solved, ModelSelection]:
    steps: list[SelectionStep] = []
    for degree in (2, 1):
        if x.size < degree + 2:
            continue
        if degree > 0 and np.unique(x).size <= degree:
            continue
        solved = _solve(x, y, u, degree, weighting, u_new)
        # The highest-order coefficient's t statistic is the same in every basis.
        estimate = float(solved.coefficients[degree])
        u_estimate = math.sqrt(float(solved.covariance[degree, degree]))
        t_statistic = abs(estimate) / u_estimate if u_estimate > 0.0 else math.inf
        critical = _quantile(1.0 - alpha, solved.dof)
        significant = t_statistic > critical
        scale_power = solved.scale**degree
        steps.append(
            SelectionStep(
                model=_model_of(degree),
                term=TERM_NAMES[degree],
                estimate=estimate / scale_power,
                standard_uncertainty=u_estimate / scale_power,
                t_statistic=t_statistic,
                critical_value=critical,
                dof=solved.dof,
                significant=significant,
            )
        )
        if significant:
            return solved, ModelSelection(
                rule=SELECTION_RULE, alpha=alpha, steps=steps, chosen=_model_of(degree)
            )
    solved = _solve(x, y, u, 0, weighting, u_new)
    return solved, ModelSelection(rule=SELECTION_RULE, alpha=alpha, steps=steps, chosen="mean")


def _curve(fit: DriftFit, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Fitted values and their standard uncertainties at each x (centred basis)."""
    basis = fit.basis
    parameters = len(basis.coefficients)
    t = (x - basis.center) / basis.scale
    design = np.vander(t, parameters, increasing=True)
    covariance = np.asarray(basis.covariance)
    values = design @ np.asarray(basis.coefficients)
    variances = np.einsum("ij,jk,ik->i", design, covariance, design)
    return values, np.sqrt(np.maximum(variances, 0.0))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise AnalyticsError("confidence must lie between 0 and 1 (e.g. 0.95)")


def predict(fit: DriftFit, x: float, confidence: float = DEFAULT_CONFIDENCE) -> Prediction:
    """The curve at ``x`` with confidence (curve) and prediction (new observation) intervals."""
    _check_confidence(confidence)
    if not math.isfinite(x):
        raise AnalyticsError("x must be a finite number")
    values, u_fit = _curve(fit, np.array([x], dtype=np.float64))
    value, u_line = float(values[0]), float(u_fit[0])
    u_prediction = math.hypot(u_line, fit.u_new)
    k = _quantile(confidence, fit.dof)
    return Prediction(
        x=x,
        date=days_to_iso(x) if fit.x_kind == "date" else None,
        value=value,
        u_fit=u_line,
        u_prediction=u_prediction,
        dof=fit.dof,
        confidence=confidence,
        coverage_factor=k,
        confidence_interval=(value - k * u_line, value + k * u_line),
        prediction_interval=(value - k * u_prediction, value + k * u_prediction),
        extrapolated=not fit.x_min <= x <= fit.x_max,
    )


def value_in_use(fit: DriftFit, x: float, confidence: float = DEFAULT_CONFIDENCE) -> ValueInUse:
    """The value to assign to the standard at ``x``, with the prediction's uncertainty.

    The prediction (not the curve's) uncertainty is used because what the certificates share --
    the calibrating laboratory's own reference -- does not average down in the fit, and the
    scatter about the curve includes the standard's own instability.
    """
    prediction = predict(fit, x, confidence)
    return from_attributes(
        ValueInUse,
        prediction,
        standard_uncertainty=prediction.u_prediction,
        expanded_uncertainty=prediction.coverage_factor * prediction.u_prediction,
    )


def time_to_out_of_tolerance(
    fit: DriftFit,
    *,
    lower: float,
    upper: float,
    nominal: float | None = None,
    start: float | None = None,
    horizon: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    grid_points: int = 4001,
) -> ToleranceCrossing:
    """The first x after ``start`` where the prediction interval reaches ``lower`` or ``upper``.

    ``start`` defaults to the last x of the data; the search runs to ``horizon`` (default: start
    plus ten times the span of the data). The interval's bounds are scanned on a grid and the
    crossing refined by Brent's method between the last grid point inside and the first outside.
    """
    _check_confidence(confidence)
    if not lower < upper:
        raise AnalyticsError(f"the tolerance's lower limit {lower} is not below its upper {upper}")
    start_x = fit.x_max if start is None else start
    span = fit.x_max - fit.x_min
    end_x = start_x + 10.0 * (span if span > 0.0 else 1.0) if horizon is None else horizon
    if not end_x > start_x:
        raise AnalyticsError("the search horizon must lie after its start")
    k = _quantile(confidence, fit.dof)

    def excess(points: FloatArray) -> FloatArray:
        values, u_fit = _curve(fit, points)
        half_width = k * np.hypot(u_fit, fit.u_new)
        return np.maximum(values + half_width - upper, lower - (values - half_width))

    grid = np.linspace(start_x, end_x, grid_points)
    outside = excess(grid) >= 0.0
    crossing: float | None = None
    already = bool(outside[0])
    if already:
        crossing = start_x
    elif np.any(outside):
        first = int(np.argmax(outside))
        crossing = float(
            optimize.brentq(
                lambda point: float(excess(np.array([point]))[0]),
                float(grid[first - 1]),
                float(grid[first]),
                xtol=1e-9 * max(1.0, abs(float(grid[first]))),
            )
        )
    side: Literal["upper", "lower"] | None = None
    if crossing is not None:
        values, u_fit = _curve(fit, np.array([crossing]))
        half_width = k * float(np.hypot(u_fit[0], fit.u_new))
        side = (
            "upper"
            if values[0] + half_width - upper >= lower - (values[0] - half_width)
            else "lower"
        )
    is_date = fit.x_kind == "date"
    return ToleranceCrossing(
        nominal=(lower + upper) / 2.0 if nominal is None else nominal,
        lower=lower,
        upper=upper,
        confidence=confidence,
        start=start_x,
        start_date=days_to_iso(start_x) if is_date else None,
        searched_until=end_x,
        searched_until_date=days_to_iso(end_x) if is_date else None,
        already_outside=already,
        crossing=crossing,
        crossing_date=days_to_iso(crossing) if is_date and crossing is not None else None,
        side=side,
        time_to_crossing=None if crossing is None else crossing - start_x,
    )


def drift_report(
    fit: DriftFit,
    *,
    at: float | None = None,
    tolerance: float | None = None,
    nominal: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    horizon: float | None = None,
) -> DriftReport:
    """The fit, its prediction and value in use at ``at`` (default: last x), and, given a
    tolerance ``±tolerance`` around ``nominal`` (default: the fitted value at the last x), the
    time until the prediction interval first leaves it, searched from the later of ``at`` and
    the last x.
    """
    at_x = fit.x_max if at is None else at
    prediction = predict(fit, at_x, confidence)
    crossing = None
    if tolerance is not None:
        if not (math.isfinite(tolerance) and tolerance > 0.0):
            raise AnalyticsError("the tolerance must be a positive number (±VALUE)")
        centre = predict(fit, fit.x_max, confidence).value if nominal is None else nominal
        crossing = time_to_out_of_tolerance(
            fit,
            lower=centre - tolerance,
            upper=centre + tolerance,
            nominal=centre,
            start=max(at_x, fit.x_max),
            horizon=horizon,
            confidence=confidence,
        )
    return DriftReport(
        fit=fit,
        prediction=prediction,
        value_in_use=value_in_use(fit, at_x, confidence),
        tolerance=crossing,
    )
