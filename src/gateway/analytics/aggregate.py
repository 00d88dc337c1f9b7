"""Raw readings into period means (daily by default) with their Type A standard uncertainty.

Each period ``[origin + k·period, origin + (k+1)·period)`` (UTC; the default origin, the epoch,
aligns days on midnight UTC) gets the mean of its readings, their experimental standard deviation
``s`` and the experimental standard deviation of the mean ``s/√n`` (JCGM 100, 4.2), with n - 1
degrees of freedom. ``s/√n`` assumes independent readings: for flicker-dominated sources (a Zener
over a day) it understates the uncertainty of the mean; the Allan deviation at tau = one period
(``stability.allan_deviation``) shows whether the readings average down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from gateway.analytics.errors import AnalyticsError
from gateway.analytics.timebase import EPOCH
from metrology._common import MetrologyModel

NS_PER_SECOND = 1_000_000_000
SECONDS_PER_DAY = 86_400


class PeriodMean(MetrologyModel):
    """The readings of one period: count, mean, standard deviation and u of the mean."""

    start_ns: int
    end_ns: int
    """The period is [start_ns, end_ns), UTC nanoseconds since the epoch."""
    n: int
    mean: float
    sd: float | None
    """Experimental standard deviation (None for a single reading)."""
    u_mean: float | None
    """Type A standard uncertainty of the mean, s/√n (None for a single reading)."""
    dof: int
    first_ns: int
    last_ns: int


class PeriodMeans(MetrologyModel):
    """Period means of a series, in time order; periods without readings are absent."""

    format: Literal["etalon.drift.periods/1"] = "etalon.drift.periods/1"
    period_s: float
    origin_ns: int
    periods: list[PeriodMean]


def _datetime_ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (
        delta.days * SECONDS_PER_DAY + delta.seconds
    ) * NS_PER_SECOND + delta.microseconds * 1000


def _as_ns(
    timestamps: Sequence[int] | Sequence[datetime] | npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    items = list(timestamps)
    if items and isinstance(items[0], datetime):
        return np.asarray([_datetime_ns(moment) for moment in items], dtype=np.int64)
    return np.asarray(items, dtype=np.int64)


class _Periods(NamedTuple):
    """Readings sorted by time and cut into periods: what every period statistic is built from."""

    stamps: npt.NDArray[np.int64]
    readings: npt.NDArray[np.float64]
    order: npt.NDArray[np.intp]
    bins: npt.NDArray[np.int64]
    starts: npt.NDArray[np.intp]
    ends: npt.NDArray[np.intp]
    counts: npt.NDArray[np.intp]
    means_shifted: npt.NDArray[np.float64]
    m2: npt.NDArray[np.float64]
    """Sum of squared deviations from each period's mean."""
    period_ns: int
    origin_ns: int

    def period_start(self, index: int) -> int:
        return self.origin_ns + int(self.bins[self.starts[index]]) * self.period_ns

    def mean(self, index: int) -> float:
        return float(self.readings[self.starts[index]] + self.means_shifted[index])

    def first_ns(self, index: int) -> int:
        return int(self.stamps[self.starts[index]])

    def last_ns(self, index: int) -> int:
        return int(self.stamps[self.ends[index] - 1])


def _group(
    stamps: npt.NDArray[np.int64],
    readings: npt.NDArray[np.float64],
    period_ns: int,
    origin_ns: int,
) -> _Periods:
    """Sort by time (stable) and cut into periods ``[origin + k·period, origin + (k+1)·period)``."""
    order = np.argsort(stamps, kind="stable")
    stamps, readings = stamps[order], readings[order]
    bins = np.floor_divide(stamps - origin_ns, period_ns)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    ends = np.concatenate((starts[1:], [stamps.size]))
    counts = ends - starts
    # Two-pass per period: subtract each period's first value before summing, for precision
    # when values carry a large offset (10 V read to 1 nV).
    anchors = np.repeat(readings[starts], counts)
    shifted = readings - anchors
    means_shifted = np.add.reduceat(shifted, starts) / counts
    deviations = shifted - np.repeat(means_shifted, counts)
    m2 = np.add.reduceat(deviations * deviations, starts)
    return _Periods(
        stamps, readings, order, bins, starts, ends, counts, means_shifted, m2, period_ns, origin_ns
    )


