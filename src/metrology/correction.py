"""Corrections of indications from a calibration certificate's table of points.

A certificate says, at each calibration point, how wrong an instrument reads (its error, or the
correction to add) and how sure that is (U with k). :class:`ChannelCalibration` declares such a
table for one channel and how to use it; :func:`build_correction` precomputes a
:class:`Correction` once per certificate, whose :meth:`Correction.apply` turns an indication
``x`` into ``(x + c(x), u, in_range)`` in well under a microsecond, and
:meth:`Correction.apply_array` does the same for numpy arrays.

The abscissa is the indication (what is known at run time); ``correction = reference −
indication = −error``.

**Piecewise linear** (``method="linear"``, default). Between neighbouring points ``i`` and
``i+1``, with ``λ = (x − x_i)/(x_{i+1} − x_i)``:

* ``c(x) = (1 − λ) c_i + λ c_{i+1}``;
* ``u_pts(x) = |1 − λ| u_i + |λ| u_{i+1}``: the law of propagation (GUM 5.2.2) of the two
  points' uncertainties for the *fully correlated* case. It is the upper bound over every
  correlation coefficient ``r ≤ 1`` — ``(1−λ)²u_i² + λ²u_{i+1}² + 2rλ(1−λ)u_i u_{i+1} ≤
  ((1−λ)u_i + λu_{i+1})²`` — and certificates rarely state the correlation of their points
  (common reference, common method), so it is the safe choice; it equals the certificate's
  u at every point and never dips between them.
* ``u_int(x)``: the interpolation error. For a curve with second derivative bounded by ``M``,
  the linear interpolant's error is bounded by ``M/2 · |(x − x_i)(x − x_{i+1})|`` (Lagrange
  remainder, e.g. Burden & Faires, *Numerical Analysis*, Thm. 3.3). ``M`` is estimated on each
  interval from the second divided differences of the triples of points that contain it
  (``f'' ≈ 2 f[x_{j−1}, x_j, x_{j+1}]``), and the bound is taken as the half-width of a
  rectangular distribution (÷√3). It is zero at the points, largest mid-interval, zero for a
  straight-line table and for a table of two points (no curvature can be seen: stated, not
  hidden). Noise in the points' corrections inflates the estimate (conservative).
  ``interpolation_component=False`` leaves it out.
* Outside ``[x_min, x_max]``: ``extrapolation="linear"`` (default) extends the end interval
  with the same formulas (u grows linearly, u_int quadratically); ``"clamp"`` uses the end
  point's correction and u unchanged. Either way ``in_range`` is False.

**Polynomial** (``method="polynomial"``, ``degree`` 1–6). A least-squares polynomial in
``t = (x − centre)/half_range`` weighted by ``1/u_i²`` (GUM H.3 for the straight line), with
the covariance of its coefficients ``V``:

* ``weighting="absolute"`` (default): the certificate's u are taken as known, ``V = (AᵀWA)⁻¹``,
  infinite degrees of freedom;
* ``weighting="relative"``: the u give relative weights only and ``V`` is scaled by
  ``χ²/ν`` (ν = n − p degrees of freedom) -- GUM H.3's Type A evaluation when all u are equal.

``u_fit(x)² = g(x)ᵀ V g(x)`` with ``g = (1, t, t², …)``; with ``residual_component=True``
(default) the residual standard deviation ``s = √(Σ r_i²/ν)`` is added in quadrature as the
model's own error between the points (conservative: for an adequate model it counts the
points' scatter a second time; the summary's Birge ratio ``√(χ²/ν)`` tells whether the model
explains the points). Outside the range the polynomial is evaluated as fitted (its u_fit grows
with distance) and ``in_range`` is False.

**The reading's own uncertainty** is added in both methods: the resolution of the indication
(rectangular, ``δx/√12``) and a standard uncertainty declared by the channel
(``reading_uncertainty``; :meth:`Correction.apply` may pass a per-reading one instead), with
sensitivity ``1 + c'(x)``:

    u(x)² = u_correction(x)² + (1 + c'(x))² · (δx²/12 + u_reading²)

Not covered: correlations between the points unless the fully correlated bound above; the
uncertainty of the indications at calibration (it is inside the certificate's U); hysteresis
and drift since calibration (add them to ``reading_uncertainty`` if known).

Longer than 500 lines on purpose: the interpolation, the fits and their uncertainties share the
precomputed per-interval arrays that the per-reading path reads.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal, NamedTuple, Protocol, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from metrology._common import Dof, MetrologyError, MetrologyModel, check_text, finite, finite_fields

Method = Literal["linear", "polynomial"]
Extrapolation = Literal["linear", "clamp"]
Weighting = Literal["absolute", "relative"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_POINTS = 10_000
MAX_DEGREE = 6
_SQRT3 = math.sqrt(3.0)


class CalibrationPoint(MetrologyModel):
    """One row of a certificate: the indication and its correction (or error, or the
    reference value), with the expanded uncertainty and its coverage factor."""

    indication: float
    correction: float | None = None
    """``reference − indication``: what to add to the indication."""
    error: float | None = None
    """``indication − reference`` (the correction is its negative)."""
    reference: float | None = None
    """The reference value the indication corresponds to."""
    expanded_uncertainty: float = Field(ge=0.0)
    coverage_factor: float = Field(default=2.0, gt=0.0)

    _finite = finite_fields(
        "indication", "correction", "error", "reference", "expanded_uncertainty", "coverage_factor"
    )

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        given = [v is not None for v in (self.correction, self.error, self.reference)]
        if sum(given) != 1:
            raise MetrologyError(
                "a calibration point gives exactly one of correction, error or reference"
            )
        return self

    @property
    def correction_value(self) -> float:
        """The correction to add to the indication."""
        if self.correction is not None:
            return self.correction
        if self.error is not None:
            return -self.error
        assert self.reference is not None  # the validator guarantees one of the three
        return self.reference - self.indication

    @property
    def standard_uncertainty(self) -> float:
        """``U / k``."""
        return self.expanded_uncertainty / self.coverage_factor


class ChannelCalibration(MetrologyModel):
    """A channel's calibration: its certificate's points and how to correct with them."""

    channel: str = Field(min_length=1, max_length=200)
    unit: str = Field(default="", max_length=40)
    certificate: str | None = Field(default=None, max_length=200)
    """The certificate's identifier, carried for traceability."""
    points: tuple[CalibrationPoint, ...] = Field(min_length=2, max_length=MAX_POINTS)
    method: Method = "linear"
    degree: int = Field(default=1, ge=1, le=MAX_DEGREE)
    """Degree of the polynomial (``method="polynomial"`` only)."""
    extrapolation: Extrapolation = "linear"
    """Outside the range, for ``method="linear"``: extend the end interval, or clamp."""
    interpolation_component: bool = True
    """``method="linear"``: add the interpolation-error estimate (module doc)."""
    weighting: Weighting = "absolute"
    """``method="polynomial"``: the points' u as known, or as relative weights (GUM H.3)."""
    residual_component: bool = True
    """``method="polynomial"``: add the residual standard deviation (module doc)."""
    resolution: float | None = Field(default=None, gt=0.0)
    """Digit step of the indication (rectangular, δx/√12)."""
    reading_uncertainty: float = Field(default=0.0, ge=0.0)
    """A standard uncertainty of each indication besides its resolution (noise, stability)."""

    @field_validator("channel", "unit", "certificate")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, "the text")

    _finite = finite_fields("resolution", "reading_uncertainty")

    @model_validator(mode="after")
    def _usable(self) -> Self:
        indications = sorted(p.indication for p in self.points)
        if self.method == "linear":
            for a, b in pairwise(indications):
                if a == b:
                    raise MetrologyError(
                        f"two calibration points at the indication {a}: piecewise linear "
                        "interpolation needs distinct indications (average them first)"
                    )
        else:
            distinct = len(set(indications))
            if distinct < self.degree + 1:
                raise MetrologyError(
                    f"a polynomial of degree {self.degree} needs at least {self.degree + 1} "
                    f"distinct indications, got {distinct}"
                )
            if self.weighting == "relative" and len(indications) < self.degree + 2:
                raise MetrologyError(
                    "relative weighting estimates the scatter from the residuals: it needs at "
                    f"least {self.degree + 2} points for degree {self.degree}"
                )
            if any(p.expanded_uncertainty == 0.0 for p in self.points):
                raise MetrologyError(
                    "a weighted fit needs every point's expanded uncertainty to be positive"
                )
        return self

    @property
    def indication_variance(self) -> float:
        """``δx²/12 + u_reading²``: the variance of an indication itself."""
        resolution = 0.0 if self.resolution is None else self.resolution
        return resolution * resolution / 12.0 + self.reading_uncertainty**2


