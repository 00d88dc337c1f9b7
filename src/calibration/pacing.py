"""How the runner waits (real time, or a manual clock moved forward in tests) and where it
reports what it does (the terminal, a test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from core.clock import Clock, ManualClock


class Pacer(Protocol):
    """How the runner waits: real time, or a manual clock moved forward (tests)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class RealPacer:
    """Waits in real time."""

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


class ManualPacer:
    """Moves a manual clock forward instead of waiting (the simulated bench follows it)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    async def sleep(self, seconds: float) -> None:
        """Advance the clock, then let the loop turn."""
        self.clock.advance(seconds)
        await asyncio.sleep(0)


def pacer_for(clock: Clock) -> Pacer:
    """The pacer that fits a clock."""
    return ManualPacer(clock) if isinstance(clock, ManualClock) else RealPacer()


class Progress(Protocol):
    """Where the runner reports what it does (the terminal, a test)."""

    def __call__(self, key: str, **values: object) -> None:
        """One message key of :mod:`calibration.messages` and its values."""
        ...


def silent(key: str, **values: object) -> None:
    """A progress that says nothing."""


ProgressFactory = Callable[[str], Progress]
