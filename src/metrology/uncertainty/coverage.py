"""Degrees of freedom and coverage factors (GUM G.4, EA-4/02 Annex E): the coverage factor of a
probability at ``ν`` degrees of freedom, the truncation of ``ν_eff``, the degrees of freedom of a
Type B uncertainty from its reliability, and Welch–Satterthwaite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from metrology._common import MetrologyError

DEFAULT_COVERAGE_PROBABILITY = math.erf(math.sqrt(2.0))
"""EA-4/02's p = 95.45 %, taken as exactly the probability of ±2σ of a normal distribution
(0.954499736…) so that ν = ∞ gives k = 2.000 exactly (see the module doc)."""

INFINITE_DOF = 1e5
"""Above this many degrees of freedom the normal quantile is used, as GTC does (the t quantile
differs from it by < 2e-5 relative there)."""

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
    return effective_dof(total, zip(variances, dofs, strict=True))


def effective_dof(total_variance: float, terms: Iterable[tuple[float, float]]) -> float:
    denominator = 0.0
    for variance, dof in terms:
        if not math.isinf(dof) and variance != 0.0:
            share = variance / total_variance
            denominator += share * share / dof
    return math.inf if denominator == 0.0 else 1.0 / denominator
