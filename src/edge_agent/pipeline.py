"""From a driver's raw readings to what is spooled: scaling, uncertainty, sanity, tags."""

from __future__ import annotations

import math
from collections.abc import Sequence

from drivers.config import ChannelBase
from drivers.reading import Quality, Reading
from edge_agent.wire import TEXT_VALUE_MAX, first_forbidden, one_line


def finish(readings: Sequence[Reading], channels: Sequence[ChannelBase]) -> list[Reading]:
    """Apply each channel's scale, offset, uncertainty and tags.

    A non-finite number becomes a BAD reading (NaN never reaches the wire), and so does a string
    value the wire refuses (a control character, over 256 characters) or a unit read from the
    instrument that cannot be a tag; a reason is made one line (see :func:`one_line`). So what an
    instrument sends never gets a reading refused by the gateway. Integers stay integers
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
            # Scaling or a relative uncertainty can leave the float range (a hostile or broken
            # instrument sending 1e300): that reading is BAD, never an exception that would stop
            # the instrument's runner, nor an infinity the wire refuses.
            if not isfinite(reading.value) or (reading.u is not None and not isfinite(reading.u)):  # type: ignore[arg-type]
                reading = Reading.bad(
                    reading.instrument,
                    reading.channel,
                    reading.ts_ns,
                    channel.unit or reading.unit,
                    f"value {value!r} out of range after scaling or uncertainty",
                )
        reading.unit = channel.unit or reading.unit
        reading = _wire_safe(reading)
        if channel.tags:
            reading.tags = channel.tags
        out.append(reading)
    return out


def _wire_safe(reading: Reading) -> Reading:
    """The reading, or a BAD one saying why its text cannot go on the wire."""
    unit_problem = first_forbidden(reading.unit, plain=True) or (
        "is longer than 32 characters" if len(reading.unit) > 32 else ""
    )
    if unit_problem:
        return Reading.bad(
            reading.instrument,
            reading.channel,
            reading.ts_ns,
            "",
            f"unit from the instrument {unit_problem}: {one_line(reading.unit, 80)!r}",
        )
    value = reading.value
    if isinstance(value, str):
        problem = first_forbidden(value) or (
            f"is longer than {TEXT_VALUE_MAX} characters" if len(value) > TEXT_VALUE_MAX else ""
        )
        if problem:
            return Reading.bad(
                reading.instrument,
                reading.channel,
                reading.ts_ns,
                reading.unit,
                f"string value {problem}: {one_line(value, 200)!r}",
            )
    if reading.reason is not None:
        reading.reason = one_line(reading.reason)
    return reading


def count_bad(readings: Sequence[Reading]) -> int:
    """How many readings are BAD."""
    return sum(1 for r in readings if r.quality is Quality.BAD)
