"""The value in use of a reference standard on a date: certified value + predicted drift.

    V(t) = V_cert + Δ(t),   Δ(t) = f(t) − f(t_cert)

``V_cert`` with ``U/k`` comes from the certificate; ``f`` is a drift fit of the standard (a
polynomial in ``x − x0`` with the covariance of its coefficients, as
``gateway.analytics.drift.DriftFit`` gives it: ``x0``, ``coefficients[].value``,
``covariance``, ``dof``, ``u_new``). The uncertainty of the change is that of the fitted curve's
difference, ``u_Δ² = (g(t) − g(t_c))ᵀ V (g(t) − g(t_c))`` with ``g(x) = (1, x−x0, (x−x0)², …)``
(for a straight line: ``|t − t_c|·u(slope)``), plus, for the fit's *prediction* interval, the
scatter of one observation about the curve ``u_new`` (the standard's own short-term
instability; ``include_scatter=False`` leaves it out when the point's repeatability already
holds it). Then

    u(V)² = (U/k)² + u_Δ²,   ν_eff by Welch–Satterthwaite, k at the coverage probability.

Assumption: the certificate and the drift estimate are independent (a drift fitted to monitoring
data, or to earlier certificates). When the fit runs over the certificate history that includes
this certificate, use the fit's own prediction at the date as the value in use instead (the
standards service does): adding the certificate again would count it twice.

Only the arithmetic lives here; nothing of the gateway is imported.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from pydantic import Field, model_validator

from metrology._common import (
    INFINITE_DOF_DEFAULT,
    Dof,
    MetrologyError,
    MetrologyModel,
    check_text,
    finite,
    finite_fields,
    from_attributes,
)
from metrology.uncertainty import (
    DEFAULT_COVERAGE_PROBABILITY,
    Budget,
    BudgetResult,
    Contribution,
    coverage_factor,
)


class DriftCurve(MetrologyModel):
    """A fitted drift polynomial in ``x − x0``: coefficients, their covariance, ``ν``, and the
    standard deviation ``u_new`` of one observation about the curve."""

    x0: float
    coefficients: tuple[float, ...] = Field(min_length=1, max_length=7)
    covariance: tuple[tuple[float, ...], ...]
    dof: Dof = Field(default=math.inf, ge=1.0, json_schema_extra=INFINITE_DOF_DEFAULT)
    u_new: float = Field(default=0.0, ge=0.0)

    _finite = finite_fields("x0", "u_new")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        p = len(self.coefficients)
        if len(self.covariance) != p or any(len(row) != p for row in self.covariance):
            raise MetrologyError(f"the covariance must be {p}×{p} for {p} coefficients")
        matrix = np.array(self.covariance, dtype=np.float64)
        if not np.all(np.isfinite(matrix)) or not all(math.isfinite(c) for c in self.coefficients):
            raise MetrologyError("the drift curve holds a non-finite number")
        if not np.allclose(matrix, matrix.T, rtol=1e-9, atol=0.0):
            raise MetrologyError("the covariance of the drift coefficients is not symmetric")
        if np.any(np.diag(matrix) < 0.0):
            raise MetrologyError("the covariance of the drift coefficients has a negative variance")
        return self

    def change(self, start: float, end: float) -> tuple[float, float]:
        """``f(end) − f(start)`` and the standard uncertainty of the curve's difference."""
        a, b = finite(start, "the start") - self.x0, finite(end, "the end") - self.x0
        g = np.array([b**k - a**k for k in range(len(self.coefficients))])
        value = float(g @ np.array(self.coefficients))
        variance = float(g @ np.array(self.covariance) @ g)
        return value, math.sqrt(max(variance, 0.0))


class DriftTerm(MetrologyModel):
    """The predicted change of a standard since its certificate, with its uncertainty."""

    change: float
    standard_uncertainty: float = Field(ge=0.0)
    dof: Dof = Field(default=math.inf, ge=1.0, json_schema_extra=INFINITE_DOF_DEFAULT)

    _finite = finite_fields("change", "standard_uncertainty")

    @classmethod
    def from_interval(
        cls, change: float, half_width: float, confidence: float, dof: float = math.inf
    ) -> DriftTerm:
        """From a prediction interval ``change ± half_width`` at ``confidence`` with ``dof``:
        ``u = half_width / t((1 + confidence)/2, dof)``."""
        return cls(
            change=change,
            standard_uncertainty=half_width / coverage_factor(dof, confidence),
            dof=dof,
        )


def drift_since(
    curve: DriftCurve, certificate_date: float, date: float, *, include_scatter: bool = True
) -> DriftTerm:
    """The drift of ``curve`` from ``certificate_date`` to ``date`` (x units of the fit, e.g.
    days since the epoch), with the prediction's (or, without scatter, the curve's) u."""
    change, u_curve = curve.change(certificate_date, date)
    u = math.hypot(u_curve, curve.u_new) if include_scatter else u_curve
    return DriftTerm(change=change, standard_uncertainty=u, dof=curve.dof)


class ValueInUse(MetrologyModel):
    """The value of a standard to use on a date, its uncertainty, and the two contributions
    (certificate, drift) to put into a calibration point's budget."""

    value: float
    standard_uncertainty: float
    effective_dof: Dof
    coverage_factor: float
    expanded_uncertainty: float
    coverage_probability: float
    certified_value: float
    drift: DriftTerm | None
    budget: BudgetResult

    def contributions(self, sensitivity: float = 1.0) -> tuple[Contribution, ...]:
        """The certificate and the drift as budget contributions with ``sensitivity`` (−1 for
        ``error = indication − reference``)."""
        return tuple(
            Contribution(
                name=row.name,
                estimate=row.estimate,
                unit=row.unit,
                distribution=row.distribution,
                quoted=row.quoted,
                coverage_factor=None if row.divisor == 1.0 else row.divisor,
                sensitivity=sensitivity,
                dof=row.dof,
                note=row.note,
            )
            for row in self.budget.contributions
        )


def value_in_use(
    certified_value: float,
    expanded_uncertainty: float,
    coverage_factor: float = 2.0,
    *,
    drift: DriftTerm | None = None,
    certificate_dof: float = math.inf,
    coverage_probability: float = DEFAULT_COVERAGE_PROBABILITY,
    name: str = "reference",
    unit: str = "",
) -> ValueInUse:
    """``V_cert + Δ`` with ``u² = (U/k)² + u_Δ²`` (see the module doc)."""
    check_text(name, "the name", 150)
    rows = [
        Contribution(
            name=f"{name} (certificate)",
            estimate=certified_value,
            unit=unit,
            distribution="normal",
            quoted=expanded_uncertainty,
            coverage_factor=coverage_factor,
            dof=certificate_dof,
            note="certified value, U/k",
        )
    ]
    if drift is not None and drift.standard_uncertainty > 0.0:
        rows.append(
            Contribution(
                name=f"{name} (drift since certificate)",
                estimate=drift.change,
                unit=unit,
                distribution="normal",
                quoted=drift.standard_uncertainty,
                dof=drift.dof,
                note="predicted drift since the certificate's date",
            )
        )
    change = 0.0 if drift is None else drift.change
    budget = Budget(
        quantity=name,
        unit=unit,
        contributions=tuple(rows),
        estimate=certified_value + change,
        coverage_probability=coverage_probability,
    ).evaluate()
    return from_attributes(
        ValueInUse,
        budget,
        value=budget.estimate,
        standard_uncertainty=budget.combined_standard_uncertainty,
        certified_value=certified_value,
        drift=drift,
        budget=budget,
    )
