"""The writer's hot path — spooled batches read back as rows, their lines built without a dict
per reading, floats formatted a column at a time — writes what the reference builder
(:func:`reading_line` over wire-format dicts) writes: the same series, the same fields with the
same values, the same refusals. And ingest's rows reach the writer without a second parse."""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.wire_batches import decode_data
from gateway.tsdb.line_protocol import parse_line
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import (
    ITEM_WEIGHT,
    ROWS_WEIGHT,
    EntryMemo,
    FixedColumns,
    Lines,
    ReadingsBatch,
)
from gateway.tsdb.writer import decode_entry
from tests.gateway.ingest.harness import AGENT, SITE, TS0
from tests.gateway.ingest.strategies import valid_reading

CORRECTED = {
    "corrected": 25.000012345678901,
    "u_corrected": 0.0050001234,
    "certificate": 'PRT "A", 2026',
    "certificate_id": 3,
    "conformity": 0,
}


def parsed(lines: list[str]) -> list[Any]:
    out = []
    for line in lines:
        measurement, tags, fields, ts = parse_line(line)
        out.append((measurement, tags, {k: (type(v), v) for k, v in fields.items()}, ts))
    return out


def lines_both_ways(readings: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    body = {"schema": 1, "site": SITE, "agent": AGENT, "seq": 1, "readings": readings}
    payload = json.dumps(body).encode()  # json: integers beyond 64 bits, as an agent may send
    item = decode_entry(payload)
    assert isinstance(item, ReadingsBatch) and item.rows is not None
    fast = LineBuilder().lines(item)
    reference = LineBuilder().lines(ReadingsBatch(SITE, AGENT, json.loads(payload)["readings"]))
    return fast, reference


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30), st.data())
def test_rows_write_what_dicts_write(offsets: list[int], data: st.DataObject) -> None:
    readings = [data.draw(valid_reading(TS0 + i)) for i in offsets]
    for reading in readings:
        if data.draw(st.integers(0, 4)) == 0:
            reading.update(CORRECTED)
    fast, reference = lines_both_ways(readings)
    assert parsed(fast) == parsed(reference)


def test_float_columns_keep_every_digit_and_line_up() -> None:
    values = [10.0, 1e-7, 1e16, -0.0, 0.1, 5e-324, 1.7976931348623157e308, 2**64, "a,b", True]
    readings = [
        {"instrument": "i", "channel": f"c{n}", "ts": TS0 + n, "value": v, "unit": "V",
         "quality": "good", "u": 1e-7 * n}
        for n, v in enumerate(values)
    ]  # fmt: skip
    fast, reference = lines_both_ways(readings)
    assert parsed(fast) == parsed(reference)
    # 2**64 (beyond orjson) and "a,b" (splits the column): the values formatted one by one.
    assert "value=1e-07,quality=0i,u=1e-7 " in fast[1]
    fast, reference = lines_both_ways(readings[:7])  # nor an integer beyond 64 bits
    assert parsed(fast) == parsed(reference)
    assert "value=1e-7,quality=0i,u=1e-7 " in fast[1]


def test_a_row_that_cannot_be_written_is_refused_alone() -> None:
    batch = ReadingsBatch(SITE, AGENT, rows=decode_data(_payload(3), SITE, AGENT).rows)
    poisoned = list(batch.rows or [])
    poisoned[1].ts = 1.5  # type: ignore[misc]  # what no check foresaw
    rejected: list[tuple[str, str]] = []
    lines = LineBuilder().lines(ReadingsBatch(SITE, AGENT, rows=poisoned), rejected)
    assert len(lines) == 2 and len(rejected) == 1
    assert "timestamp 1.5 is not an integer" in rejected[0][1]


def _payload(count: int) -> bytes:
    readings = [
        {"instrument": "dmm-1", "channel": "v", "ts": TS0 + i, "value": 1.0 + i, "unit": "V",
         "quality": "good"}
        for i in range(count)
    ]  # fmt: skip
    return orjson.dumps({"schema": 1, "site": SITE, "agent": AGENT, "seq": 0, "readings": readings})


def _batches(payloads: list[bytes]) -> list[ReadingsBatch]:
    return [ReadingsBatch(SITE, AGENT, rows=decode_data(p, SITE, AGENT).rows) for p in payloads]


