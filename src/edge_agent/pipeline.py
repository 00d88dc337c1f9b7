"""From a driver's raw readings to what is spooled: scaling, uncertainty, sanity, tags."""

from __future__ import annotations

import math
from collections.abc import Sequence

from drivers.config import ChannelBase
from drivers.reading import Quality, Reading


def finish(readings: Sequence[Reading], channels: Sequence[ChannelBase]) -> list[Reading]:
    """Apply each channel's scale, offset, uncertainty and tags.

    A non-finite number becomes a BAD reading (NaN never reaches the wire). Integers stay integers
    when the channel does not scale them. A driver's own uncertainty is scaled with the value and
    combined in quadrature with the channel's configured one. A channel configured without a unit
    keeps the one the driver read from the instrument (OPC UA EngineeringUnits).
    """
    # The contract puts the readings in the channels' order: pair them by position, and fall
    # back to names only for a driver that does not.
    by_name: dict[str, ChannelBase] | None = None
    count = len(channels)
    isfinite = math.isfinite
    out: list[Reading] = []
    for position, reading in enumerate(readings):
        channel = channels[position] if position < count else None
        if channel is None or channel.name != reading.channel:
            if by_name is None:
                by_name = {c.name: c for c in channels}
            channel = by_name.get(reading.channel)
            if channel is None:
                continue  # a driver bug; the contract says one reading per requested channel
        value = reading.value
        if isinstance(value, float) and not isfinite(value):
            reading = Reading.bad(
                reading.instrument,
                reading.channel,
                reading.ts_ns,
                channel.unit or reading.unit,
                f"non-finite value {value!r}",
            )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            scale, offset = channel.scale, channel.offset
            if scale != 1.0 or offset != 0.0:
                reading.value = value * scale + offset
                if reading.u is not None:
                    reading.u = abs(scale) * reading.u
            if channel.uncertainty is not None:
                configured = channel.uncertainty.of(float(reading.value))  # type: ignore[arg-type]
                reading.u = configured if reading.u is None else math.hypot(reading.u, configured)
        if channel.unit:
            reading.unit = channel.unit
        if channel.tags:
            reading.tags = channel.tags
        out.append(reading)
    return out


def count_bad(readings: Sequence[Reading]) -> int:
    """How many readings are BAD."""
    return sum(1 for r in readings if r.quality is Quality.BAD)
