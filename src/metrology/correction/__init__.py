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

The models (the points, the channel's table, the summary, :class:`Correction`) are in
:mod:`metrology.correction.models`, the methods in :mod:`metrology.correction.linear` and
:mod:`metrology.correction.polynomial`; this package exports them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from metrology._common import MetrologyError
from metrology.correction.linear import LinearCorrection
from metrology.correction.models import (
    MAX_DEGREE,
    MAX_POINTS,
    ApplyFunction,
    BoolArray,
    CalibrationPoint,
    ChannelCalibration,
    Correction,
    CorrectionSummary,
    Extrapolation,
    FloatArray,
    Method,
    Weighting,
)
from metrology.correction.polynomial import PolynomialCorrection, PolynomialTerms


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


__all__ = [
    "MAX_DEGREE",
    "MAX_POINTS",
    "ApplyFunction",
    "BoolArray",
    "CalibrationPoint",
    "ChannelCalibration",
    "Correction",
    "CorrectionSummary",
    "Extrapolation",
    "FloatArray",
    "LinearCorrection",
    "Method",
    "PolynomialCorrection",
    "PolynomialTerms",
    "Weighting",
    "build_correction",
    "correction_from_points",
]
