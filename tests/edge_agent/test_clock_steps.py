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
from tests.support.clock_steps import intervals

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