def period_means(
    timestamps: Sequence[int] | Sequence[datetime] | npt.NDArray[np.int64],
    values: Sequence[float] | npt.NDArray[np.float64],
    *,
    period_s: float = SECONDS_PER_DAY,
    origin: datetime | None = None,
    min_count: int = 1,
) -> PeriodMeans:
    """Group readings (UTC ns timestamps or aware datetimes) into periods and average each.

    Periods with fewer than ``min_count`` readings are left out. The readings need not be sorted.
    """
    stamps = _as_ns(timestamps)
    readings = np.asarray(values, dtype=np.float64)
    if stamps.shape != readings.shape or readings.ndim != 1:
        raise AnalyticsError(f"{stamps.size} timestamps but {readings.size} values")
    if not np.all(np.isfinite(readings)):
        bad = int(np.flatnonzero(~np.isfinite(readings))[0])
        raise AnalyticsError(f"value [{bad}] is not a finite number")
    if not (math.isfinite(period_s) and period_s > 0.0):
        raise AnalyticsError("the period must be a positive number of seconds")
    period_ns = round(period_s * NS_PER_SECOND)
    if period_ns <= 0:
        raise AnalyticsError("the period is shorter than a nanosecond")
    if min_count < 1:
        raise AnalyticsError("min_count must be at least 1")
    origin_ns = 0 if origin is None else _datetime_ns(origin)
    if stamps.size == 0:
        return PeriodMeans(period_s=period_s, origin_ns=origin_ns, periods=[])
    groups = _group(stamps, readings, period_ns, origin_ns)
    periods: list[PeriodMean] = []
    for index in range(groups.starts.size):
        n = int(groups.counts[index])
        if n < min_count:
            continue
        sd = math.sqrt(float(groups.m2[index]) / (n - 1)) if n > 1 else None
        start_ns = groups.period_start(index)
        periods.append(
            PeriodMean(
                start_ns=start_ns,
                end_ns=start_ns + period_ns,
                n=n,
                mean=groups.mean(index),
                sd=sd,
                u_mean=None if sd is None else sd / math.sqrt(n),
                dof=n - 1,
                first_ns=groups.first_ns(index),
                last_ns=groups.last_ns(index),
            )
        )
    return PeriodMeans(period_s=period_s, origin_ns=origin_ns, periods=periods)


# -- period statistics for the standards' evaluation ----------------------------------------------


@dataclass(frozen=True)
class PeriodStat:
    """The good readings of one channel in one period, in the channel's own unit."""

    start_ns: int
    n: int
    mean: float
    m2: float
    """Sum of squared deviations from the mean."""
    mean_ns: int
    """Mean time of the readings."""
    first_ns: int
    last_ns: int
    u_b: float | None
    """Mean of the readings' own standard uncertainties (None if they carry none)."""

    @property
    def sd(self) -> float | None:
        """Experimental standard deviation (None for one reading)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None


def period_stats(
    timestamps: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    uncertainties: npt.NDArray[np.float64],
    period_ns: int,
    origin_ns: int = 0,
) -> list[PeriodStat]:
    """Period statistics of raw readings (any order; ``uncertainties`` NaN where a reading
    carries none): the grouping of :func:`period_means`, with the sum of squared deviations,
    the mean time and the mean Type B uncertainty that an evaluation pools across periods."""
    if timestamps.size == 0:
        return []
    groups = _group(timestamps, values, period_ns, origin_ns)
    stamps, starts, counts = groups.stamps, groups.starts, groups.counts
    us = uncertainties[groups.order]
    time_anchor = np.repeat(stamps[starts], counts)
    mean_offsets = np.add.reduceat((stamps - time_anchor).astype(np.float64), starts) / counts
    known = ~np.isnan(us)
    u_sums = np.add.reduceat(np.where(known, us, 0.0), starts)
    u_counts = np.add.reduceat(known.astype(np.int64), starts)
    return [
        PeriodStat(
            start_ns=groups.period_start(i),
            n=int(counts[i]),
            mean=groups.mean(i),
            m2=float(groups.m2[i]),
            mean_ns=int(stamps[starts[i]]) + round(float(mean_offsets[i])),
            first_ns=groups.first_ns(i),
            last_ns=groups.last_ns(i),
            u_b=float(u_sums[i] / u_counts[i]) if u_counts[i] else None,
        )
        for i in range(starts.size)
    ]
