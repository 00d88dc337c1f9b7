"""The models of a correction (:mod:`metrology.correction`): a certificate's point, a channel's
table of points with how to use it, the summary of a correction, and :class:`Correction`, the
precomputed correction every method (:mod:`metrology.correction.linear`,
:mod:`metrology.correction.polynomial`) is.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Protocol, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from metrology._common import Dof, MetrologyError, MetrologyModel, check_text, finite_fields

Method = Literal["linear", "polynomial"]
Extrapolation = Literal["linear", "clamp"]
Weighting = Literal["absolute", "relative"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_POINTS = 10_000
MAX_DEGREE = 6


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
