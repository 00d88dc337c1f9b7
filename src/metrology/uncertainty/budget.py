"""An uncertainty budget and its evaluation (GUM 5.1.2, or 5.2.2 with correlations; ``ν_eff``
by Welch–Satterthwaite; the coverage factor from Student's t), and its result.
"""

from __future__ import annotations

import math
from typing import Literal, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from metrology._common import (
    Dof,
    MetrologyError,
    MetrologyModel,
    check_text,
    finite_fields,
    from_attributes,
)
from metrology.rounding import FormattedResult, UncertaintyRounding, round_result
from metrology.uncertainty.contribution import Contribution, Distribution, Evaluation
from metrology.uncertainty.coverage import (
    DEFAULT_COVERAGE_PROBABILITY,
    coverage_factor,
    effective_dof,
    truncate_dof,
)

DofRounding = Literal["floor", "none"]


class Correlation(MetrologyModel):
    """The correlation coefficient ``r(x_i, x_j)`` of two contributions, by name."""

    first: str
    second: str
    coefficient: float = Field(ge=-1.0, le=1.0)


class ContributionResult(MetrologyModel):
    """One row of an evaluated budget, every number a report or a DCC prints."""

    name: str
    estimate: float
    unit: str
    distribution: Distribution
    quoted: float
    divisor: float
    standard_uncertainty: float
    """``u(x_i)``."""
    sensitivity: float
    """``c_i``."""
    contribution: float
    """``u_i(y) = |c_i| u(x_i)`` in the unit of y."""
    dof: Dof
    evaluation: Evaluation
    variance_fraction: float
    """``u_i(y)² / u_c(y)²`` (an index of importance; with correlations they need not sum
    to 1)."""
    note: str


class BudgetResult(MetrologyModel):
    """An evaluated budget: the estimate of y, u_c, ν_eff, k, U and every contribution."""

    quantity: str
    unit: str
    estimate: float
    combined_standard_uncertainty: float
    effective_dof: Dof
    """Welch–Satterthwaite ``ν_eff``, not truncated."""
    dof_used: Dof
    """The ``ν`` the coverage factor was taken for (``ν_eff`` truncated unless
    ``dof_rounding="none"``)."""
    coverage_probability: float
    coverage_factor: float
    expanded_uncertainty: float
    contributions: tuple[ContributionResult, ...]
    correlations: tuple[Correlation, ...]

    def rounded(
        self,
        significant_digits: int = 2,
        rule: UncertaintyRounding = "ea-4/02",
    ) -> FormattedResult:
        """The result rounded for a report (:func:`round_result`)."""
        return round_result(
            self.estimate,
            self.expanded_uncertainty,
            coverage_factor=self.coverage_factor,
            coverage_probability=self.coverage_probability,
            unit=self.unit,
            significant_digits=significant_digits,
            rule=rule,
        )


class Budget(MetrologyModel):
    """An uncertainty budget for one output quantity ``y``.

    ``estimate``: the estimate of y; by default ``Σ c_i x_i``, which is the estimate for the
    linear models of calibration (``E = V_ind - V_ref + δ...``); give it for a non-linear model,
    whose ``c_i`` are then the partial derivatives at the estimates.
    """

    quantity: str = Field(default="y", min_length=1, max_length=200)
    unit: str = Field(default="", max_length=40)
    contributions: tuple[Contribution, ...] = Field(min_length=1, max_length=1000)
    correlations: tuple[Correlation, ...] = ()
    estimate: float | None = None
    coverage_probability: float = Field(default=DEFAULT_COVERAGE_PROBABILITY, gt=0.0, lt=1.0)
    dof_rounding: DofRounding = "floor"
    """``floor``: k for ``ν_eff`` truncated to an integer (GUM G.4.1, EA-4/02 Annex E;
    conservative); ``none``: k for the fractional ``ν_eff``."""

    @field_validator("quantity", "unit")
    @classmethod
    def _printable(cls, value: str) -> str:
        return check_text(value, "the text")

    _finite = finite_fields("estimate", what="the estimate")

    @model_validator(mode="after")
    def _names(self) -> Self:
        seen: set[str] = set()
        for contribution in self.contributions:
            if contribution.name in seen:
                raise MetrologyError(f"two contributions are named {contribution.name!r}")
            seen.add(contribution.name)
        pairs: set[frozenset[str]] = set()
        for correlation in self.correlations:
            for name in (correlation.first, correlation.second):
                if name not in seen:
                    raise MetrologyError(
                        f"a correlation names {name!r}, which is not in the budget"
                    )
            if correlation.first == correlation.second:
                raise MetrologyError(f"{correlation.first!r} is correlated with itself")
            pair = frozenset((correlation.first, correlation.second))
            if pair in pairs:
                raise MetrologyError(
                    f"the correlation of {correlation.first!r} and {correlation.second!r} "
                    "is given twice"
                )
            pairs.add(pair)
        return self

    def evaluate(self) -> BudgetResult:
        """Combine the contributions (GUM 5.1.2/5.2.2, G.4.1, G.6.4)."""
        return evaluate(self)


