"""Statements of conformity under a decision rule (ILAC-G8:09/2019, JCGM 106:2012).

A measured value ``y`` (a quantity, or the error of an indication) with expanded uncertainty
``U`` is judged against a :class:`Tolerance` ``[TL_lower, TL_upper]`` (either side may be open)
under a :class:`DecisionRule`; the guard band is ``w = r·U`` (``r = guard_factor``, 1 by default):

=====================  ============================  ===============================================
rule (``kind``)         acceptance limits AL          statements
=====================  ============================  ===============================================
simple_acceptance       AL = TL (w = 0)               pass inside, fail outside (ILAC-G8 4.2.1)
guarded_acceptance      AL = TL ∓ w (inside TL)       pass inside AL, fail outside (ILAC-G8 4.2.2)
guarded_rejection       AL = TL ± w (outside TL)      pass inside AL, fail outside (JCGM 106 8.3.3)
non_binary              TL ∓ w and TL ± w             pass / conditional pass / conditional fail /
                                                      fail (ILAC-G8 4.2.3)
=====================  ============================  ===============================================

Zones of the non-binary statement, along the axis towards the upper limit (the lower mirrors it)::

    ──── pass ────┤ conditional pass ├ conditional fail ┤──── fail ────
                TL − w              TL               TL + w

A value exactly on a limit is counted on the inner side (limits are inclusive).

Each :class:`Verdict` carries the numbers behind it and, where the normal model of JCGM 106 §7
applies, the conformance probability ``p_c = Φ((TL_U − y)/u) − Φ((TL_L − y)/u)`` with
``u = U/k``: an accepted item's probability of false accept is ``1 − p_c``, a rejected one's
probability of false reject is ``p_c`` (specific risks). With w = U and k = 2 a pass has a
false-accept probability of at most 2.3 % (ILAC-G8 §4.2.2: "< 2.5 %").

:class:`ConformityCheck` precomputes limits for the per-reading path: :meth:`ConformityCheck.decide`
is a few float comparisons; the full :class:`Verdict` is built only when asked for.
"""

from __future__ import annotations

import math
from typing import Literal, Self

from pydantic import Field, model_validator

from metrology._common import MetrologyError, MetrologyModel, finite, finite_fields

RuleKind = Literal["simple_acceptance", "guarded_acceptance", "guarded_rejection", "non_binary"]
Decision = Literal["pass", "conditional_pass", "conditional_fail", "fail"]

PASS: Decision = "pass"
CONDITIONAL_PASS: Decision = "conditional_pass"
CONDITIONAL_FAIL: Decision = "conditional_fail"
FAIL: Decision = "fail"

_SQRT2 = math.sqrt(2.0)


class Tolerance(MetrologyModel):
    """Tolerance limits of a quantity (or of an error); ``None`` leaves a side open."""

    lower: float | None = None
    upper: float | None = None

    _finite = finite_fields("lower", "upper", what="a tolerance limit")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.lower is None and self.upper is None:
            raise MetrologyError("a tolerance needs a lower limit, an upper limit, or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise MetrologyError(
                f"the lower tolerance limit {self.lower} is above the upper {self.upper}"
            )
        return self

    @classmethod
    def symmetric(cls, mpe: float, center: float = 0.0) -> Tolerance:
        """``center ± mpe`` (an error against a maximum permissible error: center 0; an MPE of
        0, e.g. a purely relative specification at a zero reading, accepts 0 only)."""
        if not mpe >= 0.0:
            raise MetrologyError(f"a maximum permissible error must be >= 0, got {mpe!r}")
        return cls(lower=center - mpe, upper=center + mpe)


class DecisionRule(MetrologyModel):
    """A decision rule: the kind and the guard-band factor ``r`` (``w = r·U``)."""

    kind: RuleKind = "simple_acceptance"
    guard_factor: float = Field(default=1.0, ge=0.0, le=10.0)
    """``r`` in ``w = r·U``; ignored by ``simple_acceptance``."""

    _finite = finite_fields("guard_factor", what="the guard factor")

    def describe(self) -> str:
        """One line for a report, e.g. ``guarded acceptance, w = 1·U (ILAC-G8:09/2019 4.2.2)``."""
        source = {
            "simple_acceptance": "ILAC-G8:09/2019 4.2.1",
            "guarded_acceptance": "ILAC-G8:09/2019 4.2.2",
            "guarded_rejection": "JCGM 106:2012 8.3.3",
            "non_binary": "ILAC-G8:09/2019 4.2.3",
        }[self.kind]
        if self.kind == "simple_acceptance":
            return f"simple acceptance, w = 0 ({source})"
        return f"{self.kind.replace('_', ' ')}, w = {self.guard_factor:g}·U ({source})"


class Verdict(MetrologyModel):
    """A statement of conformity with the numbers behind it."""

    decision: Decision
    conforms: bool
    """``pass`` or ``conditional_pass``."""
    measured: float
    """The measured value (or error) judged."""
    expanded_uncertainty: float
    coverage_factor: float
    tolerance_lower: float | None
    tolerance_upper: float | None
    guard_band: float
    """``w = r·U`` (0 for simple acceptance)."""
    acceptance_lower: float | None
    acceptance_upper: float | None
    """Where ``pass`` ends (for ``non_binary``: ``TL ∓ w``)."""
    rule: DecisionRule
    conformance_probability: float | None
    """``p_c``: probability that the true value lies within the tolerance (normal, u = U/k);
    None when u is 0."""
    false_accept_probability: float | None
    """``1 − p_c`` for a pass or conditional pass, else None."""
    false_reject_probability: float | None
    """``p_c`` for a fail or conditional fail, else None."""


