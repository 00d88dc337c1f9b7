"""The alert lifecycle and the channel checks, as pure functions of readings and time."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from gateway.alerts.checks import (
    NS,
    BadQualityCheck,
    CompiledRule,
    LimitCheck,
    RateCheck,
    StaleCheck,
    Watch,
)
from gateway.alerts.config import AlertsConfig, ScheduleWindow
from gateway.alerts.lifecycle import (
    ACKED,
    ACTIVE,
    NORMAL,
    PENDING,
    RETURNED,
    AlertOperationError,
    Tracker,
)
from gateway.alerts.rule_config import LimitsRule, PathMatcher

T0 = 1_790_000_000 * NS


class Wall:
    """A gateway clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def compile_rule(data: dict[str, Any]) -> CompiledRule:
    config = AlertsConfig.model_validate({"rules": [data]})
    rule = config.rules[0]
    return CompiledRule(rule, PathMatcher(list(getattr(rule, "channels", []))))


def reading(ts: int, value: float | None, quality: str = "good") -> dict[str, Any]:
    return {
        "instrument": "room-a",
        "channel": "temperature",
        "ts": ts,
        "value": value,
        "unit": "°C",
        "quality": quality,
    }


def watch() -> Watch:
    return Watch(
        "lab-1", "bench-1", "room-a", "temperature", unit="°C", interval_s=1.0, declared=True
    )


def feed_series(check: Any, values: list[float], step_s: float = 10.0) -> None:
    for index, value in enumerate(values):
        ts = T0 + int(index * step_s * NS)
        check.feed(value, ts, reading(ts, value))


def drift_out_and_back(noise: float, seed: int = 7) -> list[float]:
    """23 °C, up to 24.6 °C and back, each reading with Gaussian noise (10 s apart)."""
    rng = random.Random(seed)
    ramp = [23.0 + 0.01 * i for i in range(160)]  # reaches 24.6 after 160 readings
    shape = ramp + [24.6] * 60 + list(reversed(ramp))
    return [v + rng.gauss(0, noise) for v in shape]


def actions(tracker: Tracker) -> list[str]:
    return [c.action for c in tracker.take()[0]]


def test_noise_around_the_limit_raises_once_and_clears_once_with_deadband_and_delays() -> None:
    tracker = Tracker(Wall())
    rule = compile_rule(
        {
            "id": "room",
            "kind": "limits",
            "channels": ["lab-1/bench-1/room-a/temperature"],
            "levels": [
                {
                    "severity": "alarm",
                    "high": 24.0,
                    "deadband": 0.15,
                    "on_delay_s": 60,
                    "off_delay_s": 120,
                }
            ],
        }
    )
    check = LimitCheck(rule, watch(), tracker)
    series = drift_out_and_back(noise=0.05, seed=3)
    feed_series(check, series)
    done = actions(tracker)
    assert done.count("alert active") == 1, done
    assert done.count("alert returned") == 1, done
    [alert] = tracker.alerts.values()
    assert alert.state == RETURNED
    # The same data without hysteresis and delays flaps: the test could fail.
    bare = Tracker(Wall())
    flappy = compile_rule(
        {
            "id": "room",
            "kind": "limits",
            "channels": ["lab-1/bench-1/room-a/temperature"],
            "levels": [{"severity": "alarm", "high": 24.0}],
        }
    )
    feed_series(LimitCheck(flappy, watch(), bare), series)
    assert actions(bare).count("alert active") > 2


def test_on_delay_runs_on_reading_time_and_a_short_excursion_stays_pending() -> None:
    tracker = Tracker(Wall())
    rule = compile_rule(
        {
            "id": "room",
            "kind": "limits",
            "channels": ["*/*/*/*"],
            "levels": [{"severity": "warning", "low": 22, "high": 24, "on_delay_s": 30}],
        }
    )
    check = LimitCheck(rule, watch(), tracker)
    feed_series(check, [23, 24.5, 24.5, 23, 23], step_s=10)  # 20 s out: shorter than 30 s
    assert actions(tracker) == ["alert pending", "alert normal"]
    later = T0 + 1000 * NS
    for i in range(5):
        ts = later + i * 10 * NS
        check.feed(21.0, ts, reading(ts, 21.0))
    assert actions(tracker) == ["alert pending", "alert active"]
    [alert] = tracker.alerts.values()
    assert alert.active_since_ns == later + 30 * NS  # the first reading ≥ 30 s after the first low
    assert alert.limit == 22 and alert.detail == {"side": "low"}
    assert alert.state == ACTIVE


