"""Check-standard control charts: individuals and moving range, Nelson rules, EWMA, CUSUM.

Methods of the NIST/SEMATECH e-Handbook, section 6.3.2 (and 2.3.5 for check standards):

* Individuals / moving-range chart: centre = mean of the baseline, sigma = MR̄/d2 with
  d2 = 1.128, limits centre ± 3 sigma; the MR chart's upper limit D4·MR̄ with D4 = 3.267
  (the tabulated constants for moving ranges of two, as the e-Handbook and ASTM E2587 use).
* Nelson's eight rules (Nelson 1984, J. Qual. Technol. 16, the Western Electric rules extended),
  against the baseline's centre and sigma; see ``NELSON_RULES``.
* EWMA: ``z_i = λ x_i + (1-λ) z_{i-1}``, ``z_0`` = target; limits target ± L σ √(λ/(2-λ)
  [1-(1-λ)^{2i}]) (``limits="exact"``, default) or their asymptote (``"asymptotic"``, as in the
  e-Handbook example). Defaults λ = 0.2, L = 3 (in-control ARL ≈ 560, Lucas & Saccucci 1990).
* Tabular CUSUM: ``S_hi,i = max(0, S_hi,i-1 + x_i - target - k)``, ``S_lo,i = max(0,
  S_lo,i-1 + target - k - x_i)``, signal when a sum exceeds h; k and h in units of sigma,
  defaults k = 0.5, h = 5 (in-control ARL ≈ 465, Montgomery). Sums are not reset after a signal,
  as in the e-Handbook's table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import signal

from gateway.analytics.arrays import FloatArray, finite_array
from gateway.analytics.errors import AnalyticsError
from metrology._common import MetrologyModel

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

D2_MOVING_RANGE = 1.128
D4_MOVING_RANGE = 3.267
DEFAULT_EWMA_LAMBDA = 0.2
DEFAULT_EWMA_L = 3.0
DEFAULT_CUSUM_K = 0.5
DEFAULT_CUSUM_H = 5.0

NELSON_RULES: dict[int, str] = {
    1: "one point beyond 3 sigma from the centre line",
    2: "nine points in a row on the same side of the centre line",
    3: "six points in a row steadily increasing or decreasing",
    4: "fourteen points in a row alternating up and down",
    5: "two out of three points in a row beyond 2 sigma on the same side",
    6: "four out of five points in a row beyond 1 sigma on the same side",
    7: "fifteen points in a row within 1 sigma of the centre line",
    8: "eight points in a row beyond 1 sigma, on either side",
}
"""Nelson's rules. "Beyond" is strictly beyond; a point exactly on the centre line breaks the
runs of rule 2 and equal neighbours break those of rules 3 and 4. A rule fires at every point
that completes its pattern (a run of ten on one side fires rule 2 at the ninth and tenth points);
rules 5 and 6 fire only at a point that is itself beyond the zone. ``first_index`` is the first
point of the pattern's window."""

NELSON_RULES_VI: dict[int, str] = {
    1: "một điểm nằm ngoài 3 sigma so với đường tâm",
    2: "chín điểm liên tiếp nằm cùng một phía của đường tâm",
    3: "sáu điểm liên tiếp tăng dần hoặc giảm dần",
    4: "mười bốn điểm liên tiếp luân phiên lên xuống",
    5: "hai trong ba điểm liên tiếp nằm ngoài 2 sigma, cùng một phía",
    6: "bốn trong năm điểm liên tiếp nằm ngoài 1 sigma, cùng một phía",
    7: "mười lăm điểm liên tiếp nằm trong khoảng 1 sigma quanh đường tâm",
    8: "tám điểm liên tiếp nằm ngoài 1 sigma, ở bất kỳ phía nào",
}
"""The rule names in Vietnamese, for alerts and reports."""

Side = Literal["above", "below", "rising", "falling"]
"""Which side of the centre line a pattern lies on; rule 3 says rising or falling."""


class RuleViolation(MetrologyModel):
    """One firing of a Nelson rule: which rule, at which point, and where its pattern began."""

    rule: int
    name: str
    name_vi: str
    index: int
    first_index: int
    side: Side | None
    value: float


class IndividualsLimits(MetrologyModel):
    """Limits of the individuals and moving-range charts, from the baseline period."""

    baseline_n: int
    center: float
    sigma: float
    """Estimated from the baseline's mean moving range: MR̄ / 1.128."""
    mr_bar: float
    ucl: float
    lcl: float
    mr_ucl: float


class MovingRangeSignal(MetrologyModel):
    """A moving range above the MR chart's upper limit (at the later of its two points)."""

    index: int
    moving_range: float


class EwmaChart(MetrologyModel):
    """An EWMA chart: the statistic, its limits at each point and the points beyond them."""

    lambda_: float
    L: float
    target: float
    sigma: float
    limits: Literal["exact", "asymptotic"]
    ewma: list[float]
    ucl: list[float]
    lcl: list[float]
    signals: list[int]


