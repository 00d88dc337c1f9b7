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
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from gateway.analytics._base import AnalyticsModel
from gateway.analytics.errors import AnalyticsError
from gateway.analytics.timebase import EPOCH

NS_PER_SECOND = 1_000_000_000
SECONDS_PER_DAY = 86_400


class PeriodMean(AnalyticsModel):
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


class PeriodMeans(AnalyticsModel):
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
    sums = np.add.reduceat(shifted, starts)
    means_shifted = sums / counts
    deviations = shifted - np.repeat(means_shifted, counts)
    squares = np.add.reduceat(deviations * deviations, starts)
    periods: list[PeriodMean] = []
    for index in range(starts.size):
        n = int(counts[index])
        if n < min_count:
            continue
        sd = math.sqrt(float(squares[index]) / (n - 1)) if n > 1 else None
        start_ns = origin_ns + int(bins[starts[index]]) * period_ns
        periods.append(
            PeriodMean(
                start_ns=start_ns,
                end_ns=start_ns + period_ns,
                n=n,
                mean=float(readings[starts[index]] + means_shifted[index]),
                sd=sd,
                u_mean=None if sd is None else sd / math.sqrt(n),
                dof=n - 1,
                first_ns=int(stamps[starts[index]]),
                last_ns=int(stamps[ends[index] - 1]),
            )
        )
    return PeriodMeans(period_s=period_s, origin_ns=origin_ns, periods=periods)