class CorrectionSummary(MetrologyModel):
    """What a correction does, for a report, an audit trail or a DCC: the method, its points
    or fitted coefficients, and their uncertainties."""

    channel: str
    certificate: str | None
    unit: str
    method: Method
    x_min: float
    x_max: float
    points: int
    extrapolation: Extrapolation | None
    interpolation_component: bool | None
    degree: int | None
    weighting: Weighting | None
    x0: float | None
    """The polynomial's coefficients are of powers of ``x − x0``."""
    coefficients: tuple[float, ...] | None
    coefficient_uncertainties: tuple[float, ...] | None
    covariance: tuple[tuple[float, ...], ...] | None
    dof: Dof
    """Degrees of freedom of the correction's u: infinite unless a relative-weighted fit."""
    residual_sd: float | None
    birge_ratio: float | None
    residual_component: bool | None
    indication_variance: float


class ApplyFunction(Protocol):
    """The per-reading function of a correction (see :attr:`Correction.apply`)."""

    def __call__(self, x: float, u_reading: float | None = None) -> tuple[float, float, bool]:
        """``(corrected, u, in_range)`` for the indication ``x``."""
        ...


class Correction:
    """A channel's correction, precomputed from its :class:`ChannelCalibration`."""

    __slots__ = ("apply", "calibration", "certificate", "channel", "unit", "x_max", "x_min")

    apply: ApplyFunction
    """``apply(x, u_reading=None) -> (corrected, u, in_range)`` for one indication ``x``:
    ``corrected = x + c(x)``, ``u`` its standard uncertainty (the correction's and the
    reading's own), ``in_range`` whether x lies in the calibrated range. ``u_reading``
    replaces the channel's declared ``reading_uncertainty`` for this reading (the resolution
    stays). A function built once per certificate with its numbers bound in: the fast path."""

    def __init__(self, calibration: ChannelCalibration) -> None:
        self.calibration = calibration
        self.channel = calibration.channel
        self.certificate = calibration.certificate
        self.unit = calibration.unit
        indications = [p.indication for p in calibration.points]
        self.x_min = min(indications)
        self.x_max = max(indications)

    def correction_at(self, x: float) -> tuple[float, float]:
        """The correction at ``x`` and its standard uncertainty (without the reading's own)."""
        raise NotImplementedError

    def apply_array(
        self, x: npt.ArrayLike, u_reading: npt.ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """:meth:`apply` over an array of indications (numpy, vectorised)."""
        raise NotImplementedError

    def in_range(self, x: float) -> bool:
        """Whether ``x`` lies within the calibrated range (inclusive)."""
        return self.x_min <= x <= self.x_max

    def summary(self, x0: float | None = None) -> CorrectionSummary:
        """The correction described (polynomial coefficients about ``x0``, default 0)."""
        raise NotImplementedError


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


def build_correction(calibration: ChannelCalibration) -> Correction:
    """The precomputed correction of ``calibration`` (once per certificate)."""
    if calibration.method == "polynomial":
        return PolynomialCorrection(calibration)
    return LinearCorrection(calibration)


def correction_from_points(
    channel: str,
    indications: Sequence[float],
    corrections: Sequence[float],
    expanded_uncertainties: Sequence[float],
    coverage_factor: float = 2.0,
    **options: object,
) -> Correction:
    """Shorthand: a correction from parallel sequences (``options`` as in
    :class:`ChannelCalibration`)."""
    if not len(indications) == len(corrections) == len(expanded_uncertainties):
        raise MetrologyError("indications, corrections and uncertainties differ in length")
    points = tuple(
        CalibrationPoint(
            indication=x, correction=c, expanded_uncertainty=u, coverage_factor=coverage_factor
        )
        for x, c, u in zip(indications, corrections, expanded_uncertainties, strict=True)
    )
    return build_correction(
        ChannelCalibration.model_validate({"channel": channel, "points": points, **options})
    )
