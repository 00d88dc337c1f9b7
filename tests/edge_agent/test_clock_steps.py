"""A step of the host's clock (NTP, or a virtual machine resumed after a pause its monotonic clock
did not count) is followed, counted and told: the agent logs it and counts it in its metrics, so
a gap it makes between two readings' timestamps is explained, not taken for a lost tick."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.clock import SystemClock
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from tests.support.clock_steps import intervals, missed_ticks

T0 = 1_796_476_377_000_000_000


class HostClocks:
    """A wall clock and a monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.wall_ns = T0
        self.mono_ns = 5_000_000_000

    def advance(self, seconds: float) -> None:
        self.wall_ns += int(seconds * 1e9)
        self.mono_ns += int(seconds * 1e9)

    def step_wall(self, seconds: float) -> None:
        self.wall_ns += int(seconds * 1e9)


def system_clock(host: HostClocks) -> SystemClock:
    return SystemClock(wall=lambda: host.wall_ns, monotonic=lambda: host.mono_ns)


def test_a_step_is_followed_counted_and_told() -> None:
    host = HostClocks()
    clock = system_clock(host)
    told: list[tuple[int, int]] = []
    clock.on_step = lambda at, by: told.append((at, by))
    host.advance(1.0)
    assert clock.now_ns() == T0 + 1_000_000_000
    host.step_wall(0.03)  # drift within the resync bound: smoothed over, not a step
    assert clock.now_ns() == T0 + 1_000_000_000
    host.step_wall(87.0)  # the machine was paused; its monotonic clock did not count it
    assert clock.now_ns() == host.wall_ns
    assert clock.steps == 1
    assert told == [(host.wall_ns, 87_030_000_000)]
    host.advance(0.2)
    assert clock.now_ns() == host.wall_ns  # on the new anchor, no second step
    host.step_wall(-2.0)
    clock.now_ns()
    assert clock.steps == 2
    assert told[-1] == (host.wall_ns, -2_000_000_000)
    assert clock.describe()["steps"] == 2


def test_the_agent_logs_and_counts_each_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = AgentConfig.model_validate(
        {
            "site": "lab-1",
            "id": "bench-1",
            "mqtt": {"port": 1883},
            "spool": {"path": str(tmp_path / "spool.db")},
            "instruments": [
                {
                    "name": "zener",
                    "protocol": "sim",
                    "model": {"kind": "zener"},
                    "channels": [{"name": "v", "quantity": "voltage", "unit": "V"}],
                }
            ],
        }
    )
    host = HostClocks()
    agent = Agent(config, clock=system_clock(host))
    host.step_wall(87.682)
    with caplog.at_level(logging.WARNING, logger="etalon.agent"):
        agent.clock.now_ns()
        agent.clock.now_ns()
    assert agent.metrics.clock_steps == 1
    assert agent.metrics.snapshot()["clock_steps"] == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "clock stepped"]
    assert record.levelno == logging.WARNING
    assert record.by_ms == 87_682  # type: ignore[attr-defined]
    assert record.at_ms == host.wall_ns // 1_000_000  # type: ignore[attr-defined]


def test_the_tests_measure_gaps_less_the_forward_steps_inside_them() -> None:
    """tests.support.clock_steps.intervals, which every gap bound on readings' timestamps uses:
    a forward step is taken off the gap its middle lies in, and only that one; a backward step
    changes nothing."""
    stamps = [0, 200, 88_082, 88_282]  # ms, every 200 ms; the clock stepped 87.682 s at 88_000
    assert intervals(stamps) == [200, 87_882, 200]
    assert intervals(stamps, [(88_000, 87_682)]) == [200, 200, 200]
    assert intervals(stamps, [(88_000, -500)]) == [200, 87_882, 200]


def test_a_late_reading_is_its_own_tick_and_a_missing_one_is_counted() -> None:
    """tests.support.clock_steps.missed_ticks, which the chain tests count lost ticks with: a
    reading late by nearly an interval (seen in a fresh-clone run: 196 ms on a 200 ms schedule,
    the next one on time) is not a missed tick; a tick with no reading is, also across a step of
    the host's clock and with the late reading beside it."""
    on_time = [1_000_000 + 200 * k + 2 for k in range(10)]
    assert missed_ticks(on_time, 200) == []
    late = [*on_time[:4], 1_000_000 + 200 * 4 + 196, *on_time[5:]]
    assert missed_ticks(late, 200) == []
    one_missing = [*on_time[:4], *on_time[5:]]
    assert missed_ticks(one_missing, 200) == [(on_time[3], on_time[5], 1)]
    both = [*late[:5], *late[7:]]  # ticks 5 and 6 unread, tick 4 read late
    assert missed_ticks(both, 200) == [(late[4], late[7], 2)]
    # A forward step of 87,682 ms (not a multiple of the interval) between ticks 4 and 5.
    stepped = [*on_time[:5], *(t + 87_682 for t in on_time[5:])]
    assert missed_ticks(stepped, 200) == [(on_time[4], stepped[5], 438)]  # told nothing
    assert missed_ticks(stepped, 200, [(stepped[5] - 10, 87_682)]) == []
    assert missed_ticks([*stepped[:5], *stepped[6:]], 200, [(stepped[5] - 10, 87_682)]) == [
        (on_time[4], stepped[6], 1)
    ]
