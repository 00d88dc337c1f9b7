"""What a driver returns: one reading of one channel."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Quality(StrEnum):
    """OPC-style quality of a reading: trust it, doubt it, or do not use it."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


Value = float | int | bool | str | None


@dataclass(slots=True)
class Reading:
    """One reading: channel, UTC timestamp in ns (mid-point of the request), value, unit,
    quality with its reason, and the standard uncertainty where known."""

    instrument: str
    channel: str
    ts_ns: int
    value: Value
    unit: str
    quality: Quality = Quality.GOOD
    reason: str | None = None
    u: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def bad(cls, instrument: str, channel: str, ts_ns: int, unit: str, reason: str) -> Reading:
        """A reading that has no usable value, with the reason."""
        return cls(instrument, channel, ts_ns, None, unit, Quality.BAD, reason)

    def is_finite_number(self) -> bool:
        """True for int/float values that are finite (bools are not numbers here)."""
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return math.isfinite(v)


def midpoint_ns(start_ns: int, end_ns: int) -> int:
    """The middle of a request: DESIGN invariant 5 stamps readings there."""
    return start_ns + (end_ns - start_ns) // 2
