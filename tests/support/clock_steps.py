"""Intervals between readings' timestamps, less the steps of the host's clock inside them.

A virtual machine paused for a minute, its monotonic clock stopped, resumes with its wall clock
stepped: :class:`core.clock.SystemClock` follows the step (readings carry UTC) and tells it
(``on_step``; the agent logs ``clock stepped at_ms= by_ms=``, see
:func:`tests.support.chain.clock_steps`). Readings either side of it are that much further apart
in UTC though the schedule, on the monotonic clock, missed nothing: a test that bounds the
interval between readings measures it less the forward steps reported inside it, with the same
bound. A backward step only brings readings closer.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def intervals(stamps: Sequence[int], steps: Sequence[tuple[int, int]] = ()) -> list[int]:
    """The intervals between consecutive ``stamps``, each less the forward ``steps`` (the wall
    time after the step, its size) whose middle lies inside it; stamps and steps in one unit."""
    out = []
    for a, b in itertools.pairwise(stamps):
        gap = b - a
        for at, by in steps:
            if by > 0 and a < at - by / 2 <= b:  # the middle of the jump lies in this gap
                gap -= by
        out.append(gap)
    return out


def missed_ticks(
    stamps: Sequence[int],
    interval: int,
    steps: Sequence[tuple[int, int]] = (),
    tolerance: int = 1,
) -> list[tuple[int, int, int]]:
    """Ticks of a channel's schedule with no reading: (the reading before, the one after, how
    many ticks between them had none), for each pair of consecutive ``stamps`` with any.

    The agent's ticks fall on multiples of the interval on the wall clock (anchored once per
    connection, then kept on the monotonic clock), and a reading is stamped after its tick — late
    by its wait for the CPU and its exchange, up to an interval before the tick counts as an
    overrun. So each reading belongs to the tick ``floor(t / interval)``, however late: a reading
    120 ms late on a 200 ms schedule followed by an on-time one is two ticks read, not a gap
    (a bound on the time between readings took it for one). Forward ``steps`` of the host's
    clock after the first reading are taken off the later stamps (see :func:`intervals`);
    ``tolerance`` (same unit) absorbs the rounding of the anchor between the two clocks."""
    out = []
    shift = 0
    previous_stamp: int | None = None
    previous_tick = 0
    for stamp in stamps:
        if previous_stamp is not None:
            for at, by in steps:
                if by > 0 and previous_stamp < at - by / 2 <= stamp:
                    shift += by
        tick = (stamp - shift + tolerance) // interval
        if previous_stamp is not None and tick - previous_tick > 1:
            out.append((previous_stamp, stamp, tick - previous_tick - 1))
        previous_stamp, previous_tick = stamp, tick
    return out


class StepLog:
    """An ``on_step`` for :class:`core.clock.SystemClock`: the steps it told, (the wall time
    after it, its size) in ns. One clock per run, shared by the drivers and the runners as the
    agent shares its own, so that each step is told once."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []

    def __call__(self, at_ns: int, by_ns: int) -> None:
        self.steps.append((at_ns, by_ns))
