"""A tick's due channels, compiled once: the distinct queries to send, in order, and which reply
each channel reads; and the reading a reply makes.

Why compiled: the agent's scheduler hands the driver the same list of channels tick after tick,
and grouping them by measurement, looking up profiles and units on every tick was a good part of
the driver's own cost per query against a fast instrument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ProtocolError
from drivers.reading import Quality, Reading
from drivers.visa.config import VisaChannel
from drivers.visa.profiles import NUMBER_WITH_UNIT, Measurement, Profile, parse_reply

MAX_REASON = 900
"""The wire format allows 1024 characters of reason."""

_GOOD = Quality.GOOD
"""(A module's global is found faster than an enum's member.)"""

_CACHED_SETS = 64
"""Due sets remembered per session (several intervals coinciding make a new list per tick)."""


def capped(text: str) -> str:
    """A reason cut to what the wire format carries."""
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One distinct query of a due set."""

    name: str
    """The measurement's name (setup commands are re-sent when it changes)."""
    query: str
    """The measurement's query."""
    setup: tuple[str, ...]
    """The measurement's setup commands."""


class PlannedChannel:
    """One channel of a due set, the position of the query whose reply it reads, and what the
    common reply needs to become a GOOD reading, looked up once (see :func:`make_reading`)."""

    __slots__ = ("channel", "fast", "limit", "measurement", "name", "query", "reply_unit", "unit")

    def __init__(self, channel: VisaChannel, query: int, measurement: Measurement) -> None:
        self.channel = channel
        self.query = query
        self.measurement = measurement
        self.name = channel.name
        self.unit = measurement.unit
        reply_unit = measurement.reply_unit
        self.reply_unit = (
            reply_unit.upper() if reply_unit and measurement.parse == "number_with_unit" else None
        )
        """The unit token a number_with_unit reply must carry, upper-cased; else None."""
        self.fast = measurement.parse == "number" or self.reply_unit is not None
        """Whether :func:`make_reading` may try the short way for this reply's kind."""
        overload = measurement.overload_at
        self.limit = math.inf if overload is None else 0.99 * overload
        """Magnitudes from here on are overloads (or not finite): left to ``parse_reply``."""


class DueSet:
    """The due channels' distinct queries (each sent once per tick, in the channels' order)
    and, per channel in the order given, which reply it reads."""

    __slots__ = ("channels", "queries")

    def __init__(self, channels: Sequence[VisaChannel], profile: Profile) -> None:
        positions: dict[str, int] = {}
        queries: list[PlannedQuery] = []
        planned: list[PlannedChannel] = []
        for channel in channels:
            name = channel.measurement
            measurement = profile.measurements[name]
            if name not in positions:
                positions[name] = len(queries)
                queries.append(PlannedQuery(name, measurement.query, tuple(measurement.setup)))
            planned.append(PlannedChannel(channel, positions[name], measurement))
        self.queries = tuple(queries)
        self.channels = tuple(planned)


class DueSets:
    """The compiled due sets of one session, found by the identity of the channel list."""

    __slots__ = ("_known", "_profile", "last", "last_channels")

    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        self._known: dict[int, tuple[Sequence[VisaChannel], DueSet]] = {}
        self.last_channels: Sequence[VisaChannel] = ()
        """The list last asked for (kept: nothing else can take its identity) and its compiled
        form: the agent asks for the same list tick after tick, which a caller checks first,
        before the call (``last if channels is last_channels else of(channels)``)."""
        self.last = DueSet((), profile)

    def of(self, channels: Sequence[VisaChannel]) -> DueSet:
        """The compiled form of ``channels`` (compiled now if this list is new)."""
        known = self._known.get(id(channels))
        if known is not None and known[0] is channels:
            compiled = known[1]
        else:
            compiled = DueSet(channels, self._profile)
            if len(self._known) >= _CACHED_SETS:
                self._known.clear()
            self._known[id(channels)] = (channels, compiled)  # the list kept: its id stays unique
        self.last_channels, self.last = channels, compiled
        return compiled


def make_reading(
    instrument: str,
    planned: PlannedChannel,
    ts: int,
    reply: str | ProtocolError,
    errors: list[str],
) -> Reading:
    """The reading of one channel: BAD with the instrument's errors or the reply's problem,
    else the parsed value.

    The common reply — one finite number in range, with the expected unit token where one is
    due — is taken the short way (no intermediate objects); anything else goes to
    :func:`~drivers.visa.profiles.parse_reply`, which says what is wrong with it."""
    if errors:
        reason = capped(f"instrument error: {'; '.join(errors)}")
        return Reading.bad(instrument, planned.name, ts, planned.unit, reason)
    if isinstance(reply, ProtocolError):
        return Reading.bad(instrument, planned.name, ts, planned.unit, reply.reason)
    if planned.fast:
        value: float | None = None
        try:
            if planned.reply_unit is None:
                value = float(reply)  # float() skips the same surrounding whitespace as strip()
            else:
                match = NUMBER_WITH_UNIT.match(reply)
                if match is not None and match.group(2).upper() == planned.reply_unit:
                    value = float(match.group(1))
        except ValueError:
            pass
        limit = planned.limit
        if value is not None and -limit < value < limit:  # also false for nan and ±inf
            return Reading(instrument, planned.name, ts, value, planned.unit, _GOOD)
    measurement = planned.measurement
    parsed = parse_reply(reply, measurement, planned.channel.index)
    if parsed.value is None:
        reason = parsed.problem or "no value"
        return Reading.bad(instrument, planned.name, ts, planned.unit, reason)
    return Reading(
        instrument, planned.name, ts, parsed.value, planned.unit, Quality.GOOD, u=parsed.u
    )