class CusumSignal(MetrologyModel):
    """A point where a one-sided cumulative sum exceeds the decision interval."""

    index: int
    side: Literal["above", "below"]
    value: float


class CusumChart(MetrologyModel):
    """A two-sided tabular CUSUM: the sums above and below target and the signals."""

    k: float
    h: float
    """k and h in units of sigma."""
    k_value: float
    h_value: float
    """k and h in the data's unit (k·sigma, h·sigma)."""
    target: float
    sigma: float
    upper: list[float]
    lower: list[float]
    signals: list[CusumSignal]


class ControlReport(MetrologyModel):
    """Everything ``etalon drift chart`` reports."""

    format: Literal["etalon.drift.chart/1"] = "etalon.drift.chart/1"
    n: int
    limits: IndividualsLimits
    violations: list[RuleViolation]
    moving_range_signals: list[MovingRangeSignal]
    ewma: EwmaChart
    cusum: CusumChart


def _check_baseline(values: FloatArray, baseline: int) -> None:
    if not 2 <= baseline <= values.size:
        raise AnalyticsError(
            f"the baseline must hold at least 2 of the {values.size} points, got {baseline}"
        )


def individuals_limits(values: Sequence[float] | FloatArray, baseline: int) -> IndividualsLimits:
    """Centre, sigma and limits from the first ``baseline`` points (the baseline period)."""
    array = finite_array(values)
    _check_baseline(array, baseline)
    base = array[:baseline]
    mr_bar = float(np.mean(np.abs(np.diff(base))))
    center = float(np.mean(base))
    sigma = mr_bar / D2_MOVING_RANGE
    if sigma == 0.0:
        raise AnalyticsError("the baseline's moving ranges are all zero: sigma cannot be estimated")
    return IndividualsLimits(
        baseline_n=baseline,
        center=center,
        sigma=sigma,
        mr_bar=mr_bar,
        ucl=center + 3.0 * sigma,
        lcl=center - 3.0 * sigma,
        mr_ucl=D4_MOVING_RANGE * mr_bar,
    )


def _run_lengths(mask: BoolArray) -> IntArray:
    """Length of the run of True ending at each position (0 where False)."""
    positions = np.arange(mask.size, dtype=np.int64)
    last_false = np.maximum.accumulate(np.where(mask, -1, positions))
    return np.where(mask, positions - last_false, 0)


def _window_count(mask: BoolArray, window: int) -> IntArray:
    """How many of the ``window`` points ending at each position are True (full windows only)."""
    counts = np.zeros(mask.size, dtype=np.int64)
    if mask.size < window:
        return counts
    cumulative = np.concatenate(([0], np.cumsum(mask.astype(np.int64))))
    counts[window - 1 :] = cumulative[window:] - cumulative[:-window]
    return counts


def nelson_rules(
    values: Sequence[float] | FloatArray,
    center: float,
    sigma: float,
    rules: Iterable[int] = range(1, 9),
) -> list[RuleViolation]:
    """Every violation of the chosen Nelson rules, ordered by point then rule."""
    array = finite_array(values)
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise AnalyticsError("sigma must be a positive number")
    chosen = sorted(set(rules))
    for rule in chosen:
        if rule not in NELSON_RULES:
            raise AnalyticsError(f"there is no Nelson rule {rule} (rules are 1 to 8)")
    z = (array - center) / sigma
    found: list[tuple[int, int, int, Side | None]] = []

    def add(rule: int, hits: IntArray, length: int, side: Side | None) -> None:
        for index in hits.tolist():
            found.append((index, rule, index - length + 1, side))

    sides: tuple[tuple[Side, float], ...] = (("above", 1.0), ("below", -1.0))
    steps = np.diff(array)
    for rule in chosen:
        for side, sign in sides:
            signed = sign * z
            if rule == 1:
                add(1, np.flatnonzero(signed > 3.0), 1, side)
            elif rule == 2:
                add(2, np.flatnonzero(_run_lengths(signed > 0.0) >= 9), 9, side)
            elif rule == 3:
                # Five rising (falling) steps in a row make six rising (falling) points.
                hits = np.flatnonzero(_run_lengths(sign * steps > 0.0) >= 5)
                add(3, hits + 1, 6, "rising" if sign > 0 else "falling")
            elif rule in (5, 6):
                window, needed, zone = (3, 2, 2.0) if rule == 5 else (5, 4, 1.0)
                beyond = signed > zone
                add(
                    rule,
                    np.flatnonzero(beyond & (_window_count(beyond, window) >= needed)),
                    window,
                    side,
                )
        if rule == 4:
            # Thirteen steps alternating in sign: twelve sign changes in a row.
            alternating = steps[1:] * steps[:-1] < 0.0
            add(4, np.flatnonzero(_run_lengths(alternating) >= 12) + 2, 14, None)
        elif rule == 7:
            add(7, np.flatnonzero(_run_lengths(np.abs(z) < 1.0) >= 15), 15, None)
        elif rule == 8:
            add(8, np.flatnonzero(_run_lengths(np.abs(z) > 1.0) >= 8), 8, None)
    found.sort(key=lambda item: (item[0], item[1]))
    return [
        RuleViolation(
            rule=rule,
            name=NELSON_RULES[rule],
            name_vi=NELSON_RULES_VI[rule],
            index=index,
            first_index=first,
            side=side,
            value=float(array[index]),
        )
        for index, rule, first, side in found
    ]


