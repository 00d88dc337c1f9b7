"""Uncertainty budgets in the GUM's way (JCGM 100:2008, EA-4/02 M:2022).

A :class:`Budget` is a list of :class:`Contribution` s, each an input quantity ``X_i`` with its
estimate ``x_i``, the value quoted for its uncertainty (a half-width, or an expanded uncertainty
with its coverage factor or probability), the distribution that turns the quoted value into a
standard uncertainty ``u(x_i)``, a sensitivity coefficient ``c_i`` and degrees of freedom ``ν_i``.
:meth:`Budget.evaluate` gives the :class:`BudgetResult`: contributions ``u_i(y) = |c_i| u(x_i)``,
the combined standard uncertainty (GUM 5.1.2, or 5.2.2 with correlations), the effective degrees
of freedom (Welch–Satterthwaite, GUM G.4.1), the coverage factor from Student's t at the
coverage probability ``p`` and the expanded uncertainty ``U = k u_c``.

Computation is in binary floating point; :func:`round_result` (:mod:`metrology.rounding`) turns
a result into decimal strings by the GUM/EA-4/02 rules (U to two significant digits, the value
to the same place).
Every number here agrees with GTC (MSL's GUM Tree Calculator) to 1e-12 (tests/metrology).

The default coverage probability is 95.45 % (EA-4/02 M:2022 §5 and Annex E), taken as the
probability of a normal distribution within ±2σ (0.9544997…): a result with many degrees of
freedom gets k = 2 exactly, as accredited calibration certificates state it, and one with few
degrees of freedom the larger t-factor of EA-4/02 Table E.1 / GUM Table G.2 (e.g. 2.28 for
ν = 10). Pass ``coverage_probability=0.95`` for the GUM's 95 % (k = 1.96 for ν = ∞).

Longer than 500 lines on purpose: rounding is apart (:mod:`metrology.rounding`), but a contribution
and the budget that combines it stay together (the evaluation reads every field of a contribution).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cached_property, partial
from typing import Literal, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from metrology._common import (
    INFINITE_DOF_DEFAULT,
    Dof,
    MetrologyError,
    MetrologyModel,
    check_text,
    finite,
    finite_fields,
    from_attributes,
    shorthand,
)
from metrology.rounding import FormattedResult as FormattedResult
from metrology.rounding import UncertaintyRounding as UncertaintyRounding
from metrology.rounding import round_result as round_result

Distribution = Literal["normal", "rectangular", "triangular", "arcsine", "student_t"]
"""How a quoted value becomes a standard uncertainty:

* ``normal`` -- quoted is an expanded uncertainty ``U`` with ``coverage_factor`` k, or with a
  ``coverage_probability`` p (k = the normal quantile), or, with neither, the standard
  uncertainty itself (k = 1). A Type A ``s/√n`` is a ``normal`` with its ``dof``.
* ``student_t`` -- quoted is ``U`` at ``coverage_probability`` p with ``dof`` ν (k = t_p(ν)), as
  a certificate stating "U at 95 % with ν = 12" is read (GUM G.6.4), or with ``coverage_factor``.
* ``rectangular`` (uniform), ``triangular``, ``arcsine`` (U-shaped) -- quoted is the half-width
  ``a`` of the limits: u = a/√3, a/√6, a/√2 (GUM 4.3.7, 4.3.9; EA-4/02 §3.3).
