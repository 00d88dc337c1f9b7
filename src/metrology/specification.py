"""Instrument specifications: ``±(a % of reading + b % of range + n digits + floor)`` → MPE.

A :class:`Specification` holds the terms of an accuracy specification as a manufacturer or a
procedure writes it, and gives the maximum permissible error (MPE) at a reading:

    MPE(x) = |x|·of_reading + range·of_range + counts·resolution + floor

(relative terms as fractions: 0.0035 % → 3.5e-5). It is built from fields, or parsed from the
common notations (:func:`parse_specification`), e.g.::

    ±(0.0035 % of reading + 0.0005 % of range)
    ±(0.5 % rdg + 2 digits)          # needs resolution (the value of one digit)
    ± (10 ppm of reading + 2 ppm of range + 5 µV)   # with unit "V": floor 5e-6 (SI
                                                    # multiples by metrology.units' rules)
    ±0.1 °C                          # with unit "°C"
    2 %RH                            # with unit "%RH": a floor, not a relative term

A relative term must say what it is relative to (reading or range): a bare ``0.01 %`` is refused
as ambiguous. Everything refused names the term and the reason.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Self

from pydantic import Field, field_validator, model_validator

from metrology import units
from metrology._common import (
    MetrologyError,
    MetrologyModel,
    check_text,
    finite_fields,
    shorthand,
)
from metrology.conformity import Tolerance
from metrology.errors import UnsupportedUnit

MAX_TEXT = 200

_READING = r"(?:reading|rdg|rd|indication|value|output|setting)"
_RANGE = r"(?:range|rng|full\s+scale|f\.?\s?s\.?|span)"
_RELATIVE = re.compile(
    rf"^(?P<scale>%|ppm)\s*(?:of\s+)?(?:(?P<reading>{_READING})|(?P<range>{_RANGE}))$",
    re.IGNORECASE,
)
_COUNTS = re.compile(r"^(?:digits?|dgts?|counts?|cts?|lsds?)$", re.IGNORECASE)
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"\s*(?P<number>{_NUMBER})\s*(?P<suffix>[^+]*?)\s*(?:\+|$)")
_SIGN = re.compile(r"^\s*(?:±|\+/-|\+-)\s*")
_RELATIVE_SCALE = {"%": 1e-2, "ppm": 1e-6}


class Specification(MetrologyModel):
    """The terms of an accuracy specification, and the MPE they give at a reading."""

    of_reading: float = Field(default=0.0, ge=0.0)
    """Relative to the reading, as a fraction (0.0035 % → 3.5e-5)."""
    of_range: float = Field(default=0.0, ge=0.0)
    """Relative to ``range``, as a fraction."""
    range: float | None = Field(default=None, gt=0.0)
    """The range (full scale) the ``of_range`` term refers to, in ``unit``."""
    counts: float = Field(default=0.0, ge=0.0)
    """Digits / counts of the least significant digit."""
    resolution: float | None = Field(default=None, gt=0.0)
    """The value of one digit (count), in ``unit``."""
    floor: float = Field(default=0.0, ge=0.0)
    """An absolute term, in ``unit``."""
    unit: str = Field(default="", max_length=40)
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    """The notation as written; when given, the terms are parsed from it."""

    _finite = finite_fields(
        "of_reading", "of_range", "range", "counts", "resolution", "floor", what="the term"
    )

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        return check_text(value, "the unit", 40)

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, data: object) -> object:
        found = shorthand(data, "text", str)
        if found is None:
            return data
        data, text = found
        unit = data.get("unit", "")
        parsed = _parse_terms(text, unit if isinstance(unit, str) else "")
        merged = dict(data)
        for key, value in parsed.items():
            given = data.get(key)
            if given not in (None, 0, 0.0) and not math.isclose(float(given), value, rel_tol=1e-12):
                raise MetrologyError(
                    f"{key} = {given} disagrees with the text {text!r}, which gives {value:g}"
                )
            merged[key] = value
        return merged

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.of_range > 0.0 and self.range is None:
            raise MetrologyError("a term relative to the range needs the range (range: ...)")
        if self.counts > 0.0 and self.resolution is None:
            raise MetrologyError(
                "a term in digits/counts needs the value of one digit (resolution: ...)"
            )
        if self.of_reading == self.of_range == self.counts == self.floor == 0.0:
            raise MetrologyError("a specification needs at least one non-zero term")
        return self

    def mpe(self, reading: float) -> float:
        """The maximum permissible error at ``reading`` (a positive half-width, in ``unit``)."""
        value = abs(reading) * self.of_reading + self.floor
        if self.range is not None:
            value += self.range * self.of_range
        if self.resolution is not None:
            value += self.counts * self.resolution
        return value

    def tolerance(self, reading: float) -> Tolerance:
        """The tolerance on the error of an indication at ``reading``: ``[-MPE, +MPE]``."""
        mpe = self.mpe(reading)
        return Tolerance(lower=-mpe, upper=mpe)

    def describe(self) -> str:
        """The terms in the canonical notation, e.g. ``±(0.0035 % of reading + 0.0005 % of
        range)``."""
        terms = []
        if self.of_reading:
            terms.append(f"{_percent(self.of_reading)} % of reading")
        if self.of_range:
            terms.append(f"{_percent(self.of_range)} % of range")
        if self.counts:
            terms.append(f"{self.counts:g} digits")
        if self.floor:
            terms.append(f"{self.floor:g} {self.unit}".rstrip())
        return "±(" + " + ".join(terms) + ")"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.10g}"


def parse_specification(
    text: str,
    *,
    range: float | None = None,
    resolution: float | None = None,
    unit: str = "",
) -> Specification:
    """Parse a specification's notation (see the module doc); ``range`` and ``resolution``
    complete the terms relative to the range and in digits."""
    return Specification(text=text, range=range, resolution=resolution, unit=unit)


def _unit_scale(term_unit: str, unit: str, term: str) -> Decimal:
    """The factor from ``term_unit`` to ``unit`` when they differ by SI prefixes (µV → V),
    by the project's unit rules (``metrology.units``)."""
    if not unit:
        raise MetrologyError(
            f"the term {term!r} names a unit ({term_unit}): give the specification's unit"
        )
    if term_unit == unit:
        return Decimal(1)
    try:
        factor = units.scale_factor(units.symbol_to_dsi(term_unit), units.symbol_to_dsi(unit))
    except UnsupportedUnit as exc:
        raise MetrologyError(
            f"the term {term!r} is in {term_unit}, not in {unit} or a multiple of it ({exc})"
        ) from exc
    return factor