def ewma_chart(
    values: Sequence[float] | FloatArray,
    *,
    target: float,
    sigma: float,
    lambda_: float = DEFAULT_EWMA_LAMBDA,
    L: float = DEFAULT_EWMA_L,
    limits: Literal["exact", "asymptotic"] = "exact",
) -> EwmaChart:
    """The EWMA statistic of each point (``z_0 = target``) and its control limits."""
    array = finite_array(values)
    if not 0.0 < lambda_ <= 1.0:
        raise AnalyticsError("the EWMA lambda must lie in (0, 1]")
    if not (math.isfinite(sigma) and sigma > 0.0) or not L > 0.0:
        raise AnalyticsError("sigma and L must be positive numbers")
    if limits not in ("exact", "asymptotic"):
        raise AnalyticsError(f"unknown EWMA limits {limits!r}: exact or asymptotic")
    keep = 1.0 - lambda_
    # z_i = λ x_i + (1-λ) z_{i-1} as a first-order filter started at z_0 = target.
    ewma, _ = signal.lfilter([lambda_], [1.0, -keep], array, zi=[keep * target])
    steps = np.arange(1, array.size + 1)
    factor = lambda_ / (2.0 - lambda_)
    if limits == "exact":
        half_width = L * sigma * np.sqrt(factor * (1.0 - keep ** (2 * steps)))
    else:
        half_width = np.full(array.size, L * sigma * math.sqrt(factor))
    ucl, lcl = target + half_width, target - half_width
    signals = np.flatnonzero((ewma > ucl) | (ewma < lcl))
    return EwmaChart(
        lambda_=lambda_,
        L=L,
        target=target,
        sigma=sigma,
        limits=limits,
        ewma=ewma.tolist(),
        ucl=ucl.tolist(),
        lcl=lcl.tolist(),
        signals=signals.tolist(),
    )


def cusum_chart(
    values: Sequence[float] | FloatArray,
    *,
    target: float,
    sigma: float,
    k: float = DEFAULT_CUSUM_K,
    h: float = DEFAULT_CUSUM_H,
) -> CusumChart:
    """The two one-sided tabular CUSUMs: reference value k·sigma, decision interval h·sigma."""
    array = finite_array(values)
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise AnalyticsError("sigma must be a positive number")
    if not (k >= 0.0 and h > 0.0):
        raise AnalyticsError("the CUSUM k must be >= 0 and h > 0 (in units of sigma)")
    k_value, h_value = k * sigma, h * sigma
    upper = np.empty_like(array)
    lower = np.empty_like(array)
    high = low = 0.0
    for i, value in enumerate(array.tolist()):
        high = max(0.0, high + value - target - k_value)
        low = max(0.0, low + target - k_value - value)
        upper[i], lower[i] = high, low
    signals = [
        CusumSignal(index=i, side=side, value=float(sums[i]))
        for i in range(array.size)
        for side, sums in (("above", upper), ("below", lower))
        if sums[i] > h_value
    ]
    return CusumChart(
        k=k,
        h=h,
        k_value=k_value,
        h_value=h_value,
        target=target,
        sigma=sigma,
        upper=upper.tolist(),
        lower=lower.tolist(),
        signals=signals,
    )


def control_report(
    values: Sequence[float] | FloatArray,
    baseline: int,
    *,
    rules: Iterable[int] = range(1, 9),
    ewma_lambda: float = DEFAULT_EWMA_LAMBDA,
    ewma_L: float = DEFAULT_EWMA_L,
    ewma_limits: Literal["exact", "asymptotic"] = "exact",
    cusum_k: float = DEFAULT_CUSUM_K,
    cusum_h: float = DEFAULT_CUSUM_H,
) -> ControlReport:
    """Individuals/MR limits from the baseline, then Nelson rules, EWMA and CUSUM on every point."""
    array = finite_array(values)
    limits = individuals_limits(array, baseline)
    moving_ranges = np.abs(np.diff(array))
    mr_hits = np.flatnonzero(moving_ranges > limits.mr_ucl)
    return ControlReport(
        n=int(array.size),
        limits=limits,
        violations=nelson_rules(array, limits.center, limits.sigma, rules),
        moving_range_signals=[
            MovingRangeSignal(index=int(i) + 1, moving_range=float(moving_ranges[i]))
            for i in mr_hits
        ],
        ewma=ewma_chart(
            array,
            target=limits.center,
            sigma=limits.sigma,
            lambda_=ewma_lambda,
            L=ewma_L,
            limits=ewma_limits,
        ),
        cusum=cusum_chart(array, target=limits.center, sigma=limits.sigma, k=cusum_k, h=cusum_h),
    )
