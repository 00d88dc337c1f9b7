"""Polynomial correction (``method="polynomial"``): a weighted least-squares fit of the
certificate's points, the covariance of its coefficients and the residual component
(:mod:`metrology.correction` says how); its per-reading function is compiled once per certificate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from metrology._common import MetrologyError, finite
from metrology.correction.models import (
    ApplyFunction,
    BoolArray,
    ChannelCalibration,
    Correction,
    CorrectionSummary,
    FloatArray,
)


def _horner(coefficients: Sequence[float], variable: str) -> str:
    """``a0 + a1·t + …`` as nested Python source: ``((a2) * t + a1) * t + a0``."""
    expression = repr(coefficients[-1])
    for a in reversed(coefficients[:-1]):
        expression = f"({expression}) * {variable} + {a!r}"
    return expression


_POLYNOMIAL_APPLY = """
def apply(x, u_reading=None):
    t = (x - {center!r}) * {inverse_scale!r}
    variance = {variance}
    if variance < 0.0:
        variance = 0.0
    gain = 1.0 + ({slope})
    if u_reading is None:
        reading = {declared!r}
    else:
        reading = {resolution_variance!r} + u_reading * u_reading
    return (
        x + ({correction}),
        sqrt(variance + {model_variance!r} + gain * gain * reading),
        {x_min!r} <= x <= {x_max!r},
    )
"""


def _polynomial_apply(correction: PolynomialCorrection) -> ApplyFunction:
    """The per-reading function of a polynomial correction, its three polynomials (value,
    derivative, variance) unrolled into straight-line code with the numbers as constants.

    Generated source, as ``dataclasses`` and ``namedtuple`` generate theirs: a loop over the
    coefficients costs more than the arithmetic it does. Only ``repr`` of finite floats (checked
    here) enters the source; nothing from a user's text does.
    """
    numbers = (
        *correction._coefficients, *correction._derivative, *correction._variance_poly,
        correction._center, correction._inverse_scale, correction._model_variance,
        correction._reading, correction._resolution_variance, correction.x_min, correction.x_max,
    )  # fmt: skip
    if not all(math.isfinite(n) for n in numbers):
        raise MetrologyError("the fitted polynomial has non-finite coefficients")
    source = _POLYNOMIAL_APPLY.format(
        center=correction._center,
        inverse_scale=correction._inverse_scale,
        variance=_horner(correction._variance_poly, "t"),
        slope=_horner(correction._derivative, "t"),
        declared=correction._reading,
        resolution_variance=correction._resolution_variance,
        correction=_horner(correction._coefficients, "t"),
        model_variance=correction._model_variance,
        x_min=correction.x_min,
        x_max=correction.x_max,
    )
    namespace: dict[str, object] = {"sqrt": math.sqrt, "__builtins__": {}}
    exec(compile(source, "<metrology.correction polynomial>", "exec"), namespace)
    apply = namespace["apply"]
    assert callable(apply)
    return apply


class PolynomialTerms(NamedTuple):
    """A fitted polynomial's numbers in the centred variable ``t = (x − center)·inverse_scale``:
    coefficients of the correction, of its derivative in x, and of ``gᵀVg`` (lowest power
    first); the model's variance and the declared reading variance."""

    coefficients: tuple[float, ...]
    derivative: tuple[float, ...]
    variance: tuple[float, ...]
    center: float
    inverse_scale: float
    model_variance: float
    reading: float


