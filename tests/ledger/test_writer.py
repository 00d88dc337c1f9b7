"""The writer: entries in chain order, a monotonic time, checkpoints with the key in force."""

from __future__ import annotations

import pytest

from ledger import ChainError, ChainHead, EntryError, LedgerWriter, SigningKey, genesis_hash, verify

from .support import LEDGER, T0, Clock, body


def test_entries_chain_from_the_genesis() -> None:
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    first = writer.append("audit", "s", "alice", {"n": 1})
    second = writer.append("audit", "s", "alice", {"n": 2})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev == genesis_hash(LEDGER) and second.prev == first.hash
    assert second.ts_ns > first.ts_ns
    head = writer.head
    assert (head.count, head.hash, head.ts_ns, head.key) == (2, second.hash, second.ts_ns, None)


def test_prepare_then_commit_and_a_failed_store() -> None:
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    entry = writer.prepare("audit", "s", "alice", {"n": 1})
    assert writer.head.count == 0  # nothing moves until the store has it
    again = writer.prepare("audit", "s", "alice", {"n": 1})  # the store refused: try again
    writer.commit(again)
    with pytest.raises(ChainError, match="does not follow"):
        writer.commit(entry)
    assert writer.head.hash == again.hash


def test_resume_from_a_head() -> None:
    key = SigningKey.generate()
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    entries = [writer.append("audit", "s", "a", body(i)) for i in range(3)]
    checkpoints = [writer.checkpoint(key)]
    resumed = LedgerWriter(writer.head, clock=Clock(T0 + 10**12))
    entries.append(resumed.append("audit", "s", "a", {"n": 4}))
    checkpoints.append(resumed.checkpoint(key))
    assert verify(entries, checkpoints, [key.public_key], ledger=LEDGER).ok


def test_time_never_goes_back() -> None:
    times = iter([T0 + 100, T0 + 50, T0 + 200])
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=lambda: next(times))
    a = writer.append("audit", "s", "x", {})
    b = writer.append("audit", "s", "x", {})  # the clock stepped back: b takes a's time
    c = writer.append("audit", "s", "x", {})
    assert (a.ts_ns, b.ts_ns, c.ts_ns) == (T0 + 100, T0 + 100, T0 + 200)
    assert writer.clamped == 1
    with pytest.raises(ChainError, match="never goes back"):
        writer.append("audit", "s", "x", {}, ts_ns=T0)


def test_bad_fields_are_refused_before_anything_moves() -> None:
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    with pytest.raises(EntryError) as caught:
        writer.append("audit", "s", "x", {"reading": 10.5})
    assert caught.value.field == "body.reading"
    with pytest.raises(EntryError):
        writer.append("Bad Kind", "s", "x", {})
    with pytest.raises(ChainError, match="prepare_rotation"):
        writer.append("key_rotation", "s", "x", {})
    assert writer.head.count == 0


def test_checkpoints_are_signed_by_the_key_in_force() -> None:
    first, second, stranger = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    writer.append("audit", "s", "x", {})
    cp = writer.checkpoint(first)  # binds the ledger to its first key
    assert writer.head.key == first.key_id and cp.count == 1
    with pytest.raises(ChainError, match="key in force"):
        writer.checkpoint(stranger)
    with pytest.raises(ChainError, match="only it can hand over"):
        writer.rotate(stranger, second, "admin")
    with pytest.raises(ChainError, match="new key is the old key"):
        writer.rotate(first, first, "admin")
    rotation = writer.rotate(first, second, "admin")
    assert rotation.kind == "key_rotation" and rotation.subject == second.key_id
    assert writer.head.key == second.key_id
    with pytest.raises(ChainError, match="key in force"):
        writer.checkpoint(first)
    writer.checkpoint(second)