def test_the_memo_hands_over_ingests_rows_for_that_very_entry_only() -> None:
    payload = _payload(3)
    weight = ITEM_WEIGHT + ROWS_WEIGHT * len(payload)
    memo = EntryMemo(max_bytes=2 * weight)
    (rows,) = _batches([payload])
    memo.put(7, rows, len(payload))
    assert memo.take(6) is None  # another entry
    assert memo.take(7) is rows
    assert memo.take(7) is None  # taken once
    others = [_payload(3) for _ in range(3)]
    for entry_id, (other, batch) in enumerate(zip(others, _batches(others), strict=True), 10):
        memo.put(entry_id, batch, len(other))
    # Two entries' rows kept: the oldest, which the writer takes first; the newest forgotten.
    assert [memo.take(entry_id) is not None for entry_id in (10, 11, 12)] == [True, True, False]
    assert math.isclose(LineBuilder().lines(rows).__len__(), 3)


def test_taking_an_entry_forgets_the_older_ones_the_writer_has_passed() -> None:
    """An item put after the writer read its entry from disk would never be taken: it must not
    hold the memo's memory (nor, the memo full, keep out the entries still to come)."""
    payloads = [_payload(3) for _ in range(4)]
    memo = EntryMemo()
    for entry_id, (payload, batch) in enumerate(zip(payloads, _batches(payloads), strict=True)):
        memo.put(entry_id, batch, len(payload))
    assert memo.take(2) is not None
    assert memo.take(0) is None and memo.take(1) is None
    assert memo.take(3) is not None
    assert memo._bytes == 0 and not memo._items


@pytest.mark.parametrize("with_lines", [False, True])
def test_a_writer_that_keeps_up_leaves_the_memo_holding_nothing(with_lines: bool) -> None:
    """A million messages through a memo that never reaches its bound (the ids of the rows it
    held are not kept for ever: 40 B a message, some 300 MB a day at 100 messages/s)."""
    payload = _payload(2)
    (batch,) = _batches([payload])
    memo = EntryMemo(lines=LineBuilder().lines if with_lines else None)
    for entry_id in range(1, 100_001):
        memo.put(entry_id, batch, len(payload))
        assert memo.take(entry_id) is batch
    assert memo._bytes == 0 and not memo._items
    assert len(memo._rows) < 1_000, f"{len(memo._rows)} ids kept for entries long written"


def test_a_memo_of_one_reading_messages_weighs_each_item() -> None:
    """Each item's own memory counts: a memo of one-reading messages stays near its bound in
    real memory, not at three times it."""
    payloads = [_payload(1) for _ in range(20_000)]
    batches = _batches(payloads)
    bound = 2**20
    memo = EntryMemo(max_bytes=bound, lines=LineBuilder().lines)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for entry_id, (payload, batch) in enumerate(zip(payloads, batches, strict=True)):
            memo.put(entry_id, batch, len(payload))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert memo._bytes <= bound
    assert held < 1.5 * bound, f"{held / bound:.2f} times the bound held"


def test_a_memo_over_its_bound_keeps_the_oldest_as_their_lines_first() -> None:
    """Given the store's builder, the memo makes the oldest rows the lines the writer would
    have built from them (what it then writes as they are); still over, it forgets the newest,
    never building lines it throws away."""
    payloads = [_payload(40) for _ in range(6)]
    built: list[int] = []
    builder = LineBuilder()

    def counting(batch: ReadingsBatch) -> list[str]:
        built.append(batch.count)
        return builder.lines(batch)

    weight = ITEM_WEIGHT + ROWS_WEIGHT * len(payloads[0])
    memo = EntryMemo(max_bytes=3 * weight, lines=counting)
    batches = _batches(payloads)
    for entry_id, (payload, batch) in enumerate(zip(payloads, batches, strict=True)):
        memo.put(entry_id, batch, len(payload))
    taken = [memo.take(entry_id) for entry_id in range(6)]
    assert all(item is not None for item in taken)  # six entries' worth in three's memory
    assert isinstance(taken[0], Lines) and taken[-1] is batches[-1]
    for item, batch in zip(taken, batches, strict=True):
        expected = LineBuilder().lines(batch)
        if isinstance(item, Lines):
            assert item.count == 40 and item.text.split("\n") == expected
    without = EntryMemo(max_bytes=3 * weight)
    for entry_id, (payload, batch) in enumerate(zip(payloads, batches, strict=True)):
        without.put(entry_id, batch, len(payload))
    assert [without.take(entry_id) is not None for entry_id in range(6)] == [True] * 3 + [False] * 3
    # A long backlog: what is built is what the writer finds, oldest first.
    built.clear()
    many = [_payload(40) for _ in range(40)]
    backlog = EntryMemo(max_bytes=3 * weight, lines=counting)
    for entry_id, (payload, batch) in enumerate(zip(many, _batches(many), strict=True)):
        backlog.put(entry_id, batch, len(payload))
    hits = [backlog.take(entry_id) is not None for entry_id in range(40)]
    found = sum(hits)
    assert hits[:found] == [True] * found and found >= 6, hits
    assert len(built) <= found, f"{len(built)} batches' lines built, {found} entries found"


