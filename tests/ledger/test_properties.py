"""Properties: any ledger the writer makes verifies; any single change to it is found, named,
and placed at the right entry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger import (
    ChainHead,
    Checkpoint,
    Entry,
    LedgerWriter,
    SigningKey,
    TamperKind,
    VerifyReport,
    verify,
)
from ledger.canonical import MAX_SAFE_INTEGER

from .support import LEDGER, Clock, rechain

SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

KINDS = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,5})?\Z")
PLAIN = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="\x85"),
    min_size=1,
    max_size=20,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(max_size=10).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6).filter(str.isprintable), inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.dictionaries(st.text(max_size=8).filter(str.isprintable), JSON, max_size=4)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), KINDS, PLAIN, PLAIN, BODIES),
        st.tuples(st.just("checkpoint")),
        st.tuples(st.just("rotate")),
    ),
    max_size=30,
)


class Made:
    def __init__(self, operations: list[tuple[Any, ...]]) -> None:
        self.keys = [SigningKey.generate()]
        self.writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
        self.entries: list[Entry] = []
        self.checkpoints: list[Checkpoint] = []
        for operation in operations:
            if operation[0] == "append":
                _, kind, subject, actor, body = operation
                self.entries.append(self.writer.append(kind, subject, actor, body))
            elif operation[0] == "checkpoint":
                self.checkpoints.append(self.writer.checkpoint(self.keys[-1]))
            else:
                self.keys.append(SigningKey.generate())
                self.entries.append(self.writer.rotate(self.keys[-2], self.keys[-1], "admin"))

    def verify(self, entries: list[Any] | None = None, trusted: int = 0) -> VerifyReport:
        return verify(
            self.entries if entries is None else entries,
            self.checkpoints,
            [self.keys[trusted].public_key],
            ledger=LEDGER,
        )


@SETTINGS
@given(OPERATIONS)
def test_whatever_the_writer_makes_verifies(operations: list[tuple[Any, ...]]) -> None:
    made = Made(operations)
    for trusted in (0, -1):
        report = made.verify(trusted=trusted)
        assert report.ok, report.finding
        assert report.head == made.writer.head or (
            report.head.key is None and made.writer.head.key is not None and not made.checkpoints
        )
        assert report.head.count == len(made.entries)


def simple_ledger(size: int, every: int) -> Made:
    operations: list[tuple[Any, ...]] = []
    for i in range(1, size + 1):
        operations.append(("append", "audit", f"s{i % 3}", "alice", {"i": i, "v": f"1.{i}"}))
        if i % every == 0:
            operations.append(("checkpoint",))
    return Made(operations)


FIELDS = ["seq", "ts_ns", "kind", "subject", "actor", "body_json", "prev", "hash"]
VALUES = st.one_of(
    st.integers(),
    st.text(max_size=70),
    st.none(),
    st.from_regex(r"\A[0-9a-f]{64}\Z"),
    st.just('{"i":1}'),
    st.just("key_rotation"),
    st.floats(allow_nan=False),
)


@SETTINGS
@given(
    st.integers(min_value=1, max_value=25),
    st.integers(min_value=1, max_value=8),
    st.data(),
)
def test_any_single_change_to_any_field_is_found_where_it_is(
    size: int, every: int, data: st.DataObject
) -> None:
    made = simple_ledger(size, every)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    field = data.draw(st.sampled_from(FIELDS))
    value = data.draw(VALUES)
    original = made.entries[index]
    assume(getattr(original, field) != value or type(getattr(original, field)) is not type(value))
    entries: list[Any] = list(made.entries)
    entries[index] = original._replace(**{field: value})
    report = made.verify(entries)
    assert not report.ok
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.EDITED, index + 1), (
        report.finding.message
    )


@pytest.mark.parametrize("ts_ns", [2**63, 2**64, -1, -(2**63) - 1])
def test_a_time_no_ledger_can_hold_is_found_as_an_edit(ts_ns: int) -> None:
    """Found by the property above: a row whose time is past what an entry may hold (or before
    0) made the report's facts refuse it, and verify raised instead of reporting the edit."""
    made = simple_ledger(5, 2)
    entries: list[Any] = list(made.entries)
    entries[2] = entries[2]._replace(ts_ns=ts_ns)
    report = made.verify(entries)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.EDITED, 3)
    assert report.finding.entry is None or report.finding.entry.ts_ns is None