def test_acknowledge_returned_and_active_alerts() -> None:
    wall = Wall()
    tracker = Tracker(wall)
    rule = compile_rule(
        {
            "id": "r",
            "kind": "limits",
            "channels": ["*/*/*/*"],
            "levels": [{"severity": "alarm", "high": 24}],
        }
    )
    check = LimitCheck(rule, watch(), tracker)
    feed_series(check, [25, 23])
    [alert] = tracker.alerts.values()
    assert alert.state == RETURNED  # cleared before anyone acknowledged: still listed
    tracker.acknowledge(alert, "nguyen", "seen, HVAC restarted")
    with pytest.raises(AlertOperationError, match="nothing to acknowledge"):
        tracker.acknowledge(alert, "nguyen", "again")
    assert alert.state == NORMAL and alert.acked_by == "nguyen"
    ts = T0 + 100 * NS
    check.feed(25.0, ts, reading(ts, 25.0))
    assert alert.state == ACTIVE and alert.occurrences == 2 and alert.acked_by is None
    tracker.acknowledge(alert, "tran", "on it")
    assert alert.state == ACKED
    check.feed(23.0, ts + NS, reading(ts + NS, 23.0))
    assert alert.state == NORMAL
    changes = tracker.take()[0]
    ack = [c for c in changes if c.action == "alert acknowledged"]
    assert [(c.actor, c.comment, c.previous) for c in ack] == [
        ("nguyen", "seen, HVAC restarted", RETURNED),
        ("tran", "on it", ACTIVE),
    ]
    assert changes[-1].cause is not None and changes[-1].cause["value"] == 23.0


def test_levels_are_separate_alerts_and_the_fast_path_skips_values_inside() -> None:
    tracker = Tracker(Wall())
    rule = compile_rule(
        {
            "id": "room",
            "kind": "limits",
            "preset": "calibration-room-temperature",
            "channels": ["*/*/*/*"],
        }
    )
    check = LimitCheck(rule, watch(), tracker)
    assert check.quiet and (check.lo, check.hi) == (22.5, 23.5)
    feed_series(check, [23.0] * 10 + [23.8] * 40, step_s=10)
    by_level = {a.level: a.state for a in tracker.alerts.values()}
    assert by_level == {"warning": ACTIVE}  # 23.8 °C: above the warning, under the alarm
    assert not check.quiet


def test_rate_of_change_over_a_window() -> None:
    tracker = Tracker(Wall())
    rule = compile_rule(
        {"id": "ramp", "kind": "rate", "channels": ["*/*/*/*"], "max_change": 0.5, "window_s": 900}
    )
    slow = RateCheck(rule, watch(), tracker)
    feed_series(slow, [23 + 0.3 * i / 90 for i in range(200)], step_s=10)  # 0.3 K per 15 min
    assert tracker.alerts == {}
    fast = RateCheck(rule, watch(), tracker)
    feed_series(fast, [23 + 0.7 * i / 90 for i in range(200)], step_s=10)  # 0.7 K per 15 min
    [alert] = tracker.alerts.values()
    assert alert.state == ACTIVE
    assert 0.5 < alert.value <= 0.71 and len(fast.samples) <= 34


def test_bad_quality_in_a_row_and_stale_data() -> None:
    wall = Wall()
    tracker = Tracker(wall)
    bad = BadQualityCheck(
        compile_rule({"id": "bad", "kind": "bad_quality", "count": 3, "channels": ["*/*/*/*"]}),
        watch(),
        tracker,
    )
    for run in (1, 2, 0, 1, 2):
        bad.feed(run, T0 + run, reading(T0 + run, None, "bad"))
    assert tracker.alerts == {}
    bad.feed(3, T0 + 10, {**reading(T0 + 10, None, "bad"), "reason": "timeout"})
    [alert] = tracker.alerts.values()
    assert alert.state == ACTIVE and alert.detail["reason"] == "timeout"

    tracker = Tracker(wall)
    stale = StaleCheck(
        compile_rule(
            {
                "id": "stale",
                "kind": "stale",
                "intervals": 3,
                "channels": ["*/*/*/*"],
                "on_delay_s": 5,
            }
        ),
        watch(),
        tracker,
    )
    stale.check(2.9, wall.now, excused=False)
    assert tracker.alerts == {}
    stale.check(3.5, wall.now, excused=False)
    [alert] = tracker.alerts.values()
    assert alert.state == PENDING and alert in tracker.timed
    wall.now += 6 * NS
    tracker.advance(alert, wall.now)
    assert alert.state == ACTIVE
    stale.check(9.0, wall.now, excused=True)  # its agent went offline: that alert says it all
    assert alert.state == RETURNED


