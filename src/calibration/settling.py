"""Is the point settled? A line fitted over the last window of readings.

A point is settled when, over the last ``window_s`` seconds of readings (at least
``min_readings`` of them), the straight line fitted to value against time has a slope whose
magnitude is at most ``max_slope_per_s`` and the readings' standard deviation about that line is
at most ``max_std``. The first-order approach of a calibrator's output shows as a slope that
decays; noise as the standard deviation; an output that wanders never passes both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowFit:
    """The line over a window: slope (unit per second), standard deviation about it, count."""

    slope_per_s: float
    std: float
    n: int
    span_s: float


def fit_window(times_ns: Sequence[int], values: Sequence[float]) -> WindowFit:
    """Least-squares line of ``values`` against time; needs at least three points."""
    n = len(values)
    if n < 3 or len(times_ns) != n:
        raise ValueError("a window needs at least three readings, each with its time")
    t0 = times_ns[0]
    ts = [(t - t0) / 1e9 for t in times_ns]
    mean_t = math.fsum(ts) / n
    mean_v = math.fsum(values) / n
    sxx = math.fsum((t - mean_t) ** 2 for t in ts)
    if sxx == 0.0:
        slope = 0.0
    else:
        slope = (
            math.fsum((t - mean_t) * (v - mean_v) for t, v in zip(ts, values, strict=True)) / sxx
        )
    residuals = [v - (mean_v + slope * (t - mean_t)) for t, v in zip(ts, values, strict=True)]
    std = math.sqrt(math.fsum(r * r for r in residuals) / (n - 2))
    return WindowFit(abs(slope), std, n, ts[-1] - ts[0])


@dataclass(frozen=True, slots=True)
class Criterion:
    """The settling criterion of a procedure."""

    window_s: float
    min_readings: int
    max_slope_per_s: float
    max_std: float


class SettlingMonitor:
    """Readings in, a verdict out: :meth:`add` a reading, :meth:`settled` asks the window."""

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion
        self.times: list[int] = []
        self.values: list[float] = []
        self.last: WindowFit | None = None

    def add(self, t_ns: int, value: float) -> None:
        """One reading (in time order)."""
        self.times.append(t_ns)
        self.values.append(value)
        horizon = t_ns - int(self.criterion.window_s * 1e9)
        # Keep the window and one reading before it (the window is then surely full).
        while len(self.times) > self.criterion.min_readings and self.times[1] <= horizon:
            self.times.pop(0)
            self.values.pop(0)

    def reset(self) -> None:
        """Start again (a bad reading broke the series)."""
        self.times.clear()
        self.values.clear()
        self.last = None

    def window(self) -> tuple[list[int], list[float]]:
        """The readings within the window (the newest ``window_s`` seconds)."""
        if not self.times:
            return [], []
        horizon = self.times[-1] - int(self.criterion.window_s * 1e9)
        pairs = [(t, v) for t, v in zip(self.times, self.values, strict=True) if t >= horizon]
        return [t for t, _ in pairs], [v for _, v in pairs]

    def full(self) -> bool:
        """Whether the window spans ``window_s`` with enough readings."""
        times, _ = self.window()
        if len(times) < self.criterion.min_readings or len(self.times) < 2:
            return False
        return (self.times[-1] - self.times[0]) >= int(self.criterion.window_s * 1e9)

    def settled(self) -> bool:
        """Whether the window is full and within both limits (``last`` holds the fit)."""
        times, values = self.window()
        if len(times) < max(3, self.criterion.min_readings):
            return False
        self.last = fit_window(times, values)
        if not self.full():
            return False
        return (
            self.last.slope_per_s <= self.criterion.max_slope_per_s
            and self.last.std <= self.criterion.max_std
        )
