"""Corrections a batch at a time: every span's correction and decision rule as rows of numpy
tables, evaluated over all the readings of a batch in a few whole-array operations.

The per-reading function of a correction (:attr:`metrology.correction.Correction.apply`) costs
about a microsecond of Python per reading; a gateway past 100,000 readings/s has well under
that for everything a correction adds (issue 19: at most 1 µs). :class:`Kernels` stacks the
numbers ``apply`` reads (a linear correction's breakpoints and per-interval terms, a polynomial's
three Horner polynomials) and the tolerance limits of each span's decision rule, so a batch of
readings of many channels is corrected with one gather per term and the same arithmetic, in the
same order, as ``apply`` and :meth:`metrology.conformity.ConformityCheck.decide`: the results
are bit for bit theirs (tested against them).

Only the common case is evaluated here — an indication inside the calibrated range whose results
are finite and whose decision, if any, is a pass or a conditional pass. Whatever else (outside
the range, the last point itself, non-finite, a failing decision that needs its numbers) is
reported back, and the corrector handles those readings one by one as before.

Over 500 lines: :class:`Kernels` stacks the tables and evaluates them, and the two must change
together to stay bit for bit the per-reading functions' results; the helpers below it serve it
alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from metrology.conformity import ConformityCheck
from metrology.correction import Correction, LinearCorrection, PolynomialCorrection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

LINEAR, POLYNOMIAL = 0, 1
SIMPLE, GUARDED_ACCEPTANCE, GUARDED_REJECTION, NON_BINARY = 0, 1, 2, 3
_RULES = {
    "simple_acceptance": SIMPLE,
    "guarded_acceptance": GUARDED_ACCEPTANCE,
    "guarded_rejection": GUARDED_REJECTION,
    "non_binary": NON_BINARY,
}
_INF = float("inf")


@dataclass(eq=False, slots=True)
class _Polynomials:
    """Polynomials of one length, stacked (one row per kernel)."""

    coefficients: list[tuple[float, ...]] = field(default_factory=list)
    derivative: list[tuple[float, ...]] = field(default_factory=list)
    variance: list[tuple[float, ...]] = field(default_factory=list)
    scalars: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)
    """center, inverse_scale, model_variance, reading, x_min, x_max."""
    columns: tuple[tuple[FloatArray, ...], ...] = ()
    """coefficients, derivative, variance, scalars: each a tuple of columns (one per term)."""


class Kernels:
    """Every span's correction and decision as rows of stacked tables (see the module doc).

    :meth:`add` registers one span and returns its id; :meth:`freeze` builds the tables;
    :meth:`evaluate` corrects a batch's indications by their spans' ids."""

    def __init__(self) -> None:
        self._kind: list[int] = []
        self._row: list[int] = []
        self._conformity: list[tuple[bool, float, float, float, int, bool, float]] = []
        self._linear: list[tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]] = []
        self._linear_of: dict[int, tuple[int, Correction]] = {}
        """id of a linear correction → its row (and the correction, kept while its id is)."""
        self._polynomials: dict[int, _Polynomials] = {}
        self._length: list[int] = []
        """Per span: the length of its polynomial (0 for a linear span)."""

    def add(
        self,
        correction: Correction,
        check: ConformityCheck | None,
        on_error: bool,
        coverage_factor: float,
    ) -> int:
        """Register a span (its correction and decision); its id, or -1 when it is left to the
        per-reading path."""
        if isinstance(correction, LinearCorrection):
            # Spans of one correction (channels linked to one certificate's table, with the
            # same settings) share its row: a batch of such channels is one table's search.
            kind, length = LINEAR, 0
            row = self._linear_of.get(id(correction), (-1, None))[0]
            if row < 0:
                row = len(self._linear)
                self._linear_of[id(correction)] = (row, correction)
                self._linear.append((correction.breakpoints, correction.segments))
        elif isinstance(correction, PolynomialCorrection):
            terms = correction.terms
            length = len(terms.coefficients)
            group = self._polynomials.setdefault(length, _Polynomials())
            kind, row = POLYNOMIAL, len(group.coefficients)
            group.coefficients.append(terms.coefficients)
            group.derivative.append(terms.derivative)
            group.variance.append(terms.variance)
            group.scalars.append(
                (
                    terms.center, terms.inverse_scale, terms.model_variance, terms.reading,
                    correction.x_min, correction.x_max,
                )
            )  # fmt: skip
        else:  # pragma: no cover - the two kinds of correction there are
            return -1
        if check is None:
            self._conformity.append((False, -_INF, _INF, 0.0, 0, False, 1.0))
        else:
            lower, upper, factor, kind_name = check.limits
            self._conformity.append(
                (True, lower, upper, factor, _RULES[kind_name], on_error, coverage_factor)
            )
        self._kind.append(kind)
        self._row.append(row)
        self._length.append(length)
        return len(self._kind) - 1

    def freeze(self) -> None:
        """Build the stacked tables (after the last :meth:`add`)."""
        self.kind = np.array(self._kind, dtype=np.intp)
        self.row = np.array(self._row, dtype=np.intp)
        self.length = np.array(self._length, dtype=np.intp)
        conformity = self._conformity or [(False, -_INF, _INF, 0.0, 0, False, 1.0)]
        (checked, lower, upper, factor, rule, on_error, coverage) = (
            np.array(column) for column in zip(*conformity, strict=True)
        )
        self.checked = checked.astype(np.bool_)
        self.any_checked = bool(self.checked.any())
        """Whether any span has a decision rule (else no batch needs a look)."""
        self.lower, self.upper = lower.astype(np.float64), upper.astype(np.float64)
        self.factor, self.coverage = factor.astype(np.float64), coverage.astype(np.float64)
        self.rule, self.on_error = rule.astype(np.intp), on_error.astype(np.bool_)
        # Every linear table's breakpoints end to end, each as the complex number (its table's
        # row, x): numpy orders complex numbers by real part, then imaginary, so one binary
        # search of (row, x) among them all counts the row's breakpoints <= x (bisect_right in
        # that row alone), whatever the tables' lengths.
        edges = [(float(row), x) for row, (xs, _) in enumerate(self._linear) for x in xs]
        self.edges = np.empty(len(edges), dtype=np.complex128)
        self.edges.real, self.edges.imag = ([e[0] for e in edges], [e[1] for e in edges])
        # Row 0 of the segments is NaN: where an indication lies outside its table (everything
        # computed from it is NaN, and the per-reading path takes it).
        segments: list[tuple[float, ...]] = [(float("nan"),) * 11]
        # Position found → the interval's segment: a table starting at position s holds
        # c = p - s breakpoints <= x, interval c - 1 when 1 <= c < len(xs); c = 0 and c =
        # len(xs) (the next table's s) are outside: segment 0.
        self.segment = np.zeros(len(edges) + 1, dtype=np.intp)
        # And each table alone: its breakpoints, and bisect_right's count → its segment (the
        # view of ``segment`` from the table's start), for a batch whose readings all read one
        # table (a float search, no keys to build).
        self.breakpoints: list[FloatArray] = []
        self.table_segment: list[IntArray] = []
        self.table_flags: list[tuple[bool, bool]] = []
        """Per table: whether u is the same at every point (du/dx 0, u_i >= +0: u_i + du·dx
        is u_i), and whether the reading's variance is +0 (a sum of squares plus +0 is
        itself): the terms :meth:`_linear_rows` need not add."""
        start = 0
        for xs, rows in self._linear:
            self.segment[start + 1 : start + len(xs)] = np.arange(
                len(segments), len(segments) + len(rows)
            )
            self.breakpoints.append(np.array(xs, dtype=np.float64))
            self.table_segment.append(self.segment[start : start + len(xs) + 1])
            self.table_flags.append(
                (
                    all(_is_plus_zero(r[10]) and r[5] >= 0.0 and not _negative(r[5]) for r in rows),
                    all(_is_plus_zero(r[8]) for r in rows),
                )
            )
            segments.extend(rows)
            start += len(xs)
        self.flat_u = all(flat for flat, _ in self.table_flags)
        self.no_reading = all(none for _, none in self.table_flags)
        table = np.array(segments, dtype=np.float64)
        # x_i, x_j, c_i, slope, u_i, k2, gain²·reading, du/dx: what apply() reads in range;
        # then u_i² (the product apply() makes, made once) and 1.0 inside a table (0.0 in
        # the NaN row 0): the columns _linear_terms reads.
        self.segments = np.empty((len(table), 10))
        self.segments[:, :8] = table[:, [0, 1, 2, 3, 5, 7, 8, 10]]
        with np.errstate(over="ignore"):  # a huge U's square is inf, as apply() makes it
            self.segments[:, 8] = self.segments[:, 4] * self.segments[:, 4]
        self.segments[:, 9] = 1.0
        self.segments[0, 9] = 0.0
        # Each table's own rows of them by bisect_right's count (its view of ``segment``: one
        # take fewer for a batch reading one table).
        self.table_terms = [self.segments.take(local, axis=0) for local in self.table_segment]
        decisions = _moderate(self.factor, self.coverage, _finite_part(self.lower, self.upper))
        self.quiet = not self._polynomials and decisions and _moderate(self.segments[1:, :8])
        """Whether no operation of :meth:`evaluate` can overflow or be invalid, so there is no
        floating-point warning to silence (the cost of ``np.errstate``, a few per cent of a
        batch's): linear spans only (a polynomial is evaluated at any indication, however
        large, before its range is checked), every number of their tables, limits and factors
        within ±1e50 (infinite limits aside). An indication outside its table reads the NaN
        segment, and arithmetic on a quiet NaN raises nothing; one inside is bounded by the
        table's breakpoints, so every product of :meth:`_linear_rows` and :meth:`_decide` stays
        far below overflow."""
        for group in self._polynomials.values():
            group.columns = tuple(
                tuple(np.ascontiguousarray(c) for c in np.array(rows, dtype=np.float64).T)
                for rows in (group.coefficients, group.derivative, group.variance, group.scalars)
            )
        self.quiet_in_range = (
            bool(self._polynomials)
            and not self._linear
            and decisions
            and all(map(_tame, self._polynomials.values()))
        )
        """Whether a batch of polynomials of one length whose indications are all in range
        needs no warning silenced either: polynomials only, every number of theirs (and the
        decisions') within ±1e50, at most 20 terms, and ``t`` within ±10 over the range, so
        no sum or product of :meth:`_polynomial_rows` (nor :meth:`_decide`) can overflow (an
        indication out of range can: such a batch is evaluated under ``np.errstate``)."""

    def evaluate(
        self, span: IntArray, x: FloatArray, memo: Gathers | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray | None, IntArray | None]:
        """``(corrected, u, done, conformity)`` for the indications ``x`` of spans ``span``:
        ``done`` False where the per-reading path must take the reading (module doc), None
        when that is none of them;
        ``conformity`` the decision's code of each reading done (0 pass, 1 conditional pass;
        -1 no tolerance; a reading not done has no code worth reading), None when no span of
        the batch has a tolerance; it may be shared with later batches (read-only). ``memo``:
        what was gathered from the tables for this very ``span`` array before (a batch of the
        agent's usual order of channels: see :class:`Gathers`), filled as it is gathered."""
        g = memo if memo is not None else Gathers()
        if self.quiet:  # nothing to silence (see freeze): no errstate to enter and leave
            return self._evaluate(span, x, g)
        if self.quiet_in_range:
            length = g.of("one_length", lambda: self._one_length(span))
            if length:
                scalars = self._gathered(self._polynomials[length], span, g, length)[3]
                x_min, x_max = scalars[4], scalars[5]
                if np.count_nonzero((x_min <= x) & (x <= x_max)) == len(x):
                    return self._evaluate(span, x, g, in_range=True)
        with np.errstate(all="ignore"):
            return self._evaluate(span, x, g)

    def _evaluate(
        self, span: IntArray, x: FloatArray, g: Gathers, in_range: bool = False
    ) -> tuple[FloatArray, FloatArray, BoolArray | None, IntArray | None]:
        """:meth:`evaluate`, its floating-point warnings silenced by the caller if need be
        (``in_range``: polynomials of one length, every indication in range, quiet ones)."""
        done: BoolArray | None
        if not self._polynomials:  # linear spans only (no selection to make)
            rows = g.get("row")
            if rows is None:
                rows = g["row"] = self.row.take(span)
            corrected, u, segment = self._linear_rows(rows, x, g, "row")
            if not self.quiet:
                done = np.isfinite(corrected + u)  # NaN outside a table
            elif np.count_nonzero(segment) == len(segment):
                done = None  # every reading inside its table: finite (see freeze)
            else:
                done = segment != 0  # outside a table: NaN
        else:
            length = g.of("one_length", lambda: self._one_length(span))
            if length:  # polynomials of one length only (no selection to make)
                group = self._polynomials[length]
                gathered = self._gathered(group, span, g, length)
                corrected, u, done = self._polynomial_rows(gathered, x, not in_range)
            else:
                corrected, u = np.empty_like(x), np.empty_like(x)
                done = np.ones(x.shape, dtype=np.bool_)
                self._mixed_rows(span, x, corrected, u, done, g)
            if done is not None:  # else in range, of quiet polynomials: finite (see freeze)
                done &= np.isfinite(corrected + u)
        if not self.any_checked:
            return corrected, u, done, None
        rules = g.get("rules")
        if rules is None:
            rules = g["rules"] = self._rules(span)
        if not rules.any:
            return corrected, u, done, None
        decided = self._decide(rules, x, corrected, u)
        if decided.dtype is not _BOOL:
            codes = cast(IntArray, decided)
            codes[~rules.checked] = -1
            done = codes <= 1 if done is None else done & (codes <= 1)
            return corrected, u, done, codes
        # One binary rule (the common case): a reading that passes is done with code 0, one
        # that fails (code 3) goes the per-reading way; the codes of the readings done are
        # then the same for every batch of these spans.
        passes = cast(BoolArray, decided)
        if not rules.every:
            passes |= ~rules.checked
        done = passes if done is None else done & passes
        return corrected, u, done, rules.passed

    def _rules(self, span: IntArray) -> _Rules:
        """What deciding readings of spans ``span`` reads (see :class:`_Rules`)."""
        checked = self.checked.take(span)
        if not checked.any():
            return _Rules(checked, False)
        lower, upper = self.lower.take(span), self.upper.take(span)
        factor, coverage = self.factor.take(span), self.coverage.take(span)
        on_error, rule = self.on_error.take(span), self.rule.take(span)
        one = int(rule[0]) if rule.min() == rule.max() else None
        return _Rules(
            checked, True, bool(checked.all()), _passed(checked) if one != NON_BINARY else None,
            lower, upper, on_error, factor, coverage, rule, one, bool(on_error.any()),
        )  # fmt: skip

    def _one_length(self, span: IntArray) -> int:
        """The length of the polynomials of ``span`` when every span is a polynomial of one
        length, else 0."""
        if not len(span) or not np.all(self.kind.take(span) == POLYNOMIAL):
            return 0
        lengths = self.length.take(span)
        return int(lengths[0]) if lengths.min() == lengths.max() else 0

    def _mixed_rows(
        self,
        span: IntArray,
        x: FloatArray,
        corrected: FloatArray,
        u: FloatArray,
        done: BoolArray,
        g: Gathers,
    ) -> None:
        """Linear and polynomial spans: each kind over its own readings, into the columns."""
        kind = g.of("kind", lambda: self.kind.take(span))
        if not g.of("kind_any", lambda: np.bool_(kind.any())):
            rows = g.of("row", lambda: self.row.take(span))
            corrected[:], u[:], _ = self._linear_rows(rows, x, g, "row")
        else:
            linear = g.of("linear", lambda: np.flatnonzero(kind == LINEAR))
            if linear.size:
                rows = g.of("linear_row", lambda: self.row.take(span.take(linear)))
                corrected[linear], u[linear], _ = self._linear_rows(
                    rows, x.take(linear), g, "linear_row"
                )
            lengths = g.of("length", lambda: self.length.take(span))
            for length, group in self._polynomials.items():
                chosen = g.of(f"chosen{length}", lambda: np.flatnonzero(lengths == length))  # noqa: B023 - used at once
                if chosen.size:
                    rows = g.of(f"row{length}", lambda: self.row.take(span.take(chosen)))  # noqa: B023
                    gathered = g.of(f"p{length}", lambda: _gather(group, rows))  # noqa: B023
                    value, sigma, in_range = self._polynomial_rows(gathered, x.take(chosen))
                    corrected[chosen], u[chosen], done[chosen] = value, sigma, in_range

    def _linear_rows(
        self, rows: IntArray, x: FloatArray, g: Gathers, name: str
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[Any]]:
        """The corrected values and their u of indications ``x`` by linear tables ``rows``
        (NaN outside a table), and each one's segment (0 outside a table; a reading of the
        one table all read: not 0 inside it); ``name``: the rows' in ``g``."""
        # bisect_right(xs, x) in each reading's table: one search of (row, x) (see freeze),
        # the keys' real parts (the rows) set once for these rows, their indications each time;
        # or of x alone in the one table every reading reads.
        key = f"{name}.keys"
        found = g.get(key)
        if found is None:
            found = g[key] = _keys(rows)
        if not found:
            one = g.get(f"{name}.table")
            if one is None:
                one = g[f"{name}.table"] = int(rows[0])
            return self._table_rows(one, x)
        keys, indications = found
        indications[...] = x
        segment = self.segment.take(self.edges.searchsorted(keys, side="right"))
        terms = self.segments.take(segment, axis=0).T
        return (*_linear_terms(x, terms, self.flat_u, self.no_reading), segment)

    def _table_rows(self, one: int, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_linear_rows` of indications ``x`` that all read table ``one``, with fewer
        numpy calls (their cost is most of a batch's at a hundred readings): its own terms by
        bisect_right's count, 1.0 for a reading inside the table in place of its segment, 0.0
        outside."""
        terms = self.table_terms[one].take(self.breakpoints[one].searchsorted(x, "right"), 0).T
        return (*_linear_terms(x, terms, *self.table_flags[one]), terms[9])

    def _gathered(
        self, group: _Polynomials, span: IntArray, g: Gathers, length: int
    ) -> tuple[tuple[FloatArray, ...], ...]:
        """What the polynomials of ``span`` (all of ``group``, of ``length`` terms) read."""
        found = g.get(f"p{length}")
        if found is None:
            rows = g.of("one_row", lambda: self.row.take(span))
            found = g[f"p{length}"] = _gather(group, rows)
        gathered: tuple[tuple[FloatArray, ...], ...] = found
        return gathered

    @staticmethod
    def _polynomial_rows(
        gathered: tuple[tuple[FloatArray, ...], ...], x: FloatArray, check: bool = True
    ) -> tuple[FloatArray, FloatArray, Any]:
        """The corrected values, their u and whether they are in range, of indications ``x``
        by polynomials whose terms were ``gathered`` (``check`` False: known to be, None)."""
        coefficients, derivative, variance_poly, scalars = gathered
        center, inverse_scale, model_variance, reading, x_min, x_max = scalars
        # The generated apply()'s expressions, in its order (each polynomial summed before it
        # is added to x or to 1), so that both give the same bits.
        t = (x - center) * inverse_scale
        variance = _horner(variance_poly, t)
        variance = np.where(variance < 0.0, 0.0, variance)
        gain = 1.0 + _horner(derivative, t)
        value = x + _horner(coefficients, t)
        sigma = np.sqrt(variance + model_variance + gain * gain * reading)
        return value, sigma, (x_min <= x) & (x <= x_max) if check else None

    def _decide(
        self, rules: _Rules, x: FloatArray, corrected: FloatArray, u: FloatArray
    ) -> IntArray | BoolArray:
        """ConformityCheck.decide over the batch: 0 pass, 1 conditional pass, 2 conditional
        fail, 3 fail (NaN a fail), with its comparisons and arithmetic; under one binary rule
        (pass or fail), whether each reading passes."""
        lower, upper, factor, coverage, one = (
            rules.lower, rules.upper, rules.factor, rules.coverage, rules.one
        )  # fmt: skip
        # The batch's one rule and whether any reading is judged on its error, when it has
        # one (the common case: a binary rule needs one zone of the three, not all).
        measured = np.where(rules.on_error, x - corrected, corrected) if rules.errors else corrected
        ok: BoolArray
        if one == SIMPLE:
            ok = (lower <= measured) & (measured <= upper)
            return ok
        w = factor * (coverage * u)
        if one == GUARDED_ACCEPTANCE:
            ok = (lower + w <= measured) & (measured <= upper - w)
            return ok
        if one == GUARDED_REJECTION:
            ok = (lower - w <= measured) & (measured <= upper + w)
            return ok
        inner = (lower + w <= measured) & (measured <= upper - w)
        within = (lower <= measured) & (measured <= upper)
        outer = (lower - w <= measured) & (measured <= upper + w)
        zone = inner * 4 + within * 2 + outer
        codes: IntArray = _DECISIONS[rules.rule, zone]
        return codes


@dataclass(eq=False, slots=True)
class _Rules:
    """What deciding the readings of an array of spans reads, gathered once for it (kept with
    its :class:`Gathers`: one look-up per batch of the agent's usual order, not one per
    column): which spans have a tolerance (``any``: some, ``every``: all), the codes of
    readings that pass a binary rule, each span's limits, factors and rule, the batch's one
    rule (None: several) and whether any is judged on its error."""

    checked: BoolArray
    any: bool
    every: bool = False
    passed: IntArray | None = None
    lower: FloatArray = field(default_factory=lambda: np.zeros(0))
    upper: FloatArray = field(default_factory=lambda: np.zeros(0))
    on_error: BoolArray = field(default_factory=lambda: np.zeros(0, np.bool_))
    factor: FloatArray = field(default_factory=lambda: np.zeros(0))
    coverage: FloatArray = field(default_factory=lambda: np.zeros(0))
    rule: IntArray = field(default_factory=lambda: np.zeros(0, np.intp))
    one: int | None = None
    errors: bool = False


_BOOL = np.dtype(np.bool_)


def _decision(rule: int, zone: int) -> int:
    inner, within, outer = zone & 4, zone & 2, zone & 1
    if rule == SIMPLE:
        return 0 if within else 3
    if rule == GUARDED_ACCEPTANCE:
        return 0 if inner else 3
    if rule == GUARDED_REJECTION:
        return 0 if outer else 3
    return 0 if inner else 1 if within else 2 if outer else 3


_DECISIONS = np.array([[_decision(r, z) for z in range(8)] for r in range(4)], dtype=np.intp)
"""Rule × zone (inner·4 + within·2 + outer, each as ``decide`` compares) → decision code."""


def _passed(checked: BoolArray) -> IntArray:
    """The codes of readings that pass a binary rule (0; -1 where no tolerance), read-only:
    shared by every batch of the same spans."""
    codes: IntArray = np.where(checked, 0, -1).astype(np.intp)
    codes.flags.writeable = False
    return codes


_MODERATE = 1e50
"""The largest magnitude :attr:`Kernels.quiet` allows in a table (products of four such
numbers stay below 1e308)."""


def _moderate(*arrays: FloatArray) -> bool:
    """Whether every number of ``arrays`` is finite and within ±:data:`_MODERATE`."""
    return all(bool(np.all(np.abs(a) <= _MODERATE)) for a in arrays)


def _finite_part(*arrays: FloatArray) -> FloatArray:
    """The finite numbers of ``arrays`` (limits: an infinite one adds nothing to overflow)."""
    joined = np.concatenate(arrays)
    finite: FloatArray = joined[np.isfinite(joined)]
    return finite


def _keys(rows: IntArray) -> tuple[npt.NDArray[np.complex128], FloatArray] | tuple[()]:
    """Search keys for readings of linear tables ``rows`` (see :meth:`Kernels.freeze`): the
    rows as real parts, and the view of the imaginary parts the indications are copied into;
    none (empty) when every reading reads one table (searched alone)."""
    if len(rows) and rows.min() == rows.max():
        return ()
    keys = np.empty(len(rows), dtype=np.complex128)
    keys.real = rows
    return keys, keys.imag


def _is_plus_zero(number: float) -> bool:
    """Whether ``number`` is +0.0 (not -0.0)."""
    return number == 0.0 and not _negative(number)


def _negative(number: float) -> bool:
    """Whether ``number``'s sign bit is set (-0.0 included)."""
    return math.copysign(1.0, number) < 0.0


def _gather(group: _Polynomials, rows: IntArray) -> tuple[tuple[FloatArray, ...], ...]:
    """The terms of polynomials ``rows`` of ``group``: coefficients, derivative, variance and
    scalars, each a tuple of columns."""
    return tuple(tuple(column.take(rows) for column in columns) for columns in group.columns)


_TERMS_MAX, _T_MAX = 20, 10.0
"""The most terms, and the largest |t| over the range, of a polynomial quiet in range."""


def _tame(group: _Polynomials) -> bool:
    """Whether ``group``'s polynomials are quiet in range (see ``Kernels.quiet_in_range``)."""
    columns = [
        np.array(rows, dtype=np.float64)
        for rows in (group.coefficients, group.derivative, group.variance, group.scalars)
    ]
    if (
        not _moderate(*columns)
        or max(len(group.variance[0]), len(group.coefficients[0])) > _TERMS_MAX
    ):
        return False
    center, inverse_scale, _, _, x_min, x_max = columns[3].T
    reach = np.maximum(np.abs(x_min - center), np.abs(x_max - center)) * np.abs(inverse_scale)
    return bool(np.all(reach <= _T_MAX))


def _linear_terms(
    x: FloatArray, terms: FloatArray, flat_u: bool, no_reading: bool
) -> tuple[FloatArray, FloatArray]:
    """The corrected values and their u of indications ``x`` in the segments whose columns
    (see :meth:`Kernels.freeze`) are ``terms``: apply()'s in-range arithmetic, operation for
    operation, less what adds +0 exactly — du·dx where du/dx is 0 (``flat_u``; dx >= 0 in
    range), and the reading's variance when it is 0 (``no_reading``; added to a sum of
    squares, >= +0) — with u_i² as made once (the same bits as u_i·u_i)."""
    dx = x - terms[0]
    q = dx * (x - terms[1])
    value = x + terms[2] + terms[3] * dx
    k2 = terms[5]
    if flat_u and no_reading:  # u_i·u_i + k2·q·q
        return value, np.sqrt(terms[8] + k2 * q * q)
    u_points = terms[4] if flat_u else terms[4] + terms[7] * dx
    spread = u_points * u_points + k2 * q * q
    return value, np.sqrt(spread if no_reading else spread + terms[6])


def _horner(columns: tuple[FloatArray, ...], t: FloatArray) -> FloatArray:
    """``((a_n·t + a_{n−1})·t + …)·t + a_0`` with each row's own coefficients (gathered)."""
    acc = columns[-1]
    for column in reversed(columns[:-1]):
        acc = acc * t + column
    return acc


class Gathers(dict[str, Any]):
    """What :meth:`Kernels.evaluate` gathered from the tables for one array of span ids, by
    name: a batch in the same order of channels as the one before (an agent's usual) reuses
    them instead of gathering again — about a third of the numpy calls of a batch, whose cost
    per call (microseconds) is most of a batch's at a few hundred readings."""

    def of(self, name: str, make: Callable[[], Any]) -> Any:
        """The gathered ``name``, made now if it was not."""
        found = self.get(name)
        if found is None:
            found = self[name] = make()
        return found