def test_out_of_schedule_is_marked_not_raised() -> None:
    tracker = Tracker(Wall())
    rule = compile_rule(
        {
            "id": "r",
            "kind": "limits",
            "channels": ["*/*/*/*"],
            "levels": [{"severity": "alarm", "high": 24}],
        }
    )
    rule.in_schedule = False
    check = LimitCheck(rule, watch(), tracker)
    feed_series(check, [25, 25.1, 25.2])
    [alert] = tracker.alerts.values()
    assert alert.state == NORMAL and alert.suppressed == "schedule"
    assert actions(tracker) == ["alert suppressed"]  # once, in the audit log
    rule.in_schedule = True
    ts = T0 + 100 * NS
    check.feed(25.0, ts, reading(ts, 25.0))
    assert alert.state == ACTIVE and alert.suppressed is None


def test_schedule_windows() -> None:
    night = ScheduleWindow(days=["mon", "tue"], start="22:00", end="06:00")
    monday = dt.datetime(2026, 11, 23, 23, 0)
    assert monday.weekday() == 0
    assert night.contains(monday)
    assert night.contains(monday + dt.timedelta(hours=2))  # Tuesday 01:00, from Monday's window
    assert not night.contains(monday - dt.timedelta(hours=12))
    assert not night.contains(dt.datetime(2026, 11, 26, 1, 0))  # Thursday 01:00
    office = ScheduleWindow(days=["mon", "tue", "wed", "thu", "fri"], start="07:30", end="18:00")
    assert office.contains(monday.replace(hour=7, minute=30))
    assert not office.contains(monday.replace(hour=18, minute=0))


def test_path_patterns_match_segment_by_segment() -> None:
    matcher = PathMatcher(["lab-1/*/room-?/temperature", "lab-2/bench-1/dmm/ch-1"])
    assert matcher.matches("lab-1/bench-9/room-a/temperature")
    assert not matcher.matches("lab-1/bench-9/x/room-a/temperature")
    assert not matcher.matches("lab-1/bench-9/room-ab/temperature")
    assert matcher.matches("lab-2/bench-1/dmm/ch-1")
    assert not matcher.matches("lab-2/bench-1/dmm/ch-2")


def test_rule_models_refuse_mistakes() -> None:
    with pytest.raises(ValueError, match=r"low .* must be below high"):
        LimitsRule.model_validate(
            {
                "id": "r",
                "kind": "limits",
                "channels": ["a/b/c/d"],
                "levels": [{"severity": "alarm", "low": 5, "high": 1}],
            }
        )
    with pytest.raises(ValueError, match="needs levels or a preset"):
        LimitsRule.model_validate({"id": "r", "kind": "limits", "channels": ["a/b/c/d"]})
    # A preset that is no name (a list in the YAML) is a reason, not a TypeError.
    with pytest.raises(ValueError, match="preset"):
        LimitsRule.model_validate(
            {"id": "r", "kind": "limits", "channels": ["a/b/c/d"], "preset": ["x"]}
        )
    with pytest.raises(ValueError, match="should match pattern"):
        LimitsRule.model_validate(
            {
                "id": "r",
                "kind": "limits",
                "channels": ["a/b/c"],
                "preset": "calibration-room-humidity",
            }
        )
    with pytest.raises(ValueError, match="unknown policy 'p'"):
        AlertsConfig.model_validate(
            {"rules": [{"id": "r", "kind": "agent_offline", "policy": "p"}]}
        )
    with pytest.raises(ValueError, match="has an email but smtp is not set"):
        AlertsConfig.model_validate({"recipients": [{"id": "a", "name": "A", "email": "a@lab.vn"}]})
