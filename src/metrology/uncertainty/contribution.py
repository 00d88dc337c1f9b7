"""A contribution to an uncertainty budget (an input quantity, its quoted uncertainty and the
distribution that makes it a standard uncertainty), and constructors for the usual ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property, partial
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from metrology._common import (
    INFINITE_DOF_DEFAULT,
    Dof,
    MetrologyError,
    MetrologyModel,
    check_text,
    finite,
    finite_fields,
    shorthand,
)
from metrology.uncertainty.coverage import (
    coverage_factor,
    dof_from_reliability,
)

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

HALF_WIDTH_DIVISORS: dict[str, float] = {
    "rectangular": math.sqrt(3.0),
    "triangular": math.sqrt(6.0),
    "arcsine": math.sqrt(2.0),
}


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
