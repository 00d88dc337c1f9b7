"""Tolerance limits of a standard and the dates a drift fit reaches them: the fitted curve,
its confidence band (when the true value crosses) and its prediction interval (plan by this)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize

from gateway.analytics import DriftFit
from gateway.analytics.arrays import FloatArray
from gateway.standards.models import Tolerance
from gateway.standards.results import (
    DAYS_PER_YEAR,
    CertificateInput,
    CrossingDates,
    days,
    ns,
)


@dataclass(frozen=True)
class Limits:
    """Tolerance limits as functions of time (days since the epoch)."""

    centre: float
    tolerance: Tolerance
    nominal: float
    calibration_days: float | None

    def at(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(low, high) at each x."""
        if self.calibration_days is None or not self.tolerance.per_year:
            half = np.full(x.shape, self.tolerance.half_width_at(self.nominal, 0.0))
        else:
            years = np.maximum(0.0, (x - self.calibration_days) / DAYS_PER_YEAR)
            growth = self.tolerance.half_width + self.tolerance.per_year * years
            half = np.asarray(self.tolerance.absolute(1.0, self.nominal) * growth)
        return self.centre - half, self.centre + half


def tolerance_limits(
    tolerance: Tolerance | None, nominal: float, certificates: Sequence[CertificateInput]
) -> Limits | None:
    """The limits of a standard, or None (no tolerance, or centred on a missing certificate)."""
    if tolerance is None:
        return None
    latest = certificates[-1] if certificates else None
    if tolerance.around == "certificate":
        if latest is None:
            return None
        return Limits(latest.value, tolerance, nominal, days(latest.calibration_ns))
    return Limits(
        nominal, tolerance, nominal, days(latest.calibration_ns) if latest is not None else None
    )


# -- curves and crossings ------------------------------------------------------------------------


def curve(fit: DriftFit, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Fitted values and the standard uncertainty of the curve at each x."""
    basis = fit.basis
    t = (x - basis.center) / basis.scale
    design = np.vander(t, len(basis.coefficients), increasing=True)
    values = design @ np.asarray(basis.coefficients)
    covariance = np.asarray(basis.covariance)
    variances = np.einsum("ij,jk,ik->i", design, covariance, design)
    return values, np.sqrt(np.maximum(variances, 0.0))


def _first_crossing(
    excess: Callable[[FloatArray], FloatArray], grid: FloatArray
) -> tuple[float | None, bool]:
    """The first x of the grid's range where ``excess >= 0`` (refined), and whether at start."""
    outside = excess(grid) >= 0.0
    if outside[0]:
        return float(grid[0]), True
    if not np.any(outside):
        return None, False
    first = int(np.argmax(outside))
    low, high = float(grid[first - 1]), float(grid[first])
    root = optimize.brentq(
        lambda point: float(excess(np.array([point]))[0]),
        low,
        high,
        xtol=1e-9 * max(1.0, abs(high)),
    )
    return float(root), False


def crossing_dates(
    fit: DriftFit,
    limits: Limits,
    start: float,
    end: float,
    k: float,
    u_systematic: float = 0.0,
    grid_points: int = 4001,
) -> CrossingDates:
    """See the module doc; x in days, ``k`` the coverage factor of every band."""
    grid = np.linspace(start, end, grid_points)
    u_new = math.hypot(fit.u_new, u_systematic)

    def band(
        width: Callable[[FloatArray], FloatArray], inner: bool
    ) -> Callable[[FloatArray], FloatArray]:
        sign = -1.0 if inner else 1.0

        def excess(x: FloatArray) -> FloatArray:
            values, u_fit = curve(fit, x)
            half = sign * k * width(u_fit)
            low, high = limits.at(x)
            return np.maximum(values + half - high, low - (values - half))

        return excess

    def prediction(u_fit: FloatArray) -> FloatArray:
        return np.hypot(u_fit, u_new)

    def confidence(u_fit: FloatArray) -> FloatArray:
        return np.hypot(u_fit, u_systematic)

    def nothing(u_fit: FloatArray) -> FloatArray:
        return np.zeros_like(u_fit)

    earliest, already = _first_crossing(band(prediction, False), grid)
    likely, _ = _first_crossing(band(nothing, False), grid)
    outer, _ = _first_crossing(band(confidence, False), grid)
    inner, _ = _first_crossing(band(confidence, True), grid)
    side: Literal["upper", "lower"] | None = None
    if earliest is not None:
        values, _ = curve(fit, np.array([earliest]))
        low, high = limits.at(np.array([earliest]))
        side = "upper" if values[0] - high[0] >= low[0] - values[0] else "lower"
    return CrossingDates(
        searched_from_ns=ns(start),
        searched_until_ns=ns(end),
        already_outside=already,
        earliest_ns=None if earliest is None else ns(earliest),
        likely_ns=None if likely is None else ns(likely),
        bounds_ns=(None if outer is None else ns(outer), None if inner is None else ns(inner)),
        side=side,
    )
