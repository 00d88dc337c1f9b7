"""Period means with their Type A standard uncertainty (JCGM 100, 4.2: s/√n, n - 1 dof)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from gateway.analytics import AnalyticsError, period_means

NS = 1_000_000_000
DAY_NS = 86_400 * NS


def test_daily_means_on_utc_midnight() -> None:
    day0 = datetime(2024, 3, 1, tzinfo=UTC)
    stamps = [day0 + timedelta(hours=h) for h in (1, 5, 23)]
    stamps += [day0 + timedelta(days=1, hours=h) for h in (0, 12)]
    stamps += [day0 + timedelta(days=3, hours=6)]
    values = [1.0, 2.0, 3.0, 10.0, 12.0, 7.0]
    result = period_means(stamps, values)
    assert [p.n for p in result.periods] == [3, 2, 1]  # day 2 had no reading: absent
    first, second, third = result.periods
    assert first.start_ns == int(day0.timestamp()) * NS
    assert first.end_ns - first.start_ns == DAY_NS
    assert first.mean == pytest.approx(2.0)
    assert first.sd == pytest.approx(1.0)
    assert first.u_mean == pytest.approx(1.0 / math.sqrt(3))
    assert first.dof == 2
    assert second.mean == pytest.approx(11.0)
    assert second.u_mean == pytest.approx(math.sqrt(2.0) / math.sqrt(2))
    assert third.sd is None
    assert third.u_mean is None
    assert third.dof == 0
    assert third.start_ns == first.start_ns + 3 * DAY_NS


def test_unsorted_nanosecond_timestamps_and_min_count() -> None:
    base = 1_699_920_000 * NS  # 2023-11-14T00:00:00Z
    stamps = np.array([base + 3600 * NS, base, base + 7200 * NS, base + 2 * 3600 * 24 * NS])
    values = np.array([2.0, 1.0, 3.0, 9.0])
    result = period_means(stamps, values, period_s=86_400, min_count=2)
    assert len(result.periods) == 1
    (day,) = result.periods
    assert day.mean == pytest.approx(2.0)
    assert day.first_ns == base
    assert day.last_ns == base + 7200 * NS


def test_chosen_period_and_origin() -> None:
    origin = datetime(2024, 1, 1, 6, tzinfo=UTC)  # periods start at 06:00
    stamps = [origin - timedelta(minutes=1), origin, origin + timedelta(hours=5, minutes=59)]
    result = period_means(stamps, [1.0, 2.0, 4.0], period_s=6 * 3600, origin=origin)
    assert [p.n for p in result.periods] == [1, 2]
    assert result.periods[1].start_ns == int(origin.timestamp()) * NS
    # Aware datetimes in another zone are the same instants.
    plus7 = timezone(timedelta(hours=7))
    shifted = [s.astimezone(plus7) for s in stamps]
    assert period_means(shifted, [1.0, 2.0, 4.0], period_s=6 * 3600, origin=origin) == result


def test_precision_with_a_large_offset() -> None:
    # A 10 V Zener read to 1 nV: the offset must not eat the scatter.
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 50e-9, 10_000)
    stamps = np.arange(10_000, dtype=np.int64) * 8 * NS  # 8 s apart: under one day
    (day,) = period_means(stamps, 10.0 + noise).periods
    assert day.sd == pytest.approx(float(np.std(noise, ddof=1)), rel=1e-6)
    assert day.mean - 10.0 == pytest.approx(float(np.mean(noise)), abs=1e-13)


def test_bad_input() -> None:
    with pytest.raises(AnalyticsError, match="2 timestamps but 1 values"):
        period_means([0, 1], [1.0])
    with pytest.raises(AnalyticsError, match="period"):
        period_means([0], [1.0], period_s=0.0)
    assert period_means([], []).periods == []
