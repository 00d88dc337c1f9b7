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

Rounding is apart (:mod:`metrology.rounding`); degrees of freedom and coverage factors are
:mod:`metrology.uncertainty.coverage`, a contribution and its constructors
:mod:`metrology.uncertainty.contribution`, the budget and its evaluation
:mod:`metrology.uncertainty.budget`; this package exports them all.
"""

from __future__ import annotations

from metrology._common import MetrologyError
from metrology.rounding import FormattedResult as FormattedResult
from metrology.rounding import UncertaintyRounding as UncertaintyRounding
from metrology.rounding import round_result as round_result
from metrology.uncertainty.budget import (
    Budget,
    BudgetResult,
    ContributionResult,
    Correlation,
    DofRounding,
    evaluate,
)
from metrology.uncertainty.contribution import (
    HALF_WIDTH_DIVISORS,
    Contribution,
    Distribution,
    Evaluation,
    HalfWidthDistribution,
    arcsine,
    limits,
    normal,
    rectangular,
    resolution,
    standard,
    triangular,
    type_a,
)
from metrology.uncertainty.coverage import (
    DEFAULT_COVERAGE_PROBABILITY,
    INFINITE_DOF,
    coverage_factor,
    dof_from_reliability,
    truncate_dof,
    welch_satterthwaite,
)

__all__ = [
    "DEFAULT_COVERAGE_PROBABILITY",
    "HALF_WIDTH_DIVISORS",
    "INFINITE_DOF",
    "Budget",
    "BudgetResult",
    "Contribution",
    "ContributionResult",
    "Correlation",
    "Distribution",
    "DofRounding",
    "Evaluation",
    "FormattedResult",
    "HalfWidthDistribution",
    "MetrologyError",
    "UncertaintyRounding",
    "arcsine",
    "coverage_factor",
    "dof_from_reliability",
    "evaluate",
    "limits",
    "normal",
    "rectangular",
    "resolution",
    "round_result",
    "standard",
    "triangular",
    "truncate_dof",
    "type_a",
    "welch_satterthwaite",
]
