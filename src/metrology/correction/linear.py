"""Piecewise linear correction (``method="linear"``): interpolation between the certificate's
points, the fully correlated bound of their uncertainties and the interpolation error
(:mod:`metrology.correction` says how).
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
import numpy.typing as npt

from metrology.correction.models import (
    ApplyFunction,
    BoolArray,
    ChannelCalibration,
    Correction,
    CorrectionSummary,
    FloatArray,
)

_SQRT3 = math.sqrt(3.0)


# Columns of a segment's tuple (x_i, x_j, c_i, slope, 1/h, u_i, u_j, k2, reading, gain², du/dx);
# the array path reuses the last one's column for k2·h⁴ (the interpolation term in λ).
_X_I, _C_I, _SLOPE, _INVERSE_H, _U_I, _U_J, _K2, _GAIN2, _K2H4 = 0, 2, 3, 4, 5, 6, 7, 9, 10


class LinearCorrection(Correction):
    """Piecewise linear interpolation of the points (module doc)."""

    __slots__ = (
        "_clamp", "_columns", "_ends", "_last", "_resolution_variance", "_segments", "_x_array",
        "_xs",
    )  # fmt: skip

    def __init__(self, calibration: ChannelCalibration) -> None:
        super().__init__(calibration)
        points = sorted(calibration.points, key=lambda p: p.indication)
        xs = [p.indication for p in points]
        cs = [p.correction_value for p in points]
        us = [p.standard_uncertainty for p in points]
        n = len(xs)
        slopes = [(cs[i + 1] - cs[i]) / (xs[i + 1] - xs[i]) for i in range(n - 1)]
        curvature = [0.0] * n  # |f''| estimated at each interior point
        for j in range(1, n - 1):
            curvature[j] = abs(2.0 * (slopes[j] - slopes[j - 1]) / (xs[j + 1] - xs[j - 1]))
        reading = calibration.indication_variance
        segments = []
        for i in range(n - 1):
            bound = max(curvature[i], curvature[i + 1]) / 2.0
            if not calibration.interpolation_component:
                bound = 0.0
            gain = 1.0 + slopes[i]
            segments.append(
                (
                    xs[i], xs[i + 1], cs[i], slopes[i], 1.0 / (xs[i + 1] - xs[i]), us[i],
                    us[i + 1], bound * bound / 3.0, gain * gain * reading, gain * gain,
                    (us[i + 1] - us[i]) / (xs[i + 1] - xs[i]),
                )
            )  # fmt: skip
        self._xs = tuple(xs)
        self._segments = tuple(segments)
        self._columns = np.ascontiguousarray(np.array(segments, dtype=np.float64).T)
        self._columns[_K2H4] = self._columns[_K2] / self._columns[_INVERSE_H] ** 4
        self._x_array = np.array(xs, dtype=np.float64)
        self._last = n - 2
        self._clamp = calibration.extrapolation == "clamp"
        self._ends = ((cs[0], us[0]), (cs[-1], us[-1]))
        resolution = 0.0 if calibration.resolution is None else calibration.resolution
        self._resolution_variance = resolution * resolution / 12.0
        self.apply = _linear_apply(self)

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """The points' indications, sorted (what ``apply`` bisects)."""
        return self._xs

    @property
    def segments(self) -> tuple[tuple[float, ...], ...]:
        """Each interval's precomputed numbers, as ``apply`` reads them: ``(x_i, x_j, c_i,
        slope, 1/h, u_i, u_j, k2, gain²·reading variance, gain², du/dx)`` (for a batch
        evaluation that must give ``apply``'s results bit for bit)."""
        return self._segments

    def correction_at(self, x: float) -> tuple[float, float]:
        if self._clamp and not self.in_range(x):
            return self._ends[0] if x < self.x_min else self._ends[1]
        i = min(max(bisect_right(self._xs, x) - 1, 0), self._last)
        x_i, x_j, c_i, slope, inverse_h, u_i, u_j, k2, _reading, _gain2, _du = self._segments[i]
        lam = (x - x_i) * inverse_h
        u_points = abs(1.0 - lam) * u_i + abs(lam) * u_j
        q = (x - x_i) * (x - x_j)
        return c_i + slope * (x - x_i), math.sqrt(u_points * u_points + k2 * q * q)

    def apply_array(
        self, x: npt.ArrayLike, u_reading: npt.ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        values = np.asarray(x, dtype=np.float64)
        columns = self._columns
        index = np.clip(np.searchsorted(self._x_array, values, side="right") - 1, 0, self._last)
        dx = values - columns[_X_I].take(index)
        lam = dx * columns[_INVERSE_H].take(index)
        corrected = values + columns[_C_I].take(index) + columns[_SLOPE].take(index) * dx
        u_points = np.abs(1.0 - lam) * columns[_U_I].take(index)
        u_points += np.abs(lam) * columns[_U_J].take(index)
        wiggle = lam * (1.0 - lam)  # (x − x_i)(x_j − x) = λ(1 − λ)·h²
        variance = u_points * u_points + columns[_K2H4].take(index) * wiggle * wiggle
        gain2 = columns[_GAIN2].take(index)
        if u_reading is None:
            reading: FloatArray | float = self.calibration.indication_variance
        else:
            extra = np.asarray(u_reading, dtype=np.float64)
            reading = self._resolution_variance + extra * extra
        variance += gain2 * reading
        in_range = (values >= self.x_min) & (values <= self.x_max)
        if self._clamp and not in_range.all():
            for mask, (c, u) in (
                (values < self.x_min, self._ends[0]),
                (values > self.x_max, self._ends[1]),
            ):
                corrected = np.where(mask, values + c, corrected)
                variance = np.where(mask, u * u + reading, variance)
        return corrected, np.sqrt(variance), in_range

    def summary(self, x0: float | None = None) -> CorrectionSummary:
        calibration = self.calibration
        return CorrectionSummary(
            channel=self.channel, certificate=self.certificate, unit=self.unit,
            method="linear", x_min=self.x_min, x_max=self.x_max,
            points=len(calibration.points), extrapolation=calibration.extrapolation,
            interpolation_component=calibration.interpolation_component, degree=None,
            weighting=None, x0=None, coefficients=None, coefficient_uncertainties=None,
            covariance=None, dof=math.inf, residual_sd=None, birge_ratio=None,
            residual_component=None, indication_variance=calibration.indication_variance,
        )  # fmt: skip


def _linear_apply(correction: LinearCorrection) -> ApplyFunction:
    """The per-reading function of a piecewise linear correction, its tables bound as locals
    of a closure (no attribute look-ups on the hot path)."""
    xs, segments, last = correction._xs, correction._segments, correction._last
    x_min, x_max, clamp = correction.x_min, correction.x_max, correction._clamp
    (c_low, u_low), (c_high, u_high) = correction._ends
    resolution_variance = correction._resolution_variance
    declared = correction.calibration.indication_variance
    sqrt, bisect = math.sqrt, bisect_right

    def outside(x: float, i: int, u_reading: float | None) -> tuple[float, float, bool]:
        # Beyond the end points (or NaN), and x_max itself, which bisect puts past the end.
        in_range = x == x_max
        if not in_range and clamp:
            c, u = (c_low, u_low) if x < x_min else (c_high, u_high)
            r = declared if u_reading is None else resolution_variance + u_reading * u_reading
            return x + c, sqrt(u * u + r), False
        x_i, x_j, c_i, slope, inverse_h, u_i, u_j, k2, reading, gain2, _du = segments[
            0 if i < 0 else last
        ]
        dx = x - x_i
        lam = dx * inverse_h
        u_points = abs(1.0 - lam) * u_i + abs(lam) * u_j  # the bound for any correlation
        q = dx * (x - x_j)
        if u_reading is not None:
            reading = gain2 * (resolution_variance + u_reading * u_reading)
        return x + c_i + slope * dx, sqrt(u_points * u_points + k2 * q * q + reading), in_range

    def apply(x: float, u_reading: float | None = None) -> tuple[float, float, bool]:
        i = bisect(xs, x) - 1
        if not 0 <= i <= last:
            return outside(x, i, u_reading)
        x_i, x_j, c_i, slope, _inverse_h, u_i, _u_j, k2, reading, gain2, du = segments[i]
        dx = x - x_i
        u_points = u_i + du * dx  # (1 − λ)·u_i + λ·u_j
        q = dx * (x - x_j)
        if u_reading is not None:
            reading = gain2 * (resolution_variance + u_reading * u_reading)
        return x + c_i + slope * dx, sqrt(u_points * u_points + k2 * q * q + reading), True

    return apply