def test_a_batch_whose_lines_cannot_be_built_is_left_to_the_writer() -> None:
    """The memo forgets it rather than keep it as rows past its bound: the writer parses the
    entry again and refuses the point alone, as it always did."""
    payload = _payload(3)
    poisoned = decode_data(payload, SITE, AGENT).rows
    poisoned[1].ts = 1.5  # type: ignore[assignment]  # what no check foresaw
    bad = ReadingsBatch(SITE, AGENT, rows=poisoned)
    good = ReadingsBatch(SITE, AGENT, rows=decode_data(payload, SITE, AGENT).rows)
    memo = EntryMemo(max_bytes=ROWS_WEIGHT * len(payload), lines=LineBuilder().lines)
    memo.put(1, bad, len(payload))
    memo.put(2, good, len(payload))
    assert memo.take(1) is None
    assert isinstance(memo.take(2), ReadingsBatch | Lines)


def test_a_memo_with_the_stores_builder_holds_a_batch_as_its_lines_from_the_start() -> None:
    """What ingest hands over (:meth:`EntryMemo.held`): given the store's builder, the lines
    the writer would build from the rows, so the rows need not wait in memory; a batch whose
    lines cannot be built stays rows (the writer refuses its point alone); without a builder
    (a store that takes rows) the rows."""
    payload = _payload(30)
    (batch,) = _batches([payload])
    held = EntryMemo(lines=LineBuilder().lines).held(batch)
    assert isinstance(held, Lines)
    assert held.count == 30 and held.text.split("\n") == LineBuilder().lines(batch)
    assert EntryMemo().held(batch) is batch
    poisoned = decode_data(payload, SITE, AGENT).rows
    poisoned[4].ts = 1.5  # type: ignore[assignment]  # what no check foresaw
    bad = ReadingsBatch(SITE, AGENT, rows=poisoned)
    assert EntryMemo(lines=LineBuilder().lines).held(bad) is bad


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(0, 1e300),
            st.sampled_from([3, 4]),
            st.sampled_from([-1, 0, 1]),
        ),
        min_size=1,
        max_size=20,
    ),
    st.booleans(),
)
def test_columns_of_corrections_write_each_readings_own_fields(
    columns: list[tuple[float, float, int, int]], conformity: bool
) -> None:
    """The fields of a batch's corrections, made for the column at once, are each reading's
    own: its corrected value and u with every digit, its certificate, its conformity code."""
    values, us, ids, codes = (list(c) for c in zip(*columns, strict=True))
    one = ids[0] if len(set(ids)) == 1 and not conformity else None
    fixed = FixedColumns(
        None, np.array(values, dtype=np.float64), np.array(us, dtype=np.float64),
        ids if one is None else one,
        codes if conformity else None,
    )  # fmt: skip
    readings = [
        {"instrument": "i", "channel": "c", "ts": TS0 + n, "value": 1.0, "unit": "V",
         "quality": "good"}
        for n in range(len(values))
    ]  # fmt: skip
    rows = decode_entry(orjson.dumps({"site": SITE, "agent": AGENT, "readings": readings}))
    assert isinstance(rows, ReadingsBatch)
    batch = ReadingsBatch(
        SITE, AGENT, rows=rows.rows, certificates={3: 'PRT "A"', 4: "B,2"}, columns=fixed
    )
    for line, value, u, certificate, code in zip(
        LineBuilder().lines(batch), values, us, ids, codes, strict=True
    ):
        fields = parse_line(line)[2]
        assert fields["corrected"] == value and math.copysign(1, value) == math.copysign(
            1, float(fields["corrected"])
        )
        assert fields["u_corrected"] == u
        assert fields["certificate_id"] == certificate
        assert fields["certificate"] == {3: 'PRT "A"', 4: "B,2"}[certificate]
        assert fields.get("conformity") == (code if conformity and code >= 0 else None)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=30, max_size=30),
    st.data(),
)
def test_a_batch_corrected_in_full_writes_what_the_general_loop_writes(
    offsets: list[int], corrected: list[float], data: st.DataObject
) -> None:
    """A batch whose every row is corrected in full takes a loop of its own (nothing to
    choose per row): its lines are those the general loop writes for the same columns given
    row by row — a reading's u, reason, tags, quality, integer or float value, one
    certificate or several, a conformity code or none."""
    readings = [data.draw(valid_reading(TS0 + i)) for i in offsets]
    for reading in readings:  # only a number is corrected
        if not isinstance(reading["value"], float | int) or isinstance(reading["value"], bool):
            reading["value"] = data.draw(st.floats(-1e9, 1e9) | st.integers(-(2**53), 2**53))
    body = {"site": SITE, "agent": AGENT, "readings": readings}
    rows = decode_entry(json.dumps(body).encode())
    assert isinstance(rows, ReadingsBatch)
    count = len(readings)
    values = np.array(corrected[:count], dtype=np.float64)
    us = np.abs(values) * 1e-6
    certificates = {3: 'PRT "A"', 4: "B,2"}
    ids: int | list[int] = data.draw(
        st.just(3) | st.lists(st.sampled_from([3, 4]), min_size=count, max_size=count)
    )
    codes = data.draw(
        st.none() | st.lists(st.sampled_from([-1, 0, 1]), min_size=count, max_size=count)
    )
    whole = ReadingsBatch(
        SITE, AGENT, rows=rows.rows, certificates=certificates,
        columns=FixedColumns(None, values, us, ids, codes),
    )  # fmt: skip
    by_index = ReadingsBatch(  # every row named by its index: the general loop
        SITE, AGENT, rows=rows.rows, certificates=certificates,
        columns=FixedColumns(list(range(count)), values, us, ids, codes),
    )  # fmt: skip
    lines = LineBuilder().lines(whole)
    assert lines == LineBuilder().lines(by_index)
    assert [parse_line(line)[2]["corrected"] for line in lines] == list(values)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=31, max_size=31),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_a_plain_batch_is_written_a_column_at_a_time_as_the_loop_writes_it(
    offsets: list[int], values: list[float], with_u: bool, corrected: bool, data: st.DataObject
) -> None:
    """A batch with nothing to choose row by row (float values, every u or none, no reason;
    corrected in full or not at all) is built a column at a time: the very text the general
    loop writes for the same rows, line for line (a row that is no such row, last, sends the
    batch to the loop)."""
    readings = [data.draw(valid_reading(TS0 + i)) for i in offsets]
    for reading, value in zip(readings, values, strict=False):
        reading["value"] = value
        reading.pop("reason", None)
        reading.pop("u", None)
        if with_u:
            reading["u"] = data.draw(st.floats(0, 1e6))
    odd = {**readings[-1], "value": 7, "ts": TS0 - 1}  # an integer: the loop writes it
    rows = decode_entry(json.dumps({"site": SITE, "agent": AGENT, "readings": readings}).encode())
    looped = decode_entry(
        json.dumps({"site": SITE, "agent": AGENT, "readings": [*readings, odd]}).encode()
    )
    assert isinstance(rows, ReadingsBatch) and isinstance(looped, ReadingsBatch)
    count = len(readings)
    columns: dict[str, Any] = {}
    if corrected:
        numbers = np.array(values[: count + 1], dtype=np.float64)  # the odd row's too
        us = np.abs(numbers) * 1e-6
        columns = {
            "certificates": {3: 'PRT "A"'},
            "columns": FixedColumns(None, numbers[:count], us[:count], 3, None),
        }
        looped_columns = FixedColumns(None, numbers, us, 3, None)
    plain = LineBuilder().lines(ReadingsBatch(SITE, AGENT, rows=rows.rows, **columns))
    if corrected:
        columns["columns"] = looped_columns
    loop = LineBuilder().lines(ReadingsBatch(SITE, AGENT, rows=looped.rows, **columns))
    assert plain == loop[:count]


