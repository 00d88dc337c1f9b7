"""From a driver's raw readings to what is spooled: scaling, uncertainty, sanity, tags.

Two ways through, with the same result to the byte: :func:`finish` on a driver's
:class:`Reading` objects (then :func:`edge_agent.wire.encode_readings`), and :class:`RowEncoder`
on a driver's compact rows (:class:`ReadsRows`, e.g. Modbus), which writes the spool entry of a
poll straight from the values, one JSON template per channel prepared once, with no object per
reading; whatever its templates do not cover (a BAD reading, a string, a non-finite number, a
channel with an uncertainty or a unit the wire refuses) goes the first way. A poll of Reading
objects that are all plain GOOD readings takes the second way too
(:meth:`RowEncoder.encode_readings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import orjson

from drivers.config import ChannelBase
from drivers.reading import Quality, Reading, Value
from edge_agent.wire import TEXT_VALUE_MAX, encode_readings, first_forbidden, one_line

Rows = tuple[list[int], list[Value], list[str | None]]
"""A read in compact form, one item per requested channel in order: timestamp (-1: not read),
value, and None for a GOOD reading or the reason of a BAD one."""


@runtime_checkable
class ReadsRows(Protocol):
    """A driver that can return a read as :data:`Rows` (same readings as its ``read``)."""

    async def read_rows(self, channels: Sequence[Any]) -> Rows:
        """The due channels' readings as rows; raises like ``read``."""
        ...


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
        problem = None
        if isinstance(value, float) and not isfinite(value):
            problem = f"non-finite value {value!r}"
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
                problem = f"value {value!r} out of range after scaling or uncertainty"
        if problem is not None:
            reading = Reading.bad(
                reading.instrument,
                reading.channel,
                reading.ts_ns,
                channel.unit or reading.unit,
                problem,
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


_NUMBER = (float, int)
_NUMBERS = frozenset(_NUMBER)
_VALUE = b',"value":'


class RowEncoder:
    """A due set's rows to one spool entry: see the module doc. One per (instrument, channels)."""

    def __init__(self, instrument: str, channels: Sequence[ChannelBase]) -> None:
        self.instrument = instrument
        self.channels = list(channels)
        self._templates: list[tuple[bytes, bytes, float, float] | None] = [
            self._template(c) for c in self.channels
        ]
        self._plain = all(t is not None and t[2] == 1.0 and t[3] == 0.0 for t in self._templates)
        """Every channel templated, none scaled: the whole poll may go in one pass."""
        # Per channel, a GOOD reading as one bytes format of (timestamp, value): one C call per
        # reading instead of four concatenations ('%' in a unit or tag doubled).
        self._formats = [
            t[0].replace(b"%", b"%%") + b"%b" + _VALUE + b"%b" + t[1].replace(b"%", b"%%")
            if t
            else b""
            for t in self._templates
        ]
        self._whole = b",".join(self._formats)
        """A whole poll of GOOD readings as one bytes format (used when every channel is
        templated and the readings share one timestamp)."""

    def _template(self, channel: ChannelBase) -> tuple[bytes, bytes, float, float] | None:
        """(what comes before the timestamp, what follows the value, scale, offset) of a GOOD
        reading of the channel, as encode_readings writes it; None when finish() must see it."""
        unit = channel.unit
        if channel.uncertainty is not None or first_forbidden(unit, plain=True) or len(unit) > 32:
            return None
        dumps = orjson.dumps
        prefix = (
            b'{"instrument":' + dumps(self.instrument) + b',"channel":' + dumps(channel.name)
        ) + b',"ts":'
        suffix = b',"unit":' + dumps(unit) + b',"quality":"good"'
        if channel.tags:
            suffix += b',"tags":' + dumps(channel.tags)
        return prefix, suffix + b"}", channel.scale, channel.offset

    def encode(self, rows: Rows) -> tuple[bytes, int, int]:
        """(the entry, how many readings, how many BAD); the entry is what
        ``encode_readings(finish(readings, channels))`` makes of the same readings."""
        stamps, values, reasons = rows
        count = len(stamps)
        if (
            self._plain
            and count == len(self.channels)
            and reasons.count(None) == count
            and min(stamps, default=0) >= 0
            and _NUMBERS.issuperset(map(type, values))
        ):
            # The usual poll: every value a plain number of a templated channel. One orjson
            # call writes them all (a non-finite one comes out as null: the slow way then).
            numbers = orjson.dumps(values)
            if b"null" not in numbers:
                texts = numbers[1:-1].split(b",") if count else []
                return self._join(stamps, texts), count, 0
        return self._encode_each(rows)

    def encode_readings(self, readings: Sequence[Reading]) -> tuple[bytes, int, int] | None:
        """A driver's :class:`Reading` objects the way of :meth:`encode` (the entry
        ``encode_readings(finish(readings, channels))`` makes), when each is a GOOD reading of
        its channel in order, without uncertainty, reason or tags of its own, and the channel's
        unit stands for the reading's; None otherwise (the caller goes by finish()). Drivers
        that return Reading objects (simulated, SCPI, OPC UA) then skip finish()'s per-field
        checks in the usual poll."""
        channels = self.channels
        if len(readings) != len(channels):
            return None
        good = Quality.GOOD
        instrument = self.instrument
        stamps: list[int] = []
        values: list[Value] = []
        for channel, reading in zip(channels, readings, strict=True):
            if (
                reading.quality is not good
                or reading.u is not None
                or reading.reason is not None
                or reading.tags
                or reading.ts_ns < 0
                or reading.channel != channel.name
                or reading.instrument != instrument
                or (not channel.unit and reading.unit)  # finish() keeps the reading's unit
            ):
                return None
            stamps.append(reading.ts_ns)
            values.append(reading.value)
        return self.encode((stamps, values, [None] * len(stamps)))

    def _join(self, stamps: list[int], texts: list[bytes]) -> bytes:
        count = len(texts)
        if count and stamps.count(stamps[0]) == count:
            # One timestamp for the whole poll (one request): the poll's format filled in one
            # C call, the stamp and each value interleaved.
            stamp = b"%d" % stamps[0]
            args = [stamp] * (2 * count)
            args[1::2] = texts
            return self._whole % tuple(args)
        last = -1
        stamp = b""
        parts = []
        for reading, ts, text in zip(self._formats, stamps, texts, strict=True):
            if ts != last:
                last, stamp = ts, b"%d" % ts
            parts.append(reading % (stamp, text))
        return b",".join(parts)

    def _encode_each(self, rows: Rows) -> tuple[bytes, int, int]:
        """Reading by reading: templated where possible, through finish() where not."""
        isfinite = math.isfinite
        dumps = orjson.dumps
        parts: list[bytes] = []
        count = bad = 0
        for channel, template, ts, value, reason in zip(
            self.channels, self._templates, *rows, strict=True
        ):
            if ts < 0:
                continue  # not read: left out, as finish() leaves out a missing reading
            count += 1
            if (
                reason is None
                and template is not None
                and type(value) in _NUMBER
                and isfinite(value)  # type: ignore[arg-type]
            ):
                prefix, suffix, scale, offset = template
                scaled = value * scale + offset if scale != 1.0 or offset != 0.0 else value  # type: ignore[operator]
                text = dumps(scaled)
                if text != b"null":  # scaled out of range: encode_readings refuses it
                    parts.append(prefix + b"%d" % ts + _VALUE + text + suffix)
                    continue
            name = self.instrument
            reading = (
                Reading(name, channel.name, ts, value, channel.unit)
                if reason is None
                else Reading.bad(name, channel.name, ts, channel.unit, reason)
            )
            (finished,) = finish([reading], [channel])
            bad += finished.quality is Quality.BAD
            parts.append(encode_readings([finished]))
        return b",".join(parts), count, bad