def _parse_terms(text: str, unit: str) -> dict[str, float]:
    """The term values of ``text`` (fractions for relative terms, ``unit`` for the floor)."""
    check_text(text, "the specification", MAX_TEXT)
    body = text.strip()
    if not body:
        raise MetrologyError("the specification is empty")
    if "−" in body or re.search(r"(?<![eE])-", body.replace("+/-", "").replace("+-", "")):
        raise MetrologyError(
            f"{text!r}: a specification is a ± half-width, its terms cannot be negative"
        )
    body = _SIGN.sub("", body, count=1)
    if body.startswith("("):
        if not body.endswith(")"):
            raise MetrologyError(f"{text!r}: an opening parenthesis is not closed")
        body = body[1:-1]
    if "(" in body or ")" in body:
        raise MetrologyError(f"{text!r}: unbalanced or nested parentheses")
    if "±" in body:
        raise MetrologyError(f"{text!r}: only one ± (in front of the terms)")
    values: dict[str, float] = {}
    position = 0
    while position < len(body):
        match = _TERM.match(body, position)
        if match is None or match.end() == position:
            rest = body[position:].strip()
            raise MetrologyError(f"{text!r}: cannot read a term at {rest[:40]!r}")
        position = match.end()
        number, suffix = match["number"], match["suffix"].strip()
        term = f"{number} {suffix}".strip()
        if match.group(0).rstrip().endswith("+") and not body[position:].strip():
            raise MetrologyError(f"{text!r}: a '+' with no term after it")
        value = float(number)
        if not math.isfinite(value):
            raise MetrologyError(f"the term {term!r} is not a finite number")
        key, scaled = _classify(term, suffix, value, unit)
        if key in values:
            raise MetrologyError(f"{text!r}: two terms of the same kind ({key})")
        values[key] = scaled
    if not values:
        raise MetrologyError(f"{text!r}: no term")
    return values


def _classify(term: str, suffix: str, value: float, unit: str) -> tuple[str, float]:
    relative = _RELATIVE.match(suffix)
    if relative is not None:
        scale = _RELATIVE_SCALE[relative["scale"].lower()]
        return ("of_reading" if relative["reading"] else "of_range"), value * scale
    if suffix.lower() in ("%", "ppm") or re.match(r"^(%|ppm)\s+of\b", suffix, re.IGNORECASE):
        raise MetrologyError(
            f"the term {term!r} does not say what it is relative to: write '% of reading' or "
            "'% of range' (or rdg / rng / FS)"
        )
    if _COUNTS.match(suffix):
        return "counts", value
    if not suffix:
        return "floor", value
    if re.search(r"\s", suffix) or len(suffix) > 20:
        raise MetrologyError(f"cannot read the term {term!r}")
    # exact decimal scaling: 5 µV is 5e-06 V, not 4.9999999999999996e-06
    return "floor", float(Decimal(repr(value)) * _unit_scale(suffix, unit, term))