class PolynomialCorrection(Correction):
    """A weighted least-squares polynomial through the points (module doc)."""

    __slots__ = (
        "_birge", "_center", "_coefficients", "_covariance", "_derivative", "_dof",
        "_inverse_scale", "_model_variance", "_reading", "_residual_sd", "_resolution_variance",
        "_variance_poly",
    )  # fmt: skip

    def __init__(self, calibration: ChannelCalibration) -> None:
        super().__init__(calibration)
        points = calibration.points
        x = np.array([p.indication for p in points])
        y = np.array([p.correction_value for p in points])
        u = np.array([p.standard_uncertainty for p in points])
        parameters = calibration.degree + 1
        center = float(np.mean(x))
        scale = float(np.max(x) - np.min(x)) / 2.0
        t = (x - center) / scale
        design = np.vander(t, parameters, increasing=True)
        weights = 1.0 / u
        # scipy is imported here: the gateway loads this module at start for its corrections.
        from scipy import linalg

        q, r = np.linalg.qr(design * weights[:, None])
        if np.min(np.abs(np.diag(r))) <= 1e-12 * np.max(np.abs(np.diag(r))):
            raise MetrologyError(
                f"the indications cannot determine a polynomial of degree {calibration.degree}"
            )
        y_offset = float(np.average(y, weights=weights * weights))
        coefficients = linalg.solve_triangular(r, q.T @ ((y - y_offset) * weights))
        residuals = (y - y_offset) - design @ coefficients
        coefficients[0] += y_offset
        r_inverse = linalg.solve_triangular(r, np.eye(parameters))
        covariance = r_inverse @ r_inverse.T
        dof_residual = x.size - parameters
        chi2 = float(np.sum((residuals * weights) ** 2))
        if calibration.weighting == "relative":
            covariance = covariance * (chi2 / dof_residual)
            dof = float(dof_residual)
        else:
            dof = math.inf
        residual_sd = (
            math.sqrt(float(residuals @ residuals) / dof_residual) if dof_residual else 0.0
        )
        self._birge = math.sqrt(chi2 / dof_residual) if dof_residual else None
        self._center = center
        self._inverse_scale = 1.0 / scale
        self._coefficients = tuple(float(c) for c in coefficients)
        self._derivative = tuple(float(k * coefficients[k]) / scale for k in range(1, parameters))
        # gᵀVg as one polynomial in t: coefficient of t^k is Σ_{i+j=k} V_ij (Horner, no matrix).
        variance_poly = [0.0] * (2 * parameters - 1)
        for i in range(parameters):
            for j in range(parameters):
                variance_poly[i + j] += float(covariance[i, j])
        self._variance_poly = tuple(variance_poly)
        self._covariance = covariance
        self._dof = dof
        self._model_variance = residual_sd**2 if calibration.residual_component else 0.0
        self._residual_sd = residual_sd
        self._reading = calibration.indication_variance
        resolution = 0.0 if calibration.resolution is None else calibration.resolution
        self._resolution_variance = resolution * resolution / 12.0
        self.apply = _polynomial_apply(self)

    @property
    def terms(self) -> PolynomialTerms:
        """The numbers ``apply`` is generated from (for a batch evaluation that must give its
        results bit for bit)."""
        return PolynomialTerms(
            self._coefficients, self._derivative, self._variance_poly, self._center,
            self._inverse_scale, self._model_variance, self._reading,
        )  # fmt: skip

    def correction_at(self, x: float) -> tuple[float, float]:
        t = (x - self._center) * self._inverse_scale
        c = 0.0
        for a in reversed(self._coefficients):
            c = c * t + a
        variance = 0.0
        for a in reversed(self._variance_poly):
            variance = variance * t + a
        return c, math.sqrt(max(variance, 0.0) + self._model_variance)

    def curve_uncertainty(self, x: float) -> float:
        """``u_fit(x) = √(gᵀVg)``: the fitted curve's own uncertainty (GUM H.3 u[b(t)])."""
        t = (x - self._center) * self._inverse_scale
        g = np.array([t**k for k in range(len(self._coefficients))])
        return math.sqrt(max(float(g @ self._covariance @ g), 0.0))

    def apply_array(
        self, x: npt.ArrayLike, u_reading: npt.ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        values = np.asarray(x, dtype=np.float64)
        t = (values - self._center) * self._inverse_scale
        c = np.polynomial.polynomial.polyval(t, self._coefficients)
        slope = (
            np.polynomial.polynomial.polyval(t, self._derivative)
            if self._derivative
            else np.zeros_like(t)
        )
        variance = np.maximum(np.polynomial.polynomial.polyval(t, self._variance_poly), 0.0)
        if u_reading is None:
            reading: FloatArray | float = self._reading
        else:
            extra = np.asarray(u_reading, dtype=np.float64)
            reading = self._resolution_variance + extra * extra
        total = variance + self._model_variance + (1.0 + slope) ** 2 * reading
        in_range = (values >= self.x_min) & (values <= self.x_max)
        return values + c, np.sqrt(total), in_range

    def coefficients_about(self, x0: float) -> tuple[FloatArray, FloatArray]:
        """Coefficients of the polynomial in ``x − x0`` and their covariance (exact transform
        of the centred, scaled basis)."""
        parameters = len(self._coefficients)
        shift = x0 - self._center
        scale = 1.0 / self._inverse_scale
        transform = np.zeros((parameters, parameters))
        for k in range(parameters):
            for j in range(k, parameters):
                transform[k, j] = math.comb(j, k) * shift ** (j - k) / scale**j
        coefficients = transform @ np.array(self._coefficients)
        return coefficients, transform @ self._covariance @ transform.T

    def summary(self, x0: float | None = None) -> CorrectionSummary:
        calibration = self.calibration
        origin = 0.0 if x0 is None else finite(x0, "x0")
        coefficients, covariance = self.coefficients_about(origin)
        return CorrectionSummary(
            channel=self.channel, certificate=self.certificate, unit=self.unit,
            method="polynomial", x_min=self.x_min, x_max=self.x_max,
            points=len(calibration.points), extrapolation=None, interpolation_component=None,
            degree=calibration.degree, weighting=calibration.weighting, x0=origin,
            coefficients=tuple(float(c) for c in coefficients),
            coefficient_uncertainties=tuple(float(math.sqrt(v)) for v in np.diag(covariance)),
            covariance=tuple(tuple(float(v) for v in row) for row in covariance),
            dof=self._dof, residual_sd=self._residual_sd, birge_ratio=self._birge,
            residual_component=calibration.residual_component,
            indication_variance=calibration.indication_variance,
        )  # fmt: skip