def _correlation_groups(
    budget: Budget, index: dict[str, int]
) -> tuple[list[list[int]], list[tuple[int, int, float]]]:
    """Connected groups of correlated contributions (union-find) and the index pairs."""
    parent = list(range(len(budget.contributions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs: list[tuple[int, int, float]] = []
    for correlation in budget.correlations:
        if correlation.coefficient == 0.0:
            continue
        i, j = index[correlation.first], index[correlation.second]
        pairs.append((i, j, correlation.coefficient))
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(budget.contributions)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values()), pairs


def _check_positive_semidefinite(size: int, pairs: list[tuple[int, int, float]]) -> None:
    matrix = np.eye(size)
    for i, j, r in pairs:
        matrix[i, j] = matrix[j, i] = r
    smallest = float(np.linalg.eigvalsh(matrix)[0])
    if smallest < -1e-10:
        raise MetrologyError(
            f"the correlation coefficients are inconsistent: their matrix is not positive "
            f"semi-definite (smallest eigenvalue {smallest:.3g})"
        )


def evaluate(budget: Budget) -> BudgetResult:
    """Evaluate ``budget``: see :class:`BudgetResult`.

    Correlations (GUM 5.2.2): ``u_c² = Σ_i Σ_j c_i c_j u_i u_j r_ij``. Welch–Satterthwaite is
    defined for independent contributions; correlated ones are accepted as GTC accepts them
    (Willink, Metrologia 44 (2007) 340): inputs with infinite ν may be correlated freely;
    inputs with finite ν only within a group sharing one ν (e.g. several results of one Type A
    evaluation), which then counts as one term of the formula.
    """
    contributions = budget.contributions
    index = {c.name: i for i, c in enumerate(contributions)}
    signed = [c.sensitivity * c.standard_uncertainty for c in contributions]
    variances = [s * s for s in signed]
    groups, pairs = _correlation_groups(budget, index)
    if pairs:
        _check_positive_semidefinite(len(contributions), pairs)
    covariance = [2.0 * r * signed[i] * signed[j] for i, j, r in pairs]
    total = math.fsum(variances + covariance)
    if not total > 0.0:
        raise MetrologyError(
            "the combined standard uncertainty is zero: every contribution (or sensitivity) is 0"
        )
    member_of = {i: g for g, members in enumerate(groups) for i in members}
    group_variance = [0.0] * len(groups)
    for i, v in enumerate(variances):
        group_variance[member_of[i]] += v
    for (i, _j, _r), cov in zip(pairs, covariance, strict=True):
        group_variance[member_of[i]] += cov
    terms: list[tuple[float, float]] = []
    for g, members in enumerate(groups):
        dofs = {contributions[i].dof for i in members}
        if len(members) > 1 and len(dofs) > 1:
            names = ", ".join(repr(contributions[i].name) for i in members)
            raise MetrologyError(
                f"correlated contributions {names} have different degrees of freedom: "
                "Welch–Satterthwaite accepts correlation only between inputs with infinite "
                "degrees of freedom, or within a group sharing one (Willink 2007)"
            )
        terms.append((group_variance[g], dofs.pop()))
    u_c = math.sqrt(total)
    effective = effective_dof(total, terms)
    used = truncate_dof(effective) if budget.dof_rounding == "floor" else effective
    k = coverage_factor(used, budget.coverage_probability)
    estimate = budget.estimate
    if estimate is None:
        estimate = math.fsum(c.sensitivity * c.estimate for c in contributions)
    rows = tuple(
        from_attributes(
            ContributionResult,
            c,
            contribution=abs(signed[i]),
            variance_fraction=variances[i] / total,
        )
        for i, c in enumerate(contributions)
    )
    return from_attributes(
        BudgetResult,
        budget,
        estimate=estimate,
        combined_standard_uncertainty=u_c,
        effective_dof=effective,
        dof_used=used,
        coverage_factor=k,
        expanded_uncertainty=k * u_c,
        contributions=rows,
    )