def _phi(z: float) -> float:
    """The standard normal distribution function (exact at ±inf)."""
    return 0.5 * math.erfc(-z / _SQRT2)


def conformance_probability(
    measured: float, standard_uncertainty: float, tolerance: Tolerance
) -> float:
    """``p_c``: the probability that the true value lies in ``tolerance`` given the measured
    value and a normal PDF of standard deviation ``u`` (JCGM 106:2012 §7.2)."""
    if not standard_uncertainty > 0.0:
        raise MetrologyError("a conformance probability needs a positive standard uncertainty")
    upper = math.inf if tolerance.upper is None else tolerance.upper
    lower = -math.inf if tolerance.lower is None else tolerance.lower
    # 1 − Φ(a) − Φ(b) computed with erfc on each tail keeps tiny risks accurate.
    above = _phi((measured - upper) / standard_uncertainty)
    below = _phi((lower - measured) / standard_uncertainty)
    return max(0.0, 1.0 - above - below)


class ConformityCheck:
    """A tolerance and a rule, precomputed for the per-reading path.

    ``decide(y, U)`` costs a multiplication and a few comparisons; ``verdict(y, U, k)`` builds
    the full :class:`Verdict` (for a calibration point, or when a live reading fails).
    """

    __slots__ = ("_factor", "_kind", "_lower", "_upper", "rule", "tolerance")

    def __init__(self, tolerance: Tolerance, rule: DecisionRule | None = None) -> None:
        self.tolerance = tolerance
        self.rule = rule if rule is not None else DecisionRule()
        self._lower = -math.inf if tolerance.lower is None else tolerance.lower
        self._upper = math.inf if tolerance.upper is None else tolerance.upper
        self._kind = self.rule.kind
        self._factor = 0.0 if self._kind == "simple_acceptance" else self.rule.guard_factor

    @property
    def limits(self) -> tuple[float, float, float, RuleKind]:
        """``(lower, upper, r, kind)`` as :meth:`decide` uses them (open sides ±inf, ``r`` 0 for
        simple acceptance): for a batch evaluation that must decide exactly as it does."""
        return self._lower, self._upper, self._factor, self._kind

    def decide(self, measured: float, expanded_uncertainty: float) -> Decision:
        """The decision alone (the fast path); NaN is a fail."""
        lower, upper = self._lower, self._upper
        w = self._factor * expanded_uncertainty
        kind = self._kind
        if kind == "simple_acceptance":
            return PASS if lower <= measured <= upper else FAIL
        if kind == "guarded_acceptance":
            return PASS if lower + w <= measured <= upper - w else FAIL
        if kind == "guarded_rejection":
            return PASS if lower - w <= measured <= upper + w else FAIL
        if lower + w <= measured <= upper - w:
            return PASS
        if lower <= measured <= upper:
            return CONDITIONAL_PASS
        if lower - w <= measured <= upper + w:
            return CONDITIONAL_FAIL
        return FAIL

    def verdict(
        self, measured: float, expanded_uncertainty: float, coverage_factor: float = 2.0
    ) -> Verdict:
        """The decision with the numbers behind it (see :class:`Verdict`)."""
        measured = finite(measured, "the measured value")
        if not (math.isfinite(expanded_uncertainty) and expanded_uncertainty >= 0.0):
            raise MetrologyError(
                f"the expanded uncertainty must be a finite number >= 0, got "
                f"{expanded_uncertainty!r}"
            )
        if not (math.isfinite(coverage_factor) and coverage_factor > 0.0):
            raise MetrologyError(f"the coverage factor must be positive, got {coverage_factor!r}")
        decision = self.decide(measured, expanded_uncertainty)
        w = self._factor * expanded_uncertainty
        sign = -1.0 if self._kind in ("guarded_acceptance", "non_binary") else 1.0
        shift = 0.0 if self._kind == "simple_acceptance" else sign * w
        t_lower, t_upper = self.tolerance.lower, self.tolerance.upper
        probability = None
        u = expanded_uncertainty / coverage_factor
        if u > 0.0:
            probability = conformance_probability(measured, u, self.tolerance)
        conforms = decision in (PASS, CONDITIONAL_PASS)
        return Verdict(
            decision=decision,
            conforms=conforms,
            measured=measured,
            expanded_uncertainty=expanded_uncertainty,
            coverage_factor=coverage_factor,
            tolerance_lower=t_lower,
            tolerance_upper=t_upper,
            guard_band=w,
            acceptance_lower=None if t_lower is None else t_lower - shift,
            acceptance_upper=None if t_upper is None else t_upper + shift,
            rule=self.rule,
            conformance_probability=probability,
            false_accept_probability=(
                None if probability is None or not conforms else 1.0 - probability
            ),
            false_reject_probability=None if probability is None or conforms else probability,
        )


def decide(
    measured: float,
    expanded_uncertainty: float,
    tolerance: Tolerance,
    rule: DecisionRule | None = None,
    coverage_factor: float = 2.0,
) -> Verdict:
    """The verdict for one measured value (a calibration point): see :class:`ConformityCheck`."""
    return ConformityCheck(tolerance, rule).verdict(measured, expanded_uncertainty, coverage_factor)
