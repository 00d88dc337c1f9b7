"""Verification: a clean ledger, each kind of tampering and its variants, checkpoints, and
the limits a clean report states."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import pytest

from ledger import (
    Checkpoint,
    Entry,
    SigningKey,
    TamperKind,
    VerifyReport,
    genesis_hash,
    verify,
)
from ledger.entry import content_bytes

from .support import LEDGER, Built, build, rechain, recomputed

EDITED = TamperKind.EDITED
DELETED = TamperKind.DELETED
INSERTED = TamperKind.INSERTED
REORDERED = TamperKind.REORDERED
TRUNCATED = TamperKind.TRUNCATED
REWRITTEN = TamperKind.REWRITTEN
FORGED = TamperKind.CHECKPOINT_FORGED
REPLAYED = TamperKind.CHECKPOINT_REPLAYED


@pytest.fixture(scope="module")
def built() -> Built:
    """20 entries, signed at 5, 10, 15 and 20."""
    return build(20, checkpoints_at=[5, 10, 15, 20])


def check(
    built: Built,
    entries: Iterable[Any] | None = None,
    checkpoints: Iterable[Any] | None = None,
    trusted: Iterable[SigningKey] | None = None,
) -> VerifyReport:
    return verify(
        built.entries if entries is None else entries,
        built.checkpoints if checkpoints is None else checkpoints,
        [key.public_key for key in (built.keys if trusted is None else trusted)],
        ledger=LEDGER,
    )


def found(report: VerifyReport, kind: TamperKind, seq: int, code: str | None = None) -> None:
    assert not report.ok, "tampering went unnoticed"
    finding = report.finding
    assert finding is not None
    assert (finding.kind, finding.seq) == (kind, seq), finding.message
    if code is not None:
        assert finding.code == code, finding.message
    assert finding.message == finding.text("en")
    assert finding.text("vi") and finding.text("vi") != finding.message
    report.model_dump_json()  # a report is served as JSON as it is


# -- clean --------------------------------------------------------------------------------------


def test_a_clean_ledger_verifies(built: Built) -> None:
    report = check(built)
    assert report.ok and report.finding is None and report.findings == ()
    assert report.rows == 20 and report.head == built.writer.head
    assert report.checkpoints == 4 and report.checkpoints_verified == 4
    assert report.signed_count == 20 and report.unsigned == 0
    assert report.notes == ()
    assert [(k.from_seq, k.key, k.trusted) for k in report.keys] == [(1, built.key.key_id, True)]


def test_an_unsigned_tail_is_stated(built: Built) -> None:
    report = check(built, checkpoints=built.checkpoints[:2])
    assert report.ok and report.signed_count == 10 and report.unsigned == 10
    assert [note.code for note in report.notes] == ["note.unsigned"]
    assert "10 entries after the last checkpoint (count 10)" in report.notes[0].message
    assert report.notes[0].text("vi").startswith("10 mục sau điểm chốt cuối")


def test_without_checkpoints_the_limit_is_stated(built: Built) -> None:
    report = check(built, checkpoints=[])
    assert report.ok and report.signed_count == 0
    assert [note.code for note in report.notes] == ["note.no_checkpoint"]


def test_empty_ledger() -> None:
    report = verify([], [], [], ledger=LEDGER)
    assert report.ok and report.head.count == 0 and report.head.hash == genesis_hash(LEDGER)


def test_rows_may_be_plain_tuples_lists_or_a_generator(built: Built) -> None:
    assert check(built, entries=[tuple(e) for e in built.entries]).ok
    assert check(built, entries=[list(e) for e in built.entries]).ok
    assert check(built, entries=(e for e in built.entries)).ok
    lines = [cp.to_line() for cp in built.checkpoints]
    assert check(built, checkpoints=lines).ok
    assert check(built, checkpoints=[line.decode() for line in lines]).ok


def test_a_checkpoint_published_twice_is_fine(built: Built) -> None:
    twice = [*built.checkpoints, built.checkpoints[-1]]
    assert check(built, checkpoints=twice).ok


def test_unusual_but_sound_entries_take_the_slow_path_and_pass() -> None:
    key = SigningKey.generate()
    built = build(0, key=key)
    writer = built.writer
    entries = [
        writer.append("audit", "s", "alice", {"😀": 1, "\ue000": 2}),  # keys beyond U+FFFF
        writer.append("calibration.result", "x" * 512, "Nguyễn", {"n": [1, {"m": None}]}),
        writer.append("alert", "s", "alice", {}),
    ]
    entries += [writer.append(f"kind{i}", f"s{i}", f"actor{i}", {"i": i}) for i in range(50)]
    assert verify(entries, [writer.checkpoint(key)], [key.public_key], ledger=LEDGER).ok


# -- edited -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts_ns", lambda e: e.ts_ns + 1),
        ("kind", lambda e: "standard"),
        ("subject", lambda e: "standard/OTHER"),
        ("actor", lambda e: "mallory"),
        ("body_json", lambda e: e.body_json.replace("10.0000", "10.0009")),
        ("prev", lambda e: "0" * 64),
        ("hash", lambda e: "f" * 64),
    ],
)
def test_an_edited_field(built: Built, field: str, value: Any) -> None:
    entries = list(built.entries)
    entries[6] = entries[6]._replace(**{field: value(entries[6])})
    found(check(built, entries), EDITED, 7, "edited.mismatch")


def test_an_edited_sequence_number(built: Built) -> None:
    entries = list(built.entries)
    entries[6] = entries[6]._replace(seq=99)
    found(check(built, entries), EDITED, 7, "edited.seq_changed")


def test_several_edits_report_the_first(built: Built) -> None:
    entries = list(built.entries)
    for index in (12, 3, 17):
        entries[index] = entries[index]._replace(actor="mallory")
    report = check(built, entries)
    found(report, EDITED, 4)
    assert report.notes[0].code == "note.stopped"


def test_an_edit_with_its_hash_recomputed(built: Built) -> None:
    entries = list(built.entries)
    entries[6] = recomputed(entries[6], actor="mallory")
    report = check(built, entries)
    found(report, EDITED, 7, "edited.recomputed")
    assert report.finding is not None and report.finding.entry is not None
    assert report.finding.entry.actor == "mallory"  # what is known of it, as stored


def test_an_edit_of_a_checkpointed_head_with_its_hash_recomputed(built: Built) -> None:
    entries = list(built.entries)
    entries[9] = recomputed(entries[9], subject="standard/OTHER")  # entry 10, signed at 10
    found(check(built, entries), EDITED, 10, "edited.recomputed_checkpoint")


def test_the_first_and_the_last_entry_edited(built: Built) -> None:
    entries = list(built.entries)
    entries[0] = entries[0]._replace(actor="x")
    found(check(built, entries), EDITED, 1)
    entries = list(built.entries)
    entries[-1] = entries[-1]._replace(actor="x")
    found(check(built, entries), EDITED, 20)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"body_json": "not json"}, "body"),
        ({"body_json": '{"a": 1}'}, "canonical"),
        ({"body_json": '{"a":1.5}'}, "float"),
        ({"body_json": "[1]"}, "object"),
        ({"body_json": None}, "expected JSON text"),
        ({"seq": "7"}, "seq"),  # SQLite keeps what it is given: a text seq
        ({"ts_ns": -5}, "ts_ns"),
        ({"ts_ns": None}, "ts_ns"),
        ({"kind": "NOT A KIND"}, "kind"),
        ({"subject": "a\nb"}, "subject"),
        ({"prev": None}, "prev"),
        ({"hash": "short"}, "hash"),
    ],
)
def test_a_malformed_row(built: Built, change: dict[str, Any], problem: str) -> None:
    entries: list[Any] = list(built.entries)
    entries[6] = entries[6]._replace(**change)
    report = check(built, entries)
    found(report, EDITED, 7, "edited.malformed")
    assert report.finding is not None and problem in report.finding.message


@pytest.mark.parametrize("row", [None, 5, "text", (1, 2, 3), b"12345678"])
def test_garbage_rows_never_raise(built: Built, row: Any) -> None:
    entries: list[Any] = list(built.entries)
    entries[6] = row
    report = check(built, entries)
    found(report, EDITED, 7, "edited.malformed")


def forged_with_body(entry: Entry, body_json: str) -> Entry:
    """``entry`` with a body text written by hand and its hash made to match."""
    content = content_bytes(
        entry.seq,
        entry.ts_ns,
        entry.kind,
        entry.subject,
        entry.actor,
        body_json.encode(),
        entry.prev,
    )
    return entry._replace(body_json=body_json, hash=hashlib.sha256(content).hexdigest())


@pytest.mark.parametrize("body_json", ['{"n": 1}', '{"n":1.5}', '{"b":1,"a":2}', "not json"])
def test_an_unsigned_entry_outside_the_format_is_found_even_with_its_hash_right(
    built: Built, body_json: str
) -> None:
    entries = list(built.entries)
    entries[17] = forged_with_body(entries[17], body_json)  # entry 18, after checkpoint 15
    report = check(built, entries[:18], built.checkpoints[:3])
    found(report, EDITED, 18, "edited.malformed")


@pytest.mark.parametrize("body_json", ['{"n": 1}', '{"n":1.5}'])
def test_a_signed_entry_outside_the_format_is_found_by_its_checkpoint(
    built: Built, body_json: str
) -> None:
    # Under a checkpoint the signature vouches for the bodies; a hand-made one breaks it.
    entries = list(built.entries)
    entries[6] = forged_with_body(entries[6], body_json)
    report = check(built, entries)
    found(report, EDITED, 7, "edited.recomputed")
    report = check(built, rechain(entries, 7))
    found(report, REWRITTEN, 6)


# -- deleted ------------------------------------------------------------------------------------


def test_a_deleted_entry(built: Built) -> None:
    entries = list(built.entries)
    del entries[6]
    found(check(built, entries), DELETED, 7, "deleted.entries_one")


def test_deleted_entries(built: Built) -> None:
    entries = list(built.entries)
    del entries[6:9]
    report = check(built, entries)
    found(report, DELETED, 7, "deleted.entries")
    assert report.finding is not None and report.finding.last_seq == 9
    assert "entries 7 to 9 are missing" in report.finding.message


def test_the_first_entry_deleted(built: Built) -> None:
    found(check(built, built.entries[1:]), DELETED, 1)


def test_the_last_entry_deleted_is_a_truncation(built: Built) -> None:
    report = check(built, built.entries[:-1])
    found(report, TRUNCATED, 20, "truncated.checkpoint_one")
    assert report.finding is not None and report.finding.checkpoint == 4


# -- truncated ----------------------------------------------------------------------------------


def test_truncated(built: Built) -> None:
    report = check(built, built.entries[:13])
    found(report, TRUNCATED, 14, "truncated.checkpoint")
    assert report.finding is not None and report.finding.last_seq == 20


def test_truncation_of_unsigned_entries_cannot_be_seen_and_is_said(built: Built) -> None:
    # Signed up to 15; entries 16-20 removed: nothing can tell. The report says so.
    report = check(built, built.entries[:17], built.checkpoints[:3])
    assert report.ok
    assert report.unsigned == 2 and report.notes[0].code == "note.unsigned"


# -- inserted -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("copy_of", "at", "seq"),
    [(3, 9, 4), (4, 20, 5), (10, 0, 11), (0, 1, 1), (19, 20, 20), (7, 8, 8)],
)
def test_a_duplicated_entry(built: Built, copy_of: int, at: int, seq: int) -> None:
    entries = list(built.entries)
    entries.insert(at, built.entries[copy_of])
    found(check(built, entries), INSERTED, seq, "inserted.duplicate")


def test_an_entry_inserted_at_the_head_of_the_list(built: Built) -> None:
    fake = recomputed(built.entries[0], actor="mallory", body={"x": 1})
    report = check(built, [fake, *built.entries])
    found(report, INSERTED, 1, "inserted.intruder")
    assert report.finding is not None and report.finding.entry is not None
    assert report.finding.entry.actor == "mallory" and report.finding.row == 1


def test_a_second_entry_claiming_a_number_after_the_genuine_one(built: Built) -> None:
    fake = recomputed(built.entries[7], actor="mallory")
    entries = list(built.entries)
    entries.insert(8, fake)
    report = check(built, entries)
    found(report, INSERTED, 8, "inserted.second_claim")
    assert report.finding is not None and report.finding.entry is not None
    assert report.finding.entry.actor == "mallory"


def test_a_backdated_entry_placed_before_the_genuine_one(built: Built) -> None:
    fake = recomputed(built.entries[7], actor="mallory", ts_ns=built.entries[6].ts_ns)
    entries = list(built.entries)
    entries.insert(7, fake)
    report = check(built, entries)
    found(report, INSERTED, 8, "inserted.intruder")
    assert report.finding is not None and report.finding.entry is not None
    assert report.finding.entry.actor == "mallory"


def test_an_appended_entry_that_points_back(built: Built) -> None:
    last = built.entries[-1]
    fake = recomputed(last, seq=21, prev=built.entries[9].hash, ts_ns=last.ts_ns + 1)
    report = check(built, [*built.entries, fake])
    found(report, INSERTED, 21, "inserted.branch")
    assert report.finding is not None and report.finding.params["branch_of"] == 10


def test_an_appended_backdated_entry(built: Built) -> None:
    last = built.entries[-1]
    fake = recomputed(last, seq=21, prev=last.hash, ts_ns=last.ts_ns - 10**9)
    found(check(built, [*built.entries, fake]), INSERTED, 21, "inserted.backdated")


def test_another_ledgers_entries(built: Built) -> None:
    other = build(20, ledger="lab-other")
    found(check(built, other.entries, []), INSERTED, 1, "inserted.foreign")


# -- reordered ----------------------------------------------------------------------------------


def test_two_adjacent_entries_swapped(built: Built) -> None:
    entries = list(built.entries)
    entries[6], entries[7] = entries[7], entries[6]
    found(check(built, entries), REORDERED, 7, "reordered.moved")


def test_two_distant_entries_swapped(built: Built) -> None:
    entries = list(built.entries)
    entries[2], entries[16] = entries[16], entries[2]
    found(check(built, entries), REORDERED, 3, "reordered.moved")


def test_an_entry_moved_to_the_end(built: Built) -> None:
    # What a DELETE and re-INSERT does to a table read in storage order.
    entries = list(built.entries)
    entries.append(entries.pop(4))
    found(check(built, entries), REORDERED, 5)


def test_sequence_numbers_exchanged(built: Built) -> None:
    entries = list(built.entries)
    seventh, eighth = entries[6], entries[7]
    entries[6], entries[7] = eighth._replace(seq=7), seventh._replace(seq=8)
    report = check(built, entries)
    found(report, REORDERED, 7, "reordered.renumbered")
    assert report.finding is not None and report.finding.params["original"] == 8


def test_distant_sequence_numbers_exchanged(built: Built) -> None:
    entries = list(built.entries)
    third, seventeenth = entries[2], entries[16]
    entries[2], entries[16] = seventeenth._replace(seq=3), third._replace(seq=17)
    found(check(built, entries), REORDERED, 3, "reordered.renumbered")


# -- rewritten ----------------------------------------------------------------------------------


def test_a_rewritten_chain_with_fresh_hashes(built: Built) -> None:
    entries = list(built.entries)
    entries[7] = entries[7]._replace(actor="mallory")
    rewritten = rechain(entries, 7)
    assert verify(rewritten, [], [], ledger=LEDGER).ok  # consistent in itself
    report = check(built, rewritten)
    found(report, REWRITTEN, 6, "rewritten.checkpoint")
    assert report.finding is not None and report.finding.last_seq == 10
    assert report.finding.checkpoint == 2


def test_a_chain_rewritten_from_its_first_entry(built: Built) -> None:
    entries = list(built.entries)
    entries[0] = entries[0]._replace(body_json='{"n":0}')
    found(check(built, rechain(entries, 0)), REWRITTEN, 1, "rewritten.checkpoint")


def test_a_fork_the_key_holder_signed_both_sides_of(built: Built) -> None:
    other_head = Checkpoint.sign(built.key, LEDGER, 10, "ab" * 32, built.checkpoints[1].ts_ns)
    checkpoints = [*built.checkpoints[:2], other_head, *built.checkpoints[2:]]
    report = check(built, checkpoints=checkpoints)
    found(report, REWRITTEN, 10, "rewritten.checkpoint_one")
    assert report.finding is not None and report.finding.checkpoint == 3


# -- checkpoints --------------------------------------------------------------------------------


def test_a_checkpoint_with_a_bad_signature(built: Built) -> None:
    checkpoints = list(built.checkpoints)
    checkpoints[1] = checkpoints[1].model_copy(update={"sig": checkpoints[0].sig})
    report = check(built, checkpoints=checkpoints)
    found(report, FORGED, 10, "checkpoint_forged.signature")
    assert report.finding is not None and report.finding.checkpoint == 2


def test_a_checkpoint_signed_by_an_unknown_key(built: Built) -> None:
    stranger = SigningKey.generate()
    forged = Checkpoint.sign(stranger, LEDGER, 20, built.entries[-1].hash, 1)
    found(
        check(built, checkpoints=[*built.checkpoints, forged]),
        FORGED,
        20,
        "checkpoint_forged.unknown_key",
    )


def test_checkpoints_of_a_key_nobody_trusts(built: Built) -> None:
    found(check(built, trusted=[SigningKey.generate()]), FORGED, 5, "checkpoint_forged.unknown_key")


def test_a_checkpoint_from_another_ledger(built: Built) -> None:
    other = build(5, key=built.key, checkpoints_at=[5], ledger="lab-other")
    report = check(built, checkpoints=[*built.checkpoints, *other.checkpoints])
    found(report, FORGED, 5, "checkpoint_forged.other_ledger")
    assert report.finding is not None and report.finding.params["other"] == "lab-other"


def test_a_replayed_old_checkpoint(built: Built) -> None:
    report = check(built, checkpoints=[*built.checkpoints, built.checkpoints[0]])
    found(report, REPLAYED, 5, "checkpoint_replayed.order")
    assert report.finding is not None and report.finding.checkpoint == 5


def test_a_replayed_checkpoint_after_a_truncation(built: Built) -> None:
    report = check(built, built.entries[:15], [*built.checkpoints, built.checkpoints[2]])
    assert {f.kind for f in report.findings} == {REPLAYED, TRUNCATED}
    found(report, REPLAYED, 15)


def test_a_truncation_with_its_checkpoints_cut_cannot_be_seen_and_is_said(built: Built) -> None:
    # The limit of a file beside the database: who cuts the ledger can cut this file too.
    # A copy elsewhere (MQTT retained, a second store, the hub) is what catches it.
    report = check(built, built.entries[:15], built.checkpoints[:3])
    assert report.ok and report.signed_count == 15
    assert not check(built, built.entries[:15], built.checkpoints).ok


@pytest.mark.parametrize("line", ["garbage", '{"count":1}', "", b"\xff\xfe"])
def test_an_unreadable_checkpoint_line(built: Built, line: str | bytes) -> None:
    report = check(built, checkpoints=[*built.checkpoints, line])
    assert not report.ok and report.finding is not None
    assert report.finding.code == "checkpoint_forged.malformed"
    assert report.finding.checkpoint == 5


def test_a_checkpoint_beyond_the_chain_by_an_unknown_key_is_a_forgery_not_a_truncation(
    built: Built,
) -> None:
    forged = Checkpoint.sign(SigningKey.generate(), LEDGER, 50, "ab" * 32, 1)
    found(check(built, checkpoints=[*built.checkpoints, forged]), FORGED, 50)


def test_a_checkpoint_at_count_zero(built: Built) -> None:
    zero = Checkpoint.sign(built.key, LEDGER, 0, genesis_hash(LEDGER), 1)
    assert check(built, checkpoints=[zero, *built.checkpoints]).ok
    wrong = Checkpoint.sign(built.key, LEDGER, 0, "ab" * 32, 1)
    assert not check(built, checkpoints=[wrong, *built.checkpoints]).ok


# -- a real table -------------------------------------------------------------------------------

COLUMNS = "seq, ts_ns, kind, subject, actor, body_json, prev, hash"


@pytest.fixture
def table(built: Built) -> Iterable[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE ledger (seq INTEGER, ts_ns INTEGER, kind TEXT, subject TEXT, actor TEXT, "
        "body_json TEXT, prev TEXT, hash TEXT)"
    )
    connection.executemany(
        f"INSERT INTO ledger ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", built.entries
    )
    yield connection
    connection.close()


def rows(connection: sqlite3.Connection, order: str = "seq") -> Any:
    return connection.execute(f"SELECT {COLUMNS} FROM ledger ORDER BY {order}")


@pytest.mark.parametrize(
    ("statement", "kind", "seq", "order"),
    [
        (None, None, None, "seq"),
        ("UPDATE ledger SET actor = 'mallory' WHERE seq = 7", EDITED, 7, "seq"),
        ("UPDATE ledger SET seq = 'seven' WHERE seq = 7", EDITED, 7, "rowid"),
        ("UPDATE ledger SET body_json = '{}' WHERE seq = 3", EDITED, 3, "seq"),
        ("DELETE FROM ledger WHERE seq = 7", DELETED, 7, "seq"),
        ("DELETE FROM ledger WHERE seq >= 12", TRUNCATED, 12, "seq"),
        (
            "INSERT INTO ledger SELECT * FROM ledger WHERE seq = 4; DELETE FROM ledger "
            "WHERE rowid = 4",
            REORDERED,
            4,
            "rowid",
        ),
        ("INSERT INTO ledger SELECT * FROM ledger WHERE seq = 4", INSERTED, 4, "seq"),
    ],
)
def test_tampering_with_a_sqlite_table(
    built: Built,
    table: sqlite3.Connection,
    statement: str | None,
    kind: TamperKind | None,
    seq: int | None,
    order: str,
) -> None:
    if statement:
        table.executescript(statement)
    report = check(built, rows(table, order))
    if kind is None:
        assert report.ok
    else:
        assert seq is not None
        found(report, kind, seq)


# -- streaming and the unsigned tail ------------------------------------------------------------


def test_rows_stream_through_in_constant_memory_per_row() -> None:
    import tracemalloc

    from ledger import ChainHead, LedgerWriter

    from .support import Clock, body

    key = SigningKey.generate()
    count = 6000
    checkpoints: list[Checkpoint] = []

    def rows() -> Any:
        writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
        for i in range(1, count + 1):
            yield writer.append("audit", f"subject-{i}", "alice", body(i))
            if i == count:
                checkpoints.append(writer.checkpoint(key))

    tracemalloc.start()
    try:
        report = verify(rows(), [], [key.public_key], ledger=LEDGER)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.head.count == count
    # 6,000 entries held at once would take over 3 MB; the walk keeps a 32-byte digest
    # per entry and bounded caches.
    assert peak < 1_000_000, peak


def test_an_entry_slipped_into_the_unsigned_tail(built: Built) -> None:
    # Linked right, after the last checkpoint: nothing tells it from a genuine entry, and the
    # report says such entries are not yet vouched for...
    last = built.entries[-1]
    slipped = recomputed(last, seq=21, prev=last.hash, actor="mallory", ts_ns=last.ts_ns + 1)
    report = check(built, [*built.entries, slipped])
    assert report.ok and report.unsigned == 1
    # ...but the writer, which never saw it, appends its own entry 21 next: the two collide.
    genuine = built.writer.prepare("audit", "s", "alice", {"n": 21})
    report = check(built, [*built.entries, slipped, genuine])
    found(report, INSERTED, 21)