def test_a_batch_in_the_agents_previous_order_with_other_units_or_tags_gets_their_keys() -> None:
    """The keys of an agent's previous batch are taken again only for the same channels with
    the same units and tags in the same order."""
    readings = [
        {"instrument": "dmm", "channel": f"c{n}", "ts": TS0 + n, "value": 1.5, "unit": "V",
         "quality": "good", "tags": {"room": "A"}}
        for n in range(4)
    ]  # fmt: skip
    changed = [
        [{**readings[0], "unit": "mV"}, *readings[1:]],
        [*readings[:3], {**readings[3], "tags": {"room": "B"}}],
        [*readings[:3], {key: v for key, v in readings[3].items() if key != "tags"}],
        [readings[1], readings[0], *readings[2:]],
    ]
    builder = LineBuilder()
    for batch in [readings, *changed, readings]:
        payload = orjson.dumps({"site": SITE, "agent": AGENT, "readings": batch})
        rows = decode_entry(payload)
        assert isinstance(rows, ReadingsBatch)
        assert builder.lines(rows) == LineBuilder().lines(
            ReadingsBatch(SITE, AGENT, json.loads(payload)["readings"])
        )


_ODD_FLOATS = [-0.0, 5e-324, 1e308, -1.7976931348623157e308, 1e16, 1e-7, 2.2250738585072014e-308,
               123456789012345680.0, 0.1, 1.0]  # fmt: skip
