"""Rounding a measurement result for a report (GUM 7.2.6, EA-4/02 M:2022 §6): ``U`` to one or
two significant digits, the value to the same decimal place, as exact decimal digits.

Apart from :mod:`metrology.uncertainty` (which re-exports it) because it is decimal arithmetic
on any result, a budget's or a certificate's.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

from metrology._common import MetrologyError, MetrologyModel, check_text, finite

UncertaintyRounding = Literal["ea-4/02", "up", "nearest"]


class FormattedResult(MetrologyModel):
    """A result in decimal digits by the rounding rules (:func:`round_result`)."""

    value: Decimal
    expanded_uncertainty: Decimal
    coverage_factor: Decimal | None
    """``k`` to two decimals, when it was given."""
    coverage_probability: Decimal | None
    """``p`` to four decimals (0.9545, 0.95), when it was given."""
    unit: str
    text: str
    """E.g. ``"10000.178 Ω ± 0.017 Ω (k = 2.00)"``."""


def _decimal(value: float, what: str) -> Decimal:
    # The shortest decimal that round-trips the float: what the user sees when it is printed,
    # not the binary expansion (0.1 stays 0.1).
    return Decimal(repr(finite(value, what)))


def _round_significant(value: Decimal, digits: int, rounding: str) -> Decimal:
    exponent = value.adjusted() - (digits - 1)
    rounded = value.quantize(Decimal(1).scaleb(exponent), rounding=rounding)
    if rounded.adjusted() > value.adjusted():  # 0.0996 -> 0.100: one digit too many
        rounded = rounded.quantize(Decimal(1).scaleb(exponent + 1), rounding=rounding)
    return rounded


def round_result(
    value: float,
    expanded_uncertainty: float,
    *,
    coverage_factor: float | None = None,
    coverage_probability: float | None = None,
    unit: str = "",
    significant_digits: int = 2,
    rule: UncertaintyRounding = "ea-4/02",
) -> FormattedResult:
    """A measurement result as decimal digits (GUM 7.2.6, EA-4/02 M:2022 §6).

    ``U`` is rounded to ``significant_digits`` (at most two, by the GUM and EA-4/02): under the
    ``ea-4/02`` rule to the nearest (half up), but up instead when rounding to the nearest would
    lower it by more than 5 %; ``up``: always up (never understates); ``nearest``: half up.
    The value is rounded to the same decimal place, to the nearest, half to even (unbiased,
    ISO 80000-1 Annex B rule B). ``k`` is given to two decimals, ``p`` to four (what a DCC's
    ``si:expandedUnc`` takes: ``dcc.Value.of(r.value, unit, uncertainty=r.expanded_uncertainty,
    k=r.coverage_factor, probability=r.coverage_probability)``). Inputs are floats; the
    digits are exact decimals of their shortest representation (no binary artefacts).
    """
    if significant_digits not in (1, 2, 3):
        raise MetrologyError("significant_digits must be 1, 2 or 3")
    u_expanded = _decimal(expanded_uncertainty, "the expanded uncertainty")
    if not u_expanded > 0:
        raise MetrologyError("the expanded uncertainty must be positive to round a result")
    measured = _decimal(value, "the value")
    check_text(unit, "the unit", 40)
    with localcontext() as context:
        context.prec = 800  # enough for any float at any decimal place
        if rule == "up":
            rounded_u = _round_significant(u_expanded, significant_digits, ROUND_CEILING)
        else:
            rounded_u = _round_significant(u_expanded, significant_digits, ROUND_HALF_UP)
            if rule == "ea-4/02" and rounded_u < u_expanded * Decimal("0.95"):
                rounded_u = _round_significant(u_expanded, significant_digits, ROUND_CEILING)
        place = Decimal(1).scaleb(rounded_u.as_tuple().exponent)  # type: ignore[arg-type]
        rounded_value = measured.quantize(place, rounding=ROUND_HALF_EVEN)
        k_text = None
        if coverage_factor is not None:
            k_text = _decimal(coverage_factor, "the coverage factor").quantize(
                Decimal("0.01"), rounding=ROUND_HALF_EVEN
            )
        p_text = None
        if coverage_probability is not None:
            p_text = (
                _decimal(coverage_probability, "the coverage probability")
                .quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
                .normalize()
            )
    suffix = f" {unit}" if unit else ""
    text = f"{rounded_value:f}{suffix} ± {rounded_u:f}{suffix}"
    if k_text is not None:
        text += f" (k = {k_text:f})"
    return FormattedResult(
        value=rounded_value,
        expanded_uncertainty=rounded_u,
        coverage_factor=k_text,
        coverage_probability=p_text,
        unit=unit,
        text=text,
    )
