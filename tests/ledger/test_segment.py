"""Segments for a hub: export, the wire model and its schema, and verify_segment's verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from ledger import (
    ChainHead,
    Checkpoint,
    Entry,
    LedgerWriter,
    Segment,
    SegmentError,
    SegmentReason,
    SegmentVerdict,
    SigningKey,
    export_segment,
    segment_json_schema,
    verify_segment,
)
from ledger.segment import MAX_SEGMENT_ENTRIES, SCHEMAS, WireEntry

from .support import LEDGER, Built, Clock, build, rechain


@pytest.fixture(scope="module")
def lab() -> Built:
    """30 entries signed at 10, 20 and 30."""
    return build(30, checkpoints_at=[10, 20, 30])


def segment(lab: Built, from_seq: int, to_seq: int | None = None) -> Segment:
    return export_segment(
        lab.entries, lab.checkpoints, ledger=LEDGER, from_seq=from_seq, to_seq=to_seq
    )


def push(seg: Segment, head: ChainHead | None, keys: list[SigningKey], **kw: Any) -> SegmentVerdict:
    # Through JSON, as a hub receives it.
    received = Segment.model_validate_json(seg.to_json())
    return verify_segment(received, head, [k.public_key for k in keys], **kw)


def refused(verdict: SegmentVerdict, reason: SegmentReason, code: str | None = None) -> None:
    assert not verdict.accepted, "the hub took a bad segment"
    assert verdict.reason == reason, verdict.message
    if code is not None:
        assert verdict.code == code, verdict.message
    assert verdict.new_entries == ()
    assert verdict.text("vi") != verdict.message


def edit_entry(seg: Segment, index: int, **changes: Any) -> Segment:
    entries = list(seg.entries)
    entries[index] = entries[index].model_copy(update=changes)
    return seg.model_copy(update={"entries": tuple(entries)})


# -- export and the wire model ------------------------------------------------------------------


def test_export_ends_on_the_last_checkpoint_it_can(lab: Built) -> None:
    seg = segment(lab, 1)
    assert (seg.from_seq, seg.to_seq) == (1, 30)
    assert [e.seq for e in seg.entries] == list(range(1, 31))
    assert [cp.count for cp in seg.checkpoints] == [10, 20, 30]
    small = export_segment(lab.entries, lab.checkpoints, ledger=LEDGER, from_seq=11, max_entries=15)
    assert (small.from_seq, small.to_seq) == (11, 20)
    assert [cp.count for cp in small.checkpoints] == [20]


def test_export_refuses_a_range_without_a_checkpoint_at_its_end(lab: Built) -> None:
    with pytest.raises(SegmentError, match="no checkpoint counts 25"):
        segment(lab, 21, 25)
    with pytest.raises(SegmentError, match="make one first"):
        export_segment(lab.entries, lab.checkpoints, ledger=LEDGER, from_seq=31)
    with pytest.raises(SegmentError, match="in order"):
        export_segment(lab.entries[:15], lab.checkpoints, ledger=LEDGER, from_seq=1, to_seq=20)
    with pytest.raises(SegmentError, match="at most"):
        export_segment(
            lab.entries, lab.checkpoints, ledger=LEDGER, from_seq=1, to_seq=30, max_entries=5
        )


def test_the_wire_form(lab: Built) -> None:
    seg = segment(lab, 1, 10)
    data = json.loads(seg.to_json())
    assert data["format"] == "etalon-ledger/1"
    assert data["entries"][0]["ts_ns"] == str(lab.entries[0].ts_ns)
    assert data["entries"][0]["body"] == lab.entries[0].body
    assert data["checkpoints"][0]["ts_ns"] == str(lab.checkpoints[0].ts_ns)
    assert Segment.model_validate_json(seg.to_json()) == seg
    assert WireEntry.of(lab.entries[3]).to_entry() == lab.entries[3]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d | {"extra": 1},
        lambda d: d | {"format": "etalon-ledger/2"},
        lambda d: d | {"to_seq": 0},
        lambda d: d | {"from_seq": 11, "to_seq": 10},
        lambda d: d | {"entries": []},
        lambda d: d | {"ledger": "two words"},
        lambda d: d | {"entries": [d["entries"][0] | {"ts_ns": 5}]},
        lambda d: d | {"entries": [d["entries"][0] | {"seq": "1"}]},
        lambda d: d | {"entries": [d["entries"][0] | {"hash": "x"}]},
        lambda d: d | {"entries": [d["entries"][0] | {"surplus": True}]},
        lambda d: d | {"entries": [d["entries"][0] | {"body": [1]}]},
        lambda d: d | {"checkpoints": [d["checkpoints"][0] | {"sig": 1}]},
        lambda d: d | {"from_seq": 1, "to_seq": MAX_SEGMENT_ENTRIES + 1},
    ],
)
def test_hostile_segments_are_refused_by_the_model(lab: Built, mutate: Any) -> None:
    data = json.loads(segment(lab, 1, 10).to_json())
    with pytest.raises(ValidationError):
        Segment.model_validate_json(json.dumps(mutate(data)))


def test_the_json_schema(lab: Built) -> None:
    schema = segment_json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"ledger", "from_seq", "to_seq", "entries", "checkpoints"}
    entry = schema["$defs"]["WireEntry"]
    checkpoint = schema["$defs"]["Checkpoint"]
    for model in (entry, checkpoint):
        assert model["additionalProperties"] is False
        assert model["properties"]["ts_ns"]["type"] == "string"
    assert entry["properties"]["hash"]["pattern"] == "^[0-9a-f]{64}$"
    # every field of a real segment is described
    data = json.loads(segment(lab, 1, 10).to_json())
    assert set(data) <= set(schema["properties"])
    assert set(data["entries"][0]) == set(entry["properties"])
    assert set(data["checkpoints"][0]) == set(checkpoint["properties"])
    assert set(SCHEMAS) == {"ledger-segment", "ledger-checkpoint", "ledger-head"}


# -- accepted -----------------------------------------------------------------------------------


def test_a_first_push_then_the_next(lab: Built) -> None:
    first = push(segment(lab, 1, 20), None, lab.keys)
    assert first.accepted and first.reason is None, first.message
    assert first.new_entries == tuple(lab.entries[:20]) and first.known_entries == 0
    assert (first.head.count, first.head.hash) == (20, lab.entries[19].hash)
    assert first.head.key == lab.key.key_id
    assert first.message == "accepted: 20 new entries, 0 already held; the head is now 20"
    second = push(segment(lab, 21), first.head, lab.keys)
    assert second.accepted and second.new_entries == tuple(lab.entries[20:])
    assert second.head.count == 30


def test_a_repeated_push_is_recognised(lab: Built) -> None:
    first = push(segment(lab, 1, 20), None, lab.keys)
    again = push(segment(lab, 1, 20), first.head, lab.keys)
    assert again.accepted and again.new_entries == () and again.known_entries == 20
    assert again.head == first.head


def test_a_resumed_push_overlapping_the_head(lab: Built) -> None:
    first = push(segment(lab, 1, 20), None, lab.keys)
    resumed = push(segment(lab, 11), first.head, lab.keys)
    assert resumed.accepted, resumed.message
    assert resumed.known_entries == 10 and resumed.new_entries == tuple(lab.entries[20:])


def test_a_stale_segment_needs_the_hubs_hashes(lab: Built) -> None:
    head = push(segment(lab, 1), None, lab.keys).head
    refused(push(segment(lab, 1, 10), head, lab.keys), SegmentReason.STALE)
    hashes = {e.seq: e.hash for e in lab.entries}
    verdict = push(segment(lab, 1, 10), head, lab.keys, known_hash=hashes.get)
    assert verdict.accepted and verdict.known_entries == 10 and verdict.head == head


def test_a_rotation_inside_a_segment_brings_the_new_key() -> None:
    k1, k2 = SigningKey.generate(), SigningKey.generate()
    writer = LedgerWriter(ChainHead.start(LEDGER), clock=Clock())
    entries: list[Entry] = [writer.append("audit", "s", "a", {"i": i}) for i in range(5)]
    checkpoints: list[Checkpoint] = [writer.checkpoint(k1)]
    entries.append(writer.rotate(k1, k2, "admin"))
    entries += [writer.append("audit", "s", "a", {"i": i}) for i in range(4)]
    checkpoints.append(writer.checkpoint(k2))
    first = verify_segment(
        export_segment(entries, checkpoints, ledger=LEDGER, from_seq=1, to_seq=5),
        None,
        [k1.public_key],
    )
    second = verify_segment(
        export_segment(entries, checkpoints, ledger=LEDGER, from_seq=6), first.head, [k1.public_key]
    )
    assert second.accepted, second.message
    assert second.new_keys == (k2.public_key,) and second.head.key == k2.key_id
    more = [writer.append("audit", "s", "a", {"i": 9})]
    third = verify_segment(
        export_segment(entries + more, [writer.checkpoint(k2)], ledger=LEDGER, from_seq=11),
        second.head,
        [k1.public_key, *second.new_keys],
    )
    assert third.accepted, third.message
    refused(
        verify_segment(
            export_segment(entries + more, [writer.checkpoint(k2)], ledger=LEDGER, from_seq=11),
            second.head,
            [k1.public_key],  # the hub forgot the key the rotation brought
        ),
        SegmentReason.WRONG_KEY,
        "segment.key_not_enrolled",
    )


# -- refused ------------------------------------------------------------------------------------


def test_a_gap(lab: Built) -> None:
    head = push(segment(lab, 1, 10), None, lab.keys).head
    refused(push(segment(lab, 21), head, lab.keys), SegmentReason.GAP, "segment.gap")


def test_a_segment_from_the_middle_as_a_first_push(lab: Built) -> None:
    refused(push(segment(lab, 11), None, lab.keys), SegmentReason.GAP)


def test_reordered_entries(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    entries = list(seg.entries)
    entries[4], entries[5] = entries[5], entries[4]
    verdict = push(seg.model_copy(update={"entries": tuple(entries)}), None, lab.keys)
    refused(verdict, SegmentReason.REORDERED)
    assert verdict.finding is not None and verdict.finding.seq == 5


def test_an_edited_entry(lab: Built) -> None:
    verdict = push(edit_entry(segment(lab, 1, 20), 7, actor="mallory"), None, lab.keys)
    refused(verdict, SegmentReason.EDITED)
    assert verdict.finding is not None and verdict.finding.seq == 8


def test_a_float_smuggled_into_a_body(lab: Built) -> None:
    data = json.loads(segment(lab, 1, 10).to_json())
    data["entries"][3]["body"]["details"]["value"] = 10.000004
    verdict = verify_segment(
        Segment.model_validate_json(json.dumps(data)), None, [lab.key.public_key]
    )
    refused(verdict, SegmentReason.EDITED, "edited.malformed")


def test_a_truncated_segment(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    refused(
        push(seg.model_copy(update={"entries": seg.entries[:-1]}), None, lab.keys),
        SegmentReason.TRUNCATED,
    )
    beyond = seg.model_copy(update={"checkpoints": (*seg.checkpoints, lab.checkpoints[2])})
    refused(push(beyond, None, lab.keys), SegmentReason.TRUNCATED, "truncated.checkpoint")


def test_a_deleted_entry(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    entries = list(seg.entries)
    del entries[3]
    refused(
        push(seg.model_copy(update={"entries": tuple(entries)}), None, lab.keys), SegmentReason.GAP
    )


def test_an_extra_entry(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    extra = seg.model_copy(update={"entries": (*seg.entries, WireEntry.of(lab.entries[20]))})
    refused(push(extra, None, lab.keys), SegmentReason.INSERTED, "inserted.extra")


def test_a_forged_checkpoint(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    bad = seg.checkpoints[1].model_copy(update={"sig": seg.checkpoints[0].sig})
    verdict = push(
        seg.model_copy(update={"checkpoints": (seg.checkpoints[0], bad)}), None, lab.keys
    )
    refused(verdict, SegmentReason.FORGED, "checkpoint_forged.signature")


def test_signed_with_the_wrong_key(lab: Built) -> None:
    other_lab = SigningKey.generate()
    refused(push(segment(lab, 1, 20), None, [other_lab]), SegmentReason.WRONG_KEY)
    seg = segment(lab, 1, 20)
    resigned = tuple(
        Checkpoint.sign(other_lab, LEDGER, cp.count, cp.head, cp.ts_ns) for cp in seg.checkpoints
    )
    verdict = push(seg.model_copy(update={"checkpoints": resigned}), None, lab.keys)
    refused(verdict, SegmentReason.WRONG_KEY)


def test_an_unsigned_tail(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    refused(
        push(seg.model_copy(update={"checkpoints": seg.checkpoints[:1]}), None, lab.keys),
        SegmentReason.UNSIGNED,
        "segment.unsigned",
    )


def test_a_replayed_checkpoint(lab: Built) -> None:
    seg = segment(lab, 1, 20)
    replay = seg.model_copy(update={"checkpoints": (*seg.checkpoints, seg.checkpoints[0])})
    refused(push(replay, None, lab.keys), SegmentReason.REPLAYED)


def test_another_ledgers_segment(lab: Built) -> None:
    head = push(segment(lab, 1, 10), None, lab.keys).head
    other = build(10, key=lab.key, checkpoints_at=[10], ledger="lab-other")
    seg = export_segment(other.entries, other.checkpoints, ledger="lab-other", from_seq=1)
    refused(push(seg, head, lab.keys), SegmentReason.WRONG_LEDGER)


def test_a_revoked_key(lab: Built) -> None:
    head = push(segment(lab, 1, 10), None, lab.keys).head
    refused(
        push(segment(lab, 11, 20), head, []), SegmentReason.WRONG_KEY, "segment.key_not_enrolled"
    )


def test_a_history_that_forks_from_what_the_hub_holds(lab: Built) -> None:
    # The key holder signs a different history for entries the hub already has.
    head = push(segment(lab, 1, 20), None, lab.keys).head
    entries = list(lab.entries)
    entries[14] = entries[14]._replace(actor="mallory")
    forked = rechain(entries, 14)
    writer = LedgerWriter(
        ChainHead(ledger=LEDGER, count=30, hash=forked[-1].hash, ts_ns=forked[-1].ts_ns)
    )
    seg = export_segment(forked, [writer.checkpoint(lab.key)], ledger=LEDGER, from_seq=11)
    verdict = push(seg, head, lab.keys)
    refused(verdict, SegmentReason.REWRITTEN, "rewritten.known_head")
    assert verdict.finding is not None and verdict.finding.seq == 20
