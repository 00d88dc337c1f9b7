"""The settling criterion on known series: a first-order approach settles once its slope and the
noise about the fitted line are within the limits over a full window; a wandering output and a
series broken by bad readings do not."""

from __future__ import annotations

import math
import random

import pytest

from calibration.settling import Criterion, SettlingMonitor, fit_window

SECOND = 1_000_000_000


def test_the_window_fit_finds_slope_and_noise() -> None:
    rng = random.Random(3)
    times = [i * SECOND // 10 for i in range(200)]
    values = [2.5e-6 * t / SECOND + 10.0 + rng.gauss(0.0, 1e-6) for t in times]
    fit = fit_window(times, values)
    assert math.isclose(fit.slope_per_s, 2.5e-6, rel_tol=0.1)
    assert math.isclose(fit.std, 1e-6, rel_tol=0.15)
    assert fit.n == 200 and math.isclose(fit.span_s, 19.9)
    with pytest.raises(ValueError, match="at least three"):
        fit_window(times[:2], values[:2])


def test_a_first_order_approach_settles_when_its_slope_is_within_the_limit() -> None:
    criterion = Criterion(window_s=1.0, min_readings=5, max_slope_per_s=2e-6, max_std=2e-6)
    monitor = SettlingMonitor(criterion)
    tau = 0.1
    settled_at = None
    for i in range(400):
        t = i * SECOND // 20
        monitor.add(t, 10.0 * (1 - math.exp(-t / SECOND / tau)))
        if monitor.settled():
            settled_at = t / SECOND
            break
    # |slope| of the approach 10/τ·e^(−t/τ) falls below 2 µV/s near t = 1.6 s: the window
    # (1 s) must lie wholly past the steep part
    assert settled_at is not None and 1.5 < settled_at < 3.0
    assert monitor.last is not None and monitor.last.slope_per_s <= 2e-6


def test_a_wandering_output_never_settles_and_a_bad_reading_restarts_the_window() -> None:
    criterion = Criterion(window_s=1.0, min_readings=5, max_slope_per_s=2e-6, max_std=2e-6)
    monitor = SettlingMonitor(criterion)
    for i in range(600):
        t = i * SECOND // 20
        monitor.add(t, 10.0 + 3e-3 * math.sin(2 * math.pi * t / SECOND / 3))
        assert not monitor.settled()
    steady = SettlingMonitor(criterion)
    for i in range(30):
        steady.add(i * SECOND // 20, 10.0)
    assert steady.settled()
    steady.reset()
    steady.add(31 * SECOND // 20, 10.0)
    assert not steady.settled() and not steady.full()
