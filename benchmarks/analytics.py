"""Drift fit and Allan deviation on 1,000,000 readings, against raw numpy baselines.

Run:  PYTHONPATH=src python benchmarks/analytics.py [--n 1000000] [--repeat 5]

Each line reports the best of ``--repeat`` runs (wall clock, one process) of:

- ``drift fit`` -- ``fit_drift(model="linear")`` and ``(model="auto")`` (fits the quadratic and
  the line: the selection rule), result model included; baseline ``np.polyfit(x, y, 1, cov=True)``.
- ``weighted fit`` -- with per-reading uncertainties; baseline ``np.polyfit(..., w=1/u, cov=True)``.
- ``oadev`` / ``mdev`` -- ``allan_deviation`` at octave taus, with noise identification, Greenhall
  EDF and chi-squared intervals; baseline a bare numpy overlapping ADEV (resp. MDEV) at the same
  taus, no intervals.
- ``period means`` -- one year of 30 s readings into daily means; baseline numpy ``bincount``.

The aim (issue 6): drift fit and ADEV on 10⁶ readings each under one second on this machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gateway.analytics import allan_deviation, fit_drift, period_means


def best_of(repeat: int, function: Callable[[], object]) -> float:
    """The shortest wall-clock time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_oadev(y: np.ndarray, factors: list[int]) -> list[float]:
    """Bare overlapping ADEV from frequency data (the baseline)."""
    phase = np.concatenate(([0.0], np.cumsum(y - y.mean())))
    result = []
    for m in factors:
        d = phase[2 * m :] - 2 * phase[m:-m] + phase[: -2 * m]
        result.append(float(np.sqrt(np.mean(d * d) / (2 * m * m))))
    return result


def numpy_mdev(y: np.ndarray, factors: list[int]) -> list[float]:
    """Bare modified ADEV from frequency data (the baseline)."""
    phase = np.concatenate(([0.0], np.cumsum(y - y.mean())))
    result = []
    for m in factors:
        d = phase[2 * m :] - 2 * phase[m:-m] + phase[: -2 * m]
        c = np.concatenate(([0.0], np.cumsum(d)))
        s = c[m:] - c[:-m]
        result.append(float(np.sqrt(np.mean(s * s) / (2 * m**4))))
    return result


def main() -> None:
    """Run every benchmark and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    rng = np.random.default_rng(1)
    x = np.arange(n, dtype=np.float64) * 30.0 / 86_400.0  # days, one reading per 30 s
    y = 10.0 + 2e-8 * x + rng.normal(0.0, 5e-8, n) + np.cumsum(rng.normal(0.0, 1e-10, n))
    u = np.full(n, 5e-8) * rng.uniform(0.8, 1.2, n)

    rows: list[tuple[str, float, float]] = []
    rows.append(
        (
            "drift fit, linear (OLS)",
            best_of(repeat, lambda: fit_drift(x, y, model="linear")),
            best_of(repeat, lambda: np.polyfit(x, y, 1, cov=True)),
        )
    )
    rows.append(
        (
            "drift fit, auto (quadratic + linear)",
            best_of(repeat, lambda: fit_drift(x, y)),
            best_of(repeat, lambda: np.polyfit(x, y, 1, cov=True)),
        )
    )
    rows.append(
        (
            "drift fit, linear (WLS)",
            best_of(repeat, lambda: fit_drift(x, y, u, model="linear")),
            best_of(repeat, lambda: np.polyfit(x, y, 1, w=1.0 / u, cov="unscaled")),
        )
    )
    oadev = allan_deviation(y, 1 / 30.0)
    factors = [p.m for p in oadev.points]
    assert np.allclose([p.deviation for p in oadev.points], numpy_oadev(y, factors), rtol=1e-9)
    rows.append(
        (
            f"oadev, {len(factors)} octave taus, with CIs",
            best_of(repeat, lambda: allan_deviation(y, 1 / 30.0)),
            best_of(repeat, lambda: numpy_oadev(y, factors)),
        )
    )
    mdev = allan_deviation(y, 1 / 30.0, kind="mdev")
    mdev_factors = [p.m for p in mdev.points]
    assert np.allclose([p.deviation for p in mdev.points], numpy_mdev(y, mdev_factors), rtol=1e-9)
    rows.append(
        (
            f"mdev, {len(mdev_factors)} octave taus, with CIs",
            best_of(repeat, lambda: allan_deviation(y, 1 / 30.0, kind="mdev")),
            best_of(repeat, lambda: numpy_mdev(y, mdev_factors)),
        )
    )
    stamps = (x * 86_400e9).astype(np.int64)
    day = (stamps // 86_400_000_000_000).astype(np.int64)
    day -= day[0]
    rows.append(
        (
            "period means, daily",
            best_of(repeat, lambda: period_means(stamps, y)),
            best_of(repeat, lambda: np.bincount(day, weights=y) / np.bincount(day)),
        )
    )
    print(f"{n:,} readings, best of {repeat}")
    print(f"{'benchmark':<40} {'etalon':>10} {'numpy':>10} {'ratio':>7}")
    for name, ours, baseline in rows:
        print(f"{name:<40} {ours * 1e3:>8.1f}ms {baseline * 1e3:>8.1f}ms {ours / baseline:>6.2f}x")


if __name__ == "__main__":
    main()