@SETTINGS
@given(st.integers(min_value=2, max_value=25), st.data())
def test_a_deleted_entry_is_found(size: int, data: st.DataObject) -> None:
    made = simple_ledger(size, 5)
    index = data.draw(st.integers(min_value=0, max_value=size - 2))
    entries = list(made.entries)
    del entries[index]
    report = made.verify(entries)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.DELETED, index + 1)


@SETTINGS
@given(st.integers(min_value=2, max_value=25), st.data())
def test_swapped_entries_are_found(size: int, data: st.DataObject) -> None:
    made = simple_ledger(size, 5)
    first = data.draw(st.integers(min_value=0, max_value=size - 2))
    second = data.draw(st.integers(min_value=first + 1, max_value=size - 1))
    entries = list(made.entries)
    entries[first], entries[second] = entries[second], entries[first]
    report = made.verify(entries)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.REORDERED, first + 1)


@SETTINGS
@given(st.integers(min_value=1, max_value=25), st.data())
def test_a_duplicated_entry_is_found(size: int, data: st.DataObject) -> None:
    made = simple_ledger(size, 5)
    copied = data.draw(st.integers(min_value=0, max_value=size - 1))
    at = data.draw(st.integers(min_value=0, max_value=size))
    entries = list(made.entries)
    entries.insert(at, made.entries[copied])
    report = made.verify(entries)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.INSERTED, copied + 1)


@SETTINGS
@given(st.integers(min_value=1, max_value=25), st.data())
def test_a_rewrite_before_a_checkpoint_is_found(size: int, data: st.DataObject) -> None:
    made = simple_ledger(size, 4)
    made.checkpoints.append(made.writer.checkpoint(made.keys[-1]))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    entries = list(made.entries)
    entries[index] = entries[index]._replace(actor="mallory")
    report = made.verify(rechain(entries, index))
    finding = report.finding
    assert finding is not None, "a whole-chain rewrite went unnoticed"
    assert finding.kind == TamperKind.REWRITTEN, finding.message
    assert finding.seq is not None and finding.last_seq is not None
    assert finding.seq <= index + 1 <= finding.last_seq


@SETTINGS
@given(st.integers(min_value=2, max_value=25), st.data())
def test_of_several_changes_the_first_is_named(size: int, data: st.DataObject) -> None:
    made = simple_ledger(size, 4)
    indices = data.draw(st.sets(st.integers(min_value=0, max_value=size - 1), min_size=2))
    entries: list[Any] = list(made.entries)
    for index in indices:
        field = data.draw(st.sampled_from(["ts_ns", "subject", "actor", "body_json", "hash"]))
        value = data.draw(st.text(max_size=5))
        entries[index] = entries[index]._replace(**{field: value})
    report = made.verify(entries)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (TamperKind.EDITED, min(indices) + 1)


GARBAGE = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(*[st.one_of(st.none(), st.integers(), st.text(max_size=70))] * 8),
)


@SETTINGS
@given(
    st.integers(min_value=0, max_value=10),
    st.lists(st.tuples(st.integers(min_value=0, max_value=12), GARBAGE), max_size=4),
    st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)), max_size=3),
)
def test_garbage_never_raises_and_is_never_ok(
    size: int, inserts: list[tuple[int, Any]], lines: list[Any]
) -> None:
    made = simple_ledger(size, 3)
    rows: list[Any] = list(made.entries)
    for at, junk in inserts:
        rows.insert(min(at, len(rows)), junk)
    report = verify(rows, [*made.checkpoints, *lines], [made.keys[0].public_key], ledger=LEDGER)
    if inserts or lines:
        assert not report.ok
    else:
        assert report.ok
    report.model_dump_json()