"""

HalfWidthDistribution = Literal["rectangular", "triangular", "arcsine"]
"""The distributions quoted by the half-width of their limits."""

Evaluation = Literal["A", "B"]
DofRounding = Literal["floor", "none"]

DEFAULT_COVERAGE_PROBABILITY = math.erf(math.sqrt(2.0))
"""EA-4/02's p = 95.45 %, taken as exactly the probability of ±2σ of a normal distribution
(0.954499736…) so that ν = ∞ gives k = 2.000 exactly (see the module doc)."""

INFINITE_DOF = 1e5
"""Above this many degrees of freedom the normal quantile is used, as GTC does (the t quantile
differs from it by < 2e-5 relative there)."""

HALF_WIDTH_DIVISORS: dict[str, float] = {
    "rectangular": math.sqrt(3.0),
    "triangular": math.sqrt(6.0),
    "arcsine": math.sqrt(2.0),
}

_FLOOR_SLACK = 1e-9
"""``ν_eff`` within this of an integer counts as that integer when truncated (rounding noise)."""


def coverage_factor(dof: float = math.inf, p: float = DEFAULT_COVERAGE_PROBABILITY) -> float:
    """The two-sided coverage factor for probability ``p``: Student's t quantile
    ``t((1 + p)/2, ν)``, the normal quantile when ``ν`` is infinite (above ``INFINITE_DOF``).

    ``ν`` need not be an integer (use :func:`truncate_dof` for the GUM G.4.1 truncation).
    """
    if not 0.0 < p < 1.0:
        raise MetrologyError(f"the coverage probability must lie between 0 and 1, got {p!r}")
    if math.isnan(dof) or dof < 1.0:
        raise MetrologyError(f"degrees of freedom must be at least 1, got {dof!r}")
    # scipy is imported here, not at the top: the gateway loads this module for the calibration
    # records it ingests, and scipy would add seconds to every gateway start.
    from scipy import special

    level = (1.0 + p) / 2.0
    if dof > INFINITE_DOF:
        return float(special.ndtri(level))
    return float(special.stdtrit(dof, level))


def truncate_dof(dof: float) -> float:
    """``ν_eff`` truncated to the next lower integer (GUM G.4.1 note 1, EA-4/02 Annex E);
    infinite and ``> INFINITE_DOF`` values are returned unchanged."""
    if math.isinf(dof) or dof > INFINITE_DOF:
        return dof
    return float(math.floor(dof + _FLOOR_SLACK))


def dof_from_reliability(relative_uncertainty: float) -> float:
    """Degrees of freedom of a Type B standard uncertainty judged reliable to within the
    relative uncertainty ``Δu/u`` (GUM G.4.2, eq. G.3): ``ν ≈ ½ (Δu/u)⁻²``; 0.25 → 8, 0.10 → 50."""
    if not 0.0 < relative_uncertainty <= math.sqrt(0.5):
        raise MetrologyError(
            f"the relative uncertainty of an uncertainty must lie in (0, 0.707] "
            f"(ν ≥ 1), got {relative_uncertainty!r}"
        )
    return 0.5 / relative_uncertainty**2


def welch_satterthwaite(contributions: Sequence[float], dofs: Sequence[float]) -> float:
    """Effective degrees of freedom of independent contributions ``u_i(y)`` with ``ν_i``
    (GUM G.4.1, eq. G.2b): ``ν_eff = u_c⁴ / Σ u_i⁴/ν_i``; infinite when every ``ν_i`` is."""
    if len(contributions) != len(dofs):
        raise MetrologyError("one degrees-of-freedom value is needed per contribution")
    for dof in dofs:
        if not dof >= 1.0:  # NaN too
            raise MetrologyError(f"degrees of freedom must be at least 1, got {dof!r}")
    variances = [float(u) * float(u) for u in contributions]
    total = math.fsum(variances)
    if total == 0.0:
        raise MetrologyError("the combined standard uncertainty is zero")
    return _effective_dof(total, zip(variances, dofs, strict=True))


def _effective_dof(total_variance: float, terms: Iterable[tuple[float, float]]) -> float:
    denominator = 0.0
    for variance, dof in terms:
        if not math.isinf(dof) and variance != 0.0:
            share = variance / total_variance
            denominator += share * share / dof
    return math.inf if denominator == 0.0 else 1.0 / denominator


class Contribution(MetrologyModel):
    """One input quantity of a budget and how its standard uncertainty is obtained."""

    name: str = Field(min_length=1, max_length=200)
    estimate: float = 0.0
    """The estimate ``x_i`` of the input quantity, in ``unit``."""
    unit: str = Field(default="", max_length=40)
    distribution: Distribution = "normal"
    quoted: float = Field(ge=0.0)
    """Half-width ``a``, or expanded uncertainty ``U`` (see :data:`Distribution`), in ``unit``."""
    coverage_factor: float | None = Field(default=None, gt=0.0)
    coverage_probability: float | None = Field(default=None, gt=0.0, lt=1.0)
    sensitivity: float = 1.0
    """``c_i = ∂f/∂x_i`` at the estimates, in (unit of y)/(``unit``)."""
    dof: Dof = Field(default=math.inf, ge=1.0, json_schema_extra=INFINITE_DOF_DEFAULT)
    """``ν_i``: infinite for a Type B judged exact (the default), ``n - 1`` for a mean of n."""
    reliability: float | None = Field(default=None, gt=0.0, le=math.sqrt(0.5))
    """Relative uncertainty ``Δu/u`` of the standard uncertainty; sets ``dof`` (GUM G.4.2)."""
    evaluation: Evaluation = "B"
    note: str = Field(default="", max_length=500)

    @field_validator("name", "unit", "note")
    @classmethod
    def _printable(cls, value: str) -> str:
        return check_text(value, "the text", 500)

    _finite = finite_fields("estimate", "quoted", "sensitivity", "coverage_factor")

    @model_validator(mode="before")
    @classmethod
    def _dof_from_reliability(cls, data: object) -> object:
        found = shorthand(data, "reliability", (int, float))
        if found is None:
            return data
        data, reliability = found
        derived = dof_from_reliability(float(reliability))
        given = data.get("dof")
        if (
            given is not None
            and not math.isinf(float(given))
            and not math.isclose(float(given), derived, rel_tol=1e-9)
        ):
            raise MetrologyError(
                f"give dof or reliability, not both (reliability {reliability} means "
                f"dof {derived:g}, dof {given} was given)"
            )
        return {**data, "dof": derived}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        k, p = self.coverage_factor, self.coverage_probability
        if self.distribution in HALF_WIDTH_DIVISORS:
            if k is not None or p is not None:
                raise MetrologyError(
                    f"a {self.distribution} contribution is quoted by its half-width: "
                    "coverage_factor and coverage_probability do not apply"
                )
        elif k is not None and p is not None:
            raise MetrologyError("give coverage_factor or coverage_probability, not both")
        if self.distribution == "student_t":
            if math.isinf(self.dof):
                raise MetrologyError("a student_t contribution needs finite degrees of freedom")
            if k is None and p is None:
                raise MetrologyError(
                    "a student_t contribution needs the coverage_probability of its quoted "
                    "interval (or its coverage_factor)"
                )
        return self

    @cached_property
    def divisor(self) -> float:
        """What the quoted value is divided by: k, √3, √6, √2, or 1."""
        if self.distribution in HALF_WIDTH_DIVISORS:
            return HALF_WIDTH_DIVISORS[self.distribution]
        if self.coverage_factor is not None:
            return self.coverage_factor
        if self.coverage_probability is not None:
            dof = self.dof if self.distribution == "student_t" else math.inf
            return coverage_factor(dof, self.coverage_probability)
        return 1.0

    @cached_property
    def standard_uncertainty(self) -> float:
        """``u(x_i)``: the quoted value over the divisor."""
        return self.quoted / self.divisor

    @property
    def uncertainty_contribution(self) -> float:
        """``u_i(y) = |c_i| u(x_i)``."""
        return abs(self.sensitivity) * self.standard_uncertainty


# -- constructors for the usual contributions ------------------------------------------------------


def normal(
    name: str,
    expanded_uncertainty: float,
    coverage_factor: float = 2.0,
    *,
    estimate: float = 0.0,
    sensitivity: float = 1.0,
    unit: str = "",
    dof: float = math.inf,
    note: str = "",
) -> Contribution:
    """A normal contribution quoted as ``U`` with ``k`` (a certificate: k = 2 by default)."""
    return Contribution(
        name=name, estimate=estimate, unit=unit, distribution="normal",
        quoted=expanded_uncertainty, coverage_factor=coverage_factor, sensitivity=sensitivity,
        dof=dof, note=note,
    )  # fmt: skip


def standard(
    name: str,
    standard_uncertainty: float,
    *,
    estimate: float = 0.0,
    sensitivity: float = 1.0,
    unit: str = "",
    dof: float = math.inf,
    evaluation: Evaluation = "B",
    note: str = "",
) -> Contribution:
    """A contribution given directly by its standard uncertainty (normal, k = 1)."""
    return Contribution(
        name=name, estimate=estimate, unit=unit, distribution="normal",
        quoted=standard_uncertainty, sensitivity=sensitivity, dof=dof, evaluation=evaluation,
        note=note,
    )  # fmt: skip


def limits(
    name: str,
    half_width: float,
    *,
    distribution: HalfWidthDistribution = "rectangular",
    estimate: float = 0.0,
    sensitivity: float = 1.0,
    unit: str = "",
    reliability: float | None = None,
    note: str = "",
) -> Contribution:
    """A contribution within ``estimate ± half_width`` by the limits' distribution:
    rectangular (uniform) u = a/√3, triangular u = a/√6, arcsine (U-shaped, e.g. a sinusoidal
    temperature cycle) u = a/√2."""
    return Contribution(
        name=name, estimate=estimate, unit=unit, distribution=distribution, quoted=half_width,
        sensitivity=sensitivity, reliability=reliability, note=note,
    )  # fmt: skip


# The three usual shapes by name, as budgets in EA-4/02 and the GUM write them.
rectangular = partial(limits, distribution="rectangular")
rectangular.__doc__ = (
    "A rectangular (uniform) contribution within ``estimate ± half_width``: u = a/√3."
)
triangular = partial(limits, distribution="triangular")
triangular.__doc__ = "A triangular contribution within ``estimate ± half_width``: u = a/√6."
arcsine = partial(limits, distribution="arcsine")
arcsine.__doc__ = (
    "An arcsine (U-shaped) contribution, e.g. a sinusoidal temperature cycle: u = a/√2."
)


def resolution(
    name: str,
    resolution: float,
    *,
    sensitivity: float = 1.0,
    unit: str = "",
    note: str = "",
) -> Contribution:
    """The rounding of an indication with digit step ``resolution``: rectangular, a = δx/2
    (GUM F.2.2.1, EA-4/02 S10-style)."""
    if not resolution > 0.0:
        raise MetrologyError(f"a resolution must be positive, got {resolution!r}")
    return rectangular(name, resolution / 2.0, sensitivity=sensitivity, unit=unit, note=note)


def type_a(
    name: str,
    readings: Sequence[float],
    *,
    sensitivity: float = 1.0,
    unit: str = "",
    pooled_sd: float | None = None,
    pooled_dof: float | None = None,
    note: str = "",
) -> Contribution:
    """The mean of ``readings`` and its Type A standard uncertainty ``s/√n`` with ``n - 1``
    degrees of freedom (GUM 4.2); with ``pooled_sd`` (and its ``pooled_dof``), ``s_p/√n``
    from an earlier evaluation of the same process (GUM 4.2.4)."""
    values = [finite(r, "a reading") for r in readings]
    n = len(values)
    if n == 0 or (pooled_sd is None and n < 2):
        raise MetrologyError(f"a Type A evaluation needs at least 2 readings, got {n}")
    mean = math.fsum(values) / n
    if pooled_sd is None:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        dof = float(n - 1)
    else:
        if not (math.isfinite(pooled_sd) and pooled_sd >= 0.0):
            raise MetrologyError(f"a pooled standard deviation must be >= 0, got {pooled_sd!r}")
        sd = pooled_sd
        dof = math.inf if pooled_dof is None else pooled_dof
    return Contribution(
        name=name, estimate=mean, unit=unit, distribution="normal", quoted=sd / math.sqrt(n),
        sensitivity=sensitivity, dof=dof, evaluation="A", note=note,
    )  # fmt: skip


# -- budgets ---------------------------------------------------------------------------------


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
    effective = _effective_dof(total, terms)
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
