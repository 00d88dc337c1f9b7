"""What a drift fit gives (:mod:`gateway.analytics.drift` computes it): the fit with its
coefficients, covariance and model selection, a prediction, the value in use, the time to out of
tolerance and the whole report -- frozen models whose JSON is documented in docs/drift.md."""

from __future__ import annotations

from typing import Literal

from gateway.analytics.timebase import XKind
from metrology._common import Dof, MetrologyModel

ModelName = Literal["mean", "linear", "quadratic"]
ModelChoice = Literal["auto", "mean", "linear", "quadratic"]
Weighting = Literal["birge", "absolute", "relative"]

DEGREE: dict[ModelName, int] = {"mean": 0, "linear": 1, "quadratic": 2}
TERM_NAMES = ("intercept", "slope", "curvature")
DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05
SELECTION_RULE = (
    "backward elimination: from the quadratic down, keep the first model whose highest-order "
    "coefficient differs from zero at significance alpha (two-sided t test, |b|/u(b) > "
    "t(1-alpha/2, dof); normal quantile when dof is infinite); a model is a candidate only if "
    "the data leave it at least one residual degree of freedom; if no term is significant, the mean"
)


class Coefficient(MetrologyModel):
    """One fitted coefficient of the polynomial in ``x - x0``."""

    name: str
    """``intercept`` (value at x0), ``slope`` (per x unit) or ``curvature`` (per x unit²)."""
    value: float
    standard_uncertainty: float


class FitBasis(MetrologyModel):
    """The fit in the centred basis ``t = (x - center) / scale`` used for exact predictions."""

    center: float
    scale: float
    coefficients: list[float]
    covariance: list[list[float]]


class SelectionStep(MetrologyModel):
    """One test of the model-selection rule: is this model's highest-order term significant?"""

    model: ModelName
    term: str
    estimate: float
    standard_uncertainty: float
    t_statistic: float
    critical_value: float
    dof: Dof
    significant: bool


class ModelSelection(MetrologyModel):
    """How ``model="auto"`` chose the model: the rule, its level and each test made."""

    rule: str
    alpha: float
    steps: list[SelectionStep]
    chosen: ModelName


class DriftFit(MetrologyModel):
    """A fitted drift model: coefficients around ``x0`` with their covariance and dof."""

    model: ModelName
    n: int
    dof: Dof
    """Degrees of freedom of the coefficients' uncertainties (``n - p``, or infinite)."""
    weighting: Literal["none", "birge", "absolute", "relative"]
    x_kind: XKind
    """``number``: x as given; ``date``: x in days since 1970-01-01T00:00:00Z."""
    x0: float
    x0_date: str | None
    x_min: float
    x_max: float
    coefficients: list[Coefficient]
    covariance: list[list[float]]
    correlation: list[list[float]]
    residual_sd: float
    """Unweighted residual standard deviation ``√(Σr²/ν)`` in y units (0 when ν = 0)."""
    chi2: float | None
    """Weighted fits: ``Σ(r/u)²``."""
    birge_ratio: float | None
    """Weighted fits: ``√(χ²/ν)``; above 1 the values scatter more than their uncertainties."""
    covariance_scale: float
    """Factor applied to ``(XᵀWX)⁻¹``: s² (OLS), χ²/ν (relative, or Birge > 1), else 1."""
    u_new: float
    """Standard deviation of one new observation about the curve, used by prediction intervals."""
    basis: FitBasis
    selection: ModelSelection | None = None

    def predict(self, x: float, confidence: float = DEFAULT_CONFIDENCE) -> Prediction:
        """The predicted value at ``x`` with its confidence and prediction intervals."""
        from gateway.analytics.drift import predict  # the numerics import these models

        return predict(self, x, confidence)


class Prediction(MetrologyModel):
    """The fitted curve at one x, with the uncertainty of the curve and of a new observation."""

    x: float
    date: str | None
    value: float
    u_fit: float
    """Standard uncertainty of the fitted value (the curve itself: GUM H.3 u[b(t)])."""
    u_prediction: float
    """Standard uncertainty of a new observation: ``√(u_fit² + u_new²)``."""
    dof: Dof
    confidence: float
    coverage_factor: float
    """Student t quantile ``t((1+confidence)/2, dof)`` (normal when dof is infinite)."""
    confidence_interval: tuple[float, float]
    prediction_interval: tuple[float, float]
    extrapolated: bool
    """True when x lies outside the range of the data."""


class ValueInUse(MetrologyModel):
    """The value of the standard to use at a date, with its uncertainty (the prediction's)."""

    x: float
    date: str | None
    value: float
    standard_uncertainty: float
    dof: Dof
    coverage_factor: float
    expanded_uncertainty: float
    confidence: float


class ToleranceCrossing(MetrologyModel):
    """When the prediction interval first leaves ``[lower, upper]`` after ``start``."""

    nominal: float
    lower: float
    upper: float
    confidence: float
    start: float
    start_date: str | None
    searched_until: float
    searched_until_date: str | None
    already_outside: bool
    crossing: float | None
    """First x at which the prediction interval reaches a limit; None if not before the horizon."""
    crossing_date: str | None
    side: Literal["upper", "lower"] | None
    time_to_crossing: float | None
    """``crossing - start`` in x units (days for dates); 0 if already outside."""


class DriftReport(MetrologyModel):
    """Everything ``etalon drift fit`` reports: the fit, the value in use and the crossing."""

    format: Literal["etalon.drift.fit/1"] = "etalon.drift.fit/1"
    fit: DriftFit
    prediction: Prediction
    value_in_use: ValueInUse
    tolerance: ToleranceCrossing | None = None
