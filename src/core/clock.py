"""Clocks that stamp readings and drive simulated instruments.

The agent stamps readings from a :class:`Clock`; simulators evaluate their physics on the same
clock, so a test can run a simulated year in a minute with :class:`AcceleratedClock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol

from pydantic import AwareDatetime, Field

from core.models import FrozenModel


class Clock(Protocol):
    """Wall-clock time in UTC nanoseconds; ``describe`` reports what the clock is."""

    def now_ns(self) -> int:
        """Current time, UTC, in nanoseconds since the Unix epoch."""
        ...

    def describe(self) -> dict[str, object]:
        """What the clock is, for the agent's status message."""
        ...


StepCallback = Callable[[int, int], None]
"""Told of a step of the system clock: (the wall time after it, its size), both in ns."""


class SystemClock:
    """The host's clock, read so that a step of the system clock never makes time run backwards
    inside one run: wall time is anchored once and advanced with the monotonic clock, and
    re-anchored when the two part by more than ``resync_ns`` (an NTP step, or a virtual machine
    resumed after a pause its monotonic clock did not count). Each step is counted in ``steps``
    and told to ``on_step``: readings on either side of it are that much further apart (or
    closer) in UTC than on the monotonic clock that schedules them.

    ``wall`` and ``monotonic`` are the clocks read (the host's; a test passes its own)."""

    def __init__(
        self,
        resync_ns: int = 50_000_000,
        on_step: StepCallback | None = None,
        wall: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._resync_ns = resync_ns
        self._wall = wall
        self._monotonic = monotonic
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self.steps = 0
        self.on_step = on_step

    def now_ns(self) -> int:
        """Current UTC time in ns."""
        mono = self._monotonic()
        derived = self._anchor_wall + (mono - self._anchor_mono)
        wall = self._wall()
        if abs(wall - derived) > self._resync_ns:
            self._anchor_wall, self._anchor_mono = wall, mono
            self.steps += 1
            if self.on_step is not None:
                self.on_step(wall, wall - derived)
            return wall
        return derived

    def describe(self) -> dict[str, object]:
        """Source and synchronisation state (from the kernel, where it says)."""
        return {
            "source": "system",
            "synchronized": kernel_clock_synchronized(),
            "steps": self.steps,
        }


class AcceleratedClock:
    """Simulated time: starts at ``start_ns`` and runs ``rate`` times faster than real time.

    Used for simulated long histories (a year of drift in minutes) and by the tests.
    """

    def __init__(self, start_ns: int, rate: float = 1.0) -> None:
        self.start_ns = start_ns
        self.rate = rate
        self._mono0 = time.monotonic_ns()

    def now_ns(self) -> int:
        """Simulated UTC time in ns."""
        return self.start_ns + int((time.monotonic_ns() - self._mono0) * self.rate)

    def describe(self) -> dict[str, object]:
        """Marks the time as simulated, so nobody mistakes it for a real clock."""
        return {"source": "accelerated", "synchronized": False, "rate": self.rate}


class ManualClock:
    """A clock that moves only when told to; for pure tests of the physical models."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self.t_ns = start_ns

    def now_ns(self) -> int:
        """The time last set."""
        return self.t_ns

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.t_ns += int(seconds * 1e9)

    def describe(self) -> dict[str, object]:
        """Marks the time as manual."""
        return {"source": "manual", "synchronized": False}


def kernel_clock_synchronized() -> bool | None:
    """Whether the kernel says the clock is NTP-synchronised (``adjtimex``), None if unknown."""
    try:
        import ctypes
        import ctypes.util

        class _Timex(ctypes.Structure):
            _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_char * 204)]

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        state = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    time_error = 5  # TIME_ERROR: the clock is not synchronised
    return bool(state >= 0 and state != time_error)


class SystemClockConfig(FrozenModel):
    """Stamp readings with the host clock (the default)."""

    kind: Literal["system"] = "system"


class AcceleratedClockConfig(FrozenModel):
    """Simulated time for demos and long simulated histories: never for real instruments."""

    kind: Literal["accelerated"]
    start: AwareDatetime = datetime(2026, 1, 1, tzinfo=UTC)
    rate: float = Field(1.0, gt=0, le=1e9)


ClockConfig = Annotated[SystemClockConfig | AcceleratedClockConfig, Field(discriminator="kind")]


def build_clock(config: SystemClockConfig | AcceleratedClockConfig) -> Clock:
    """The clock a config asks for."""
    if isinstance(config, AcceleratedClockConfig):
        return AcceleratedClock(int(config.start.timestamp() * 1e9), config.rate)
    return SystemClock()
