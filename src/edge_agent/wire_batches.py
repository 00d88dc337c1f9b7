"""The gateway's decoder of data batches (schema version 1), beside :mod:`edge_agent.wire`.

One pass that validates as it parses (msgspec, for the batches agents send), and the salvaging
path for the rest (pydantic, reading by reading, with the reasons a user can act on). Both accept
exactly the same readings with the same values. Kept apart from the models and encoders of
:mod:`edge_agent.wire`, which an agent uses to build what this module reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Annotated, ClassVar, Literal, cast

import msgspec
from pydantic import ValidationError
from pydantic_core import from_json

from core.errors import PayloadError
from edge_agent.wire import (
    _FREE,
    _NAME,
    _TAG_KEY,
    BATCH,
    INT64_MAX,
    INT64_MIN,
    NO_VALUE_NOT_BAD,
    READING,
    REASON_MAX,
    SCHEMA_VERSION,
    TEXT_VALUE_MAX,
    TS_MAX_NS,
    TS_MIN_NS,
    Rejected,
    WireReading,
    _reasons,
    _spoofed,
)


class WireRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One reading as the fast path decodes it (:func:`decode_data`): the constraints of
    :class:`WireReading` a parser can check, in the same pass as the parse. What it cannot
    (names, control characters) :func:`decode_data` checks once per distinct string; absent
    optional fields are ``UNSET``, as a :class:`WireReading` has no key for them."""

    instrument: str
    channel: str
    ts: Annotated[int, msgspec.Meta(ge=TS_MIN_NS, le=TS_MAX_NS)]
    value: (
        float
        | Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
        | bool
        | Annotated[str, msgspec.Meta(max_length=TEXT_VALUE_MAX)]
        | None
    )
    unit: Annotated[str, msgspec.Meta(max_length=32)]
    quality: Literal["good", "uncertain", "bad"]
    reason: Annotated[str, msgspec.Meta(max_length=REASON_MAX)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    u: Annotated[float, msgspec.Meta(ge=0)] | msgspec.UnsetType | None = msgspec.UNSET
    tags: (
        Annotated[
            dict[str, Annotated[str, msgspec.Meta(min_length=1, max_length=128)]],
            msgspec.Meta(max_length=16),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    # Never on the wire (not fields): what a stored row may add, for the writer's line builder.
    corrected: ClassVar[float | None] = None
    conformity: ClassVar[int | None] = None


class _WireBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    schema: Literal[1]
    site: str
    agent: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    readings: Annotated[list[WireRow], msgspec.Meta(min_length=1, max_length=100_000)]


_DECODER = msgspec.json.Decoder(_WireBatch)
_TAG_KEY_RE = re.compile(_TAG_KEY)
_KNOWN_MAX = 100_000
_known_names: set[str] = set()
_known_tag_keys: set[str] = set()
_known_texts: set[str] = set()


@dataclass(frozen=True, slots=True, eq=False)
class ChannelOrder:
    """The instrument and channel of each reading of a batch, in order.

    Agents send the same sequence of channels batch after batch, so :func:`decode_data` hands
    out the very same object for a batch of the same order as the agent's previous one (its
    names checked once): whoever derives something from the order (the corrector's slots)
    recognises it by identity, without looking at a reading again."""

    instruments: list[str]
    channels: list[str]

    @classmethod
    def of(cls, rows: Sequence[WireRow]) -> ChannelOrder:
        """The order of ``rows`` (a new object, names not checked)."""
        # Comprehensions: on a struct's field, about half the cost of a map of an attrgetter.
        return cls([row.instrument for row in rows], [row.channel for row in rows])


_ORDERS_MAX_READINGS = 250_000
"""Readings the remembered orders hold at most (a batch may hold 100,000: the agents whose
order was seen longest ago are forgotten first, so a flood of agents costs bounded memory)."""
_orders: dict[tuple[str, str], ChannelOrder] = {}
"""(site, agent) → the order of its latest batch whose names were good, oldest first."""
_orders_held = [0]
"""Readings the orders of ``_orders`` hold."""


def _checked_order(site: str, agent: str, rows: list[WireRow]) -> ChannelOrder | None:
    """The batch's order, None if a name is not a name; the agent's previous order object when
    it is the same (see :class:`ChannelOrder`), which costs two list comparisons instead of a
    set of names per batch."""
    order = ChannelOrder.of(rows)
    key = (site, agent)
    last = _orders.get(key)
    if (
        last is not None
        and last.channels == order.channels
        and last.instruments == order.instruments
    ):
        _orders[key] = _orders.pop(key)  # seen now: the last to be forgotten
        return last
    names = set(order.instruments)
    names.update(order.channels)
    if not _all_match(names, _known_names, _NAME):
        return None
    _remember(site, agent, order)
    return order


def _remember(site: str, agent: str, order: ChannelOrder) -> None:
    """Keep ``order`` as the agent's latest, within :data:`_ORDERS_MAX_READINGS` (an order
    larger than that alone is not kept, and makes no other forgotten)."""
    size = len(order.channels)
    old = _orders.pop((site, agent), None)
    held = _orders_held[0] - (0 if old is None else len(old.channels))
    if size <= _ORDERS_MAX_READINGS:
        while held + size > _ORDERS_MAX_READINGS:
            held -= len(_orders.pop(next(iter(_orders))).channels)
        _orders[(site, agent)] = order
        held += size
    _orders_held[0] = held


def _all_match(strings: set[str], known: set[str], pattern: re.Pattern[str]) -> bool:
    """Whether every string fully matches ``pattern`` (as pydantic's anchored patterns do: no
    final newline); the good ones are remembered, so a name is checked once, not per reading."""
    if strings <= known:
        return True
    if not all(pattern.fullmatch(s) for s in strings - known):
        return False
    if len(known) > _KNOWN_MAX:
        known.clear()
    known |= strings
    return True


@dataclass(slots=True)
class DataBatch:
    """A validated data message: its good readings (``rows``), the refused ones, its seq."""

    rows: list[WireRow]
    rejected: list[Rejected]
    seq: int
    _dicts: list[WireReading] | None = field(default=None, repr=False)
    order: ChannelOrder | None = field(default=None, repr=False)
    """The rows' :class:`ChannelOrder` (the fast path's; None from the salvaging path)."""

    def dicts(self) -> list[WireReading]:
        """The good readings as wire-format dicts (made once, on demand)."""
        if self._dicts is None:
            self._dicts = msgspec.to_builtins(self.rows)
        return self._dicts


def _fast(payload: bytes, site: str, agent: str) -> DataBatch | None:
    """The batch when all of it is valid (what agents send), checked in one parse; None sends it
    to the salvaging path, which refuses what must be refused with its reason.

    Only an escape sequence can put a C0 control character, a lone surrogate or a backslash in a
    JSON string, so a payload holding a backslash byte goes the long way. Otherwise the parse
    checks types, bounds, lengths and unknown keys, and the patterns are checked here once per
    distinct name (names repeat in every batch); free text needs a look only when the payload
    is not plain ASCII (DEL, C1 controls and U+2028/9 are the forbidden characters left).
    """
    if b"\\" in payload:
        return None
    try:
        batch = _DECODER.decode(payload)
    except msgspec.MsgspecError:
        return None
    if batch.site != site or batch.agent != agent:
        return None  # the salvaging path says whether it is spoofed or not a name
    rows = batch.readings
    order = _checked_order(site, agent, rows)
    if order is None:
        return None
    tags = cast("list[dict[str, str]]", list(filter(None, [row.tags for row in rows])))
    if tags and not _all_match(set(chain.from_iterable(tags)), _known_tag_keys, _TAG_KEY_RE):
        return None
    values = [row.value for row in rows]  # a comprehension: cheaper than a map of a getter
    if not payload.isascii() or b"\x7f" in payload:
        texts: set[str] = {row.unit for row in rows}
        texts.update(chain.from_iterable(map(dict.values, tags)))
        if not _all_match(texts, _known_texts, _FREE):
            return None
        once = cast("set[str]", set(filter(None, [row.reason for row in rows])))
        once.update(v for v in values if v.__class__ is str)
        if not all(_FREE.fullmatch(text) for text in once):
            return None
    if None in values and any(r.value is None and r.quality != "bad" for r in rows):
        return None
    return DataBatch(rows, [], batch.seq, order=order)


def decode_data(payload: bytes, site: str, agent: str) -> DataBatch:
    """Validate a data payload from ``site``/``agent``'s topic (see :func:`decode_batch`)."""
    fast = _fast(payload, site, agent)
    if fast is not None:
        return fast
    good, rejected, seq = _salvage(payload, site, agent)
    rows = msgspec.convert(good, list[WireRow]) if good else []
    return DataBatch(rows, rejected, seq, good)


def decode_batch(
    payload: bytes, site: str, agent: str
) -> tuple[list[WireReading], list[Rejected], int]:
    """Validate a data payload from ``site``/``agent``'s topic.

    Returns (good readings, rejected readings, batch seq). Raises PayloadError when the payload as
    a whole is unusable (not JSON, unknown schema, wrong envelope); a batch with some bad readings
    keeps the good ones.

    A payload that is valid throughout is checked in one parse (:func:`_fast`); any other goes
    to :func:`_salvage`, which finds what is wrong and keeps what is right, with pydantic's
    reasons. Both accept exactly the same readings with the same values (tested side by side).
    """
    batch = decode_data(payload, site, agent)
    return batch.dicts(), batch.rejected, batch.seq


def _salvage(
    payload: bytes, site: str, agent: str
) -> tuple[list[WireReading], list[Rejected], int]:
    """The reference path of :func:`decode_batch`, reading by reading.

    Both passes parse with pydantic-core's JSON parser, which has a nesting limit (a deeply
    nested payload is invalid JSON, never a RecursionError); the second also reads the NaN and
    Infinity tokens, so the one reading that holds them is refused and the rest go on.
    """
    try:
        batch = BATCH.validate_json(payload)
    except ValidationError:
        pass  # find out below what is wrong, and keep what is right
    else:
        _spoofed("envelope", batch["site"], batch["agent"], site, agent)
        readings = batch["readings"]
        if all(r["value"] is not None or r["quality"] == "bad" for r in readings):
            return readings, [], batch["seq"]
    try:
        data = from_json(payload, allow_inf_nan=True)
    except ValueError as exc:
        raise PayloadError(f"invalid JSON: {exc}", "invalid JSON") from None
    if not isinstance(data, dict):
        raise PayloadError(
            f"payload must be a JSON object, not {type(data).__name__}", "not a JSON object"
        )
    if data.get("schema") != SCHEMA_VERSION or type(data.get("schema")) is not int:
        shown = repr(data.get("schema"))
        raise PayloadError(
            f"unknown schema version {shown[:40]} (this gateway reads 1)", "unknown schema version"
        )
    readings_raw = data.get("readings")
    envelope = {k: v for k, v in data.items() if k != "readings"}
    try:
        BATCH.validate_python({**envelope, "readings": [None]})
    except ValidationError as exc:
        problems = _reasons(exc, skip="readings")
        if problems:
            raise PayloadError(f"bad envelope: {problems}", "bad envelope") from None
    if not isinstance(readings_raw, list) or not readings_raw:
        raise PayloadError("readings must be a non-empty list", "bad envelope")
    _spoofed("envelope", data["site"], data["agent"], site, agent)
    good: list[WireReading] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(readings_raw):
        try:
            reading = READING.validate_python(raw)
        except ValidationError as exc:
            rejected.append(Rejected(index=index, reason=_reasons(exc)))
            continue
        if reading["value"] is None and reading["quality"] != "bad":
            rejected.append(Rejected(index=index, reason=NO_VALUE_NOT_BAD))
            continue
        good.append(reading)
    return good, rejected, int(data["seq"])