"""Floats whose text differs between repr and orjson (exponents, their signs and padding), a
negative zero, the smallest subnormal and the largest double."""


def _signed(lines: list[str]) -> list[Any]:
    """:func:`parsed`, a float's sign kept (-0.0 equals 0.0)."""
    return [
        (m, tags, {k: (kind, repr(v)) for k, (kind, v) in fields.items()}, ts)
        for m, tags, fields, ts in parsed(lines)
    ]


@pytest.mark.parametrize(
    "odd",
    [
        {},  # every row plain: a column at a time
        {"u": None},  # u mixing None and floats
        {"value": True},
        {"value": False},
        {"value": 7},
        {"value": 2**53 + 1},
        {"reason": "settling"},  # a reason on one row only
        {"value": 1e-320, "u": 0.0},
    ],
)
def test_odd_floats_and_one_odd_row_read_back_as_the_reference_writes_them(
    odd: dict[str, Any],
) -> None:
    readings = [
        {"instrument": "dmm", "channel": f"c{n}", "ts": TS0 + n, "value": value, "unit": "V",
         "quality": "good", "u": _ODD_FLOATS[-1 - n]}
        for n, value in enumerate(_ODD_FLOATS)
    ]  # fmt: skip
    readings[3] = {**readings[3], **odd}
    fast, reference = lines_both_ways(readings)
    assert _signed(fast) == _signed(reference)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_among_plain_ones_is_refused_alone(bad: float) -> None:
    readings = [
        {"instrument": "dmm", "channel": f"c{n}", "ts": TS0 + n, "value": value, "unit": "V",
         "quality": "good", "u": 0.5}
        for n, value in enumerate(_ODD_FLOATS)
    ]  # fmt: skip
    payload = orjson.dumps({"site": SITE, "agent": AGENT, "readings": readings})
    for field in ("value", "u"):
        item = decode_entry(payload)
        assert isinstance(item, ReadingsBatch) and item.rows is not None
        setattr(item.rows[4], field, bad)  # what ingest refuses: every other check passed
        rejected: list[tuple[str, str]] = []
        lines = LineBuilder().lines(item, rejected)
        assert len(rejected) == 1 and "is not finite" in rejected[0][1]
        assert _signed(lines) == _signed(
            LineBuilder().lines(ReadingsBatch(SITE, AGENT, [*readings[:4], *readings[5:]]))
        )


def test_the_agents_orders_stay_bounded_and_counted_whatever_the_batches() -> None:
    """Many agents, two agents naming the same channels, and an agent whose batches alternate
    between two shapes: each batch's lines are a fresh builder's, and the orders held stay
    within the cache's bound, counted exactly."""
    builder = LineBuilder(max_cached=40)

    def batch(agent: str, channels: int, unit: str = "V") -> ReadingsBatch:
        readings = [
            {"instrument": "dmm", "channel": f"c{n}", "ts": TS0 + n, "value": n + 0.5,
             "unit": unit, "quality": "good"}
            for n in range(channels)
        ]  # fmt: skip
        item = decode_entry(orjson.dumps({"site": SITE, "agent": agent, "readings": readings}))
        assert isinstance(item, ReadingsBatch)
        return item

    shapes = [("a", 3, "V"), ("b", 3, "V"), ("a", 5, "V"), ("b", 3, "mV"), ("a", 3, "V")]
    shapes += [(f"agent-{n}", 1 + n % 7, "V") for n in range(60)] * 2
    shapes += [("a", 50, "V"), ("a", 3, "V"), ("b", 3, "V")]  # one batch over the bound
    for agent, channels, unit in shapes:
        item = batch(agent, channels, unit)
        lines = builder.lines(item)
        assert lines == LineBuilder().lines(item)
        assert {tags["agent"] for _, tags, _, _ in parsed(lines)} == {agent}
        held = sum(len(keys) for _, keys in builder._orders.values())
        assert builder._orders_held == held
        assert held <= max(40, channels)
