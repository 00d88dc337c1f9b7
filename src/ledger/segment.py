"""Segments: a run of a ledger's entries and the checkpoints that sign them, for a hub.

A lab pushes its ledger to a hub in segments, in order, from the hub's cursor::

    {"format": "etalon-ledger/1", "ledger": "lab-a", "from_seq": 101, "to_seq": 250,
     "entries": [ {entry 101}, ... {entry 250} ],       # Entry.to_wire(): body as an object
     "checkpoints": [ {checkpoint counting 180}, {checkpoint counting 250} ]}

Rules the exporter keeps and ``verify_segment`` holds the segment to:

- a segment ends on a checkpoint: its last checkpoint counts ``to_seq``, so every entry it
  brings is covered by a signature (no unsigned tail reaches the hub);
- it carries the checkpoints with ``from_seq <= count <= to_seq``, in order;
- it may start before the hub's head (a resumed or repeated push): entries the hub already has
  are recognised by hash (the chain must pass through the hub's head) and not stored again.

``verify_segment(segment, previous_head, enrolled_keys)`` checks continuity from the hub's head,
the chain, the canonical bodies, the signatures and the key rotations, and either accepts (the
new entries, the new head, the keys the lab rotated to) or refuses with a reason and a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from ledger.canonical import canonical_json_parsed
from ledger.checkpoint import Checkpoint
from ledger.entry import (
    KIND_MAX,
    KIND_PATTERN,
    LEDGER_FORMAT,
    NS_STRING_PATTERN,
    SEQ_MAX,
    ChainHead,
    Entry,
    HashHex,
    LedgerId,
    WireModel,
)
from ledger.errors import SegmentError
from ledger.findings import Finding, TamperKind, tamper_finding
from ledger.key_state import KeyState
from ledger.keys import PublicKey
from ledger.messages import render
from ledger.verification import (
    beyond_head_findings,
    group_by_count,
    screen_checkpoints,
    unanchored_findings,
)
from ledger.walk import Walk

MAX_SEGMENT_ENTRIES: Final = 10_000
MAX_SEGMENT_CHECKPOINTS: Final = 1_000


class WireEntry(WireModel):
    """An entry on the wire: the hashed content, ``hash``, the body as a JSON object."""

    seq: int = Field(ge=1, le=SEQ_MAX)
    # A plain pattern, checked by pydantic's core: a segment holds thousands of these.
    ts_ns: str = Field(
        pattern=NS_STRING_PATTERN,
        description="nanoseconds since 1970-01-01 UTC, as a decimal string",
    )
    kind: str = Field(pattern=KIND_PATTERN, max_length=KIND_MAX)
    subject: str
    actor: str
    body: dict[str, Any]
    prev: HashHex
    hash: HashHex

    @classmethod
    def of(cls, entry: Entry) -> WireEntry:
        """The wire form of a stored entry (``Entry.to_wire()``, validated)."""
        return cls(**entry.to_wire())

    def to_entry(self) -> Entry:
        """The stored form; a body with no canonical form is kept as non-canonical text, which
        the verifier then refuses as malformed (it is not what the lab hashed)."""
        canonical = canonical_json_parsed(self.body)
        body_json = json.dumps(self.body) if canonical is None else canonical.decode()
        return Entry(
            self.seq,
            int(self.ts_ns),
            self.kind,
            self.subject,
            self.actor,
            body_json,
            self.prev,
            self.hash,
        )


class Segment(WireModel):
    """Entries ``from_seq``..``to_seq`` of ledger ``ledger`` and the checkpoints signing them."""

    format: Literal["etalon-ledger/1"] = LEDGER_FORMAT
    ledger: LedgerId
    from_seq: int = Field(ge=1, le=SEQ_MAX)
    to_seq: int = Field(ge=1, le=SEQ_MAX)
    entries: tuple[WireEntry, ...] = Field(min_length=1, max_length=MAX_SEGMENT_ENTRIES)
    checkpoints: tuple[Checkpoint, ...] = Field(max_length=MAX_SEGMENT_CHECKPOINTS)

    @model_validator(mode="after")
    def _range(self) -> Segment:
        if self.to_seq < self.from_seq:
            raise ValueError(f"to_seq {self.to_seq} is before from_seq {self.from_seq}")
        if self.to_seq - self.from_seq + 1 > MAX_SEGMENT_ENTRIES:
            raise ValueError(f"a segment holds at most {MAX_SEGMENT_ENTRIES} entries")
        return self

    def to_json(self) -> bytes:
        """The segment as JSON (what a lab sends)."""
        return self.model_dump_json().encode()


def segment_json_schema() -> dict[str, Any]:
    """The JSON Schema of a segment (for ``etalon schema`` and the hub's API)."""
    return Segment.model_json_schema()


SCHEMAS: Final = {
    "ledger-segment": Segment,
    "ledger-checkpoint": Checkpoint,
    "ledger-head": ChainHead,
}
"""Wire models whose JSON Schema ``etalon schema`` publishes."""


def export_segment(
    entries: Iterable[Iterable[Any]],
    checkpoints: Iterable[Checkpoint],
    *,
    ledger: str,
    from_seq: int,
    to_seq: int | None = None,
    max_entries: int = MAX_SEGMENT_ENTRIES,
) -> Segment:
    """A segment from ``from_seq`` to a checkpoint: ``to_seq``, or the last one within
    ``max_entries``.

    ``entries``: the ledger's rows in order (those outside the range are skipped), e.g.
    ``SELECT ... WHERE seq >= ? ORDER BY seq``. Raises ``SegmentError`` when no checkpoint ends
    the range (make one first) or entries are missing.
    """
    if not 1 <= max_entries <= MAX_SEGMENT_ENTRIES:
        raise SegmentError(f"max_entries must be 1 to {MAX_SEGMENT_ENTRIES}")
    own = [cp for cp in checkpoints if cp.ledger == ledger]
    limit = from_seq + max_entries - 1
    if to_seq is None:
        counts = [cp.count for cp in own if from_seq <= cp.count <= limit]
        if not counts:
            raise SegmentError(
                f"no checkpoint counts between {from_seq} and {limit}: make one first"
            )
        to_seq = max(counts)
    elif to_seq > limit:
        raise SegmentError(f"{to_seq - from_seq + 1} entries: at most {max_entries} per segment")
    elif not any(cp.count == to_seq for cp in own):
        raise SegmentError(f"no checkpoint counts {to_seq}: a segment ends on a checkpoint")
    selected: list[WireEntry] = []
    for raw in entries:
        entry = raw if isinstance(raw, Entry) else Entry(*raw)
        if from_seq <= entry.seq <= to_seq:
            selected.append(WireEntry.of(entry))
        elif entry.seq > to_seq:
            break
    if [e.seq for e in selected] != list(range(from_seq, to_seq + 1)):
        raise SegmentError(f"the entries given do not hold {from_seq} to {to_seq} in order")
    signing: list[Checkpoint] = []
    seen: set[bytes] = set()
    for cp in sorted(own, key=lambda cp: cp.count):
        if from_seq <= cp.count <= to_seq and cp.to_json() not in seen:
            seen.add(cp.to_json())
            signing.append(cp)
    return Segment(
        ledger=ledger,
        from_seq=from_seq,
        to_seq=to_seq,
        entries=tuple(selected),
        checkpoints=tuple(signing),
    )


class SegmentReason(StrEnum):
    """Why a hub refuses a segment."""

    FORGED = "forged"
    WRONG_KEY = "wrong_key"
    WRONG_LEDGER = "wrong_ledger"
    EDITED = "edited"
    GAP = "gap"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    REPLAYED = "replayed"
    UNSIGNED = "unsigned"
    STALE = "stale"


_REASONS: Final = {
    TamperKind.EDITED: SegmentReason.EDITED,
    TamperKind.DELETED: SegmentReason.GAP,
    TamperKind.INSERTED: SegmentReason.INSERTED,
    TamperKind.REORDERED: SegmentReason.REORDERED,
    TamperKind.TRUNCATED: SegmentReason.TRUNCATED,
    TamperKind.REWRITTEN: SegmentReason.REWRITTEN,
    TamperKind.CHECKPOINT_FORGED: SegmentReason.FORGED,
    TamperKind.CHECKPOINT_REPLAYED: SegmentReason.REPLAYED,
    TamperKind.ROTATION_FORGED: SegmentReason.FORGED,
}
_KEY_CODES: Final = frozenset(
    {
        "checkpoint_forged.wrong_key",
        "checkpoint_forged.unknown_key",
        "checkpoint_forged.untrusted_chain",
        "rotation_forged.wrong_old_key",
        "rotation_forged.untrusted",
    }
)


@dataclass(frozen=True)
class SegmentVerdict:
    """What the hub does with a segment: store ``new_entries`` and move to ``head``, or not."""

    accepted: bool
    reason: SegmentReason | None
    code: str | None
    params: Mapping[str, str | int]
    finding: Finding | None
    new_entries: tuple[Entry, ...]
    """Entries after the hub's head, in order (empty for a repeated push)."""
    known_entries: int
    """Entries the hub already had (recognised by hash)."""
    head: ChainHead
    """The head after the segment if accepted, the previous head otherwise."""
    new_keys: tuple[PublicKey, ...]
    """Keys the lab rotated to within the new entries: add them to the lab's keys."""

    def text(self, lang: str = "en") -> str:
        """Why it was refused (or that it was accepted), in ``lang``."""
        if self.code is None:
            return render("segment.accepted", self.params, lang)
        return render(self.code, self.params, lang)

    @property
    def message(self) -> str:
        """``text("en")``."""
        return self.text()


def _refuse(
    reason: SegmentReason,
    code: str,
    head: ChainHead,
    finding: Finding | None = None,
    **params: str | int,
) -> SegmentVerdict:
    return SegmentVerdict(
        accepted=False,
        reason=reason,
        code=code,
        params=dict(finding.params) if finding is not None else params,
        finding=finding,
        new_entries=(),
        known_entries=0,
        head=head,
        new_keys=(),
    )


def _refuse_finding(finding: Finding, head: ChainHead) -> SegmentVerdict:
    reason = _REASONS[finding.kind]
    if finding.code in _KEY_CODES:
        reason = SegmentReason.WRONG_KEY
    return _refuse(reason, finding.code, head, finding)


def verify_segment(
    segment: Segment,
    previous_head: ChainHead | None,
    enrolled_keys: Iterable[PublicKey],
    *,
    known_hash: Callable[[int], str | None] | None = None,
) -> SegmentVerdict:
    """Judge ``segment`` against the hub's head for the lab and the lab's enrolled keys.

    ``previous_head``: the hub's head for this ledger (None before the first push).
    ``enrolled_keys``: the lab's keys the hub trusts (the enrolled key and the keys accepted
    rotations brought in; not revoked ones).
    ``known_hash``: the hash the hub holds for a sequence number; needed only to recognise a
    repeated segment that ends before the hub's head.
    """
    ledger = segment.ledger
    head = previous_head if previous_head is not None else ChainHead.start(ledger)
    if head.ledger != ledger:
        return _refuse(
            SegmentReason.WRONG_LEDGER,
            "segment.wrong_ledger",
            head,
            other=ledger,
            ledger=head.ledger,
        )
    enrolled = {key.key_id: key for key in enrolled_keys}
    from_seq, to_seq = segment.from_seq, segment.to_seq
    if from_seq > head.count + 1:
        return _refuse(
            SegmentReason.GAP,
            "segment.gap",
            head,
            from_seq=from_seq,
            count=head.count,
            missing=head.count + 1,
        )
    known: dict[int, str] = {}
    if from_seq == head.count + 1:
        start = head
    else:
        before = known_hash(from_seq - 1) if known_hash is not None and from_seq > 1 else None
        if from_seq == 1:
            before = ChainHead.start(ledger).hash
        first_prev = segment.entries[0].prev
        start = ChainHead(ledger=ledger, count=from_seq - 1, hash=before or first_prev)
        if to_seq >= head.count:
            known[head.count] = head.hash
        else:
            at_end = known_hash(to_seq) if known_hash is not None else None
            if at_end is None:
                return _refuse(
                    SegmentReason.STALE,
                    "segment.stale",
                    head,
                    to_seq=to_seq,
                    count=head.count,
                )
            known[to_seq] = at_end
    if head.key is not None:
        current = enrolled.get(head.key)
        if current is None:
            return _refuse(SegmentReason.WRONG_KEY, "segment.key_not_enrolled", head, key=head.key)
        keys = KeyState(
            enrolled,
            current=current,
            anchored=True,
            epochs=[[head.count + 1, current.key_id, True]],
        )
    else:
        keys = KeyState(enrolled, epochs=[[head.count + 1, None, False]])
    # Every screening finding counts (a foreign or replayed checkpoint has no business in a
    # segment); checkpoints up to the hub's head were judged when those entries came.
    usable, findings, _ = screen_checkpoints(ledger, segment.checkpoints)
    usable = [(n, cp) for n, cp in usable if cp.count > head.count]
    walk = Walk(
        ledger,
        start,
        keys,
        group_by_count([(n, cp) for n, cp in usable if cp.count <= to_seq]),
        quiet_until=head.count,
        signed=head.count,
        known=known,
    )
    rows = [entry.to_entry() for entry in segment.entries]
    walk.start()
    walk.run(rows)
    findings.extend(walk.findings)
    if not walk.stopped:
        if walk.count > to_seq:
            findings.append(
                tamper_finding(TamperKind.INSERTED, "inserted.extra", to_seq + 1, to_seq=to_seq)
            )
        findings.extend(unanchored_findings(walk))
        findings.extend(
            beyond_head_findings(walk, [(n, cp) for n, cp in usable if cp.count > to_seq])
        )
        if walk.count < to_seq and not findings:
            findings.append(
                tamper_finding(
                    TamperKind.TRUNCATED,
                    "truncated.segment",
                    walk.count + 1,
                    last_seq=to_seq,
                    count=walk.count,
                )
            )
    if findings:
        findings.sort(key=lambda f: (f.seq if f.seq is not None else 0, f.checkpoint or 0))
        return _refuse_finding(findings[0], head)
    if to_seq > head.count and walk.signed_count < to_seq:
        return _refuse(
            SegmentReason.UNSIGNED,
            "segment.unsigned",
            head,
            signed_count=walk.signed_count,
            to_seq=to_seq,
        )
    new = tuple(row for row in rows if row.seq > head.count)
    new_head = head
    if to_seq > head.count:
        new_head = ChainHead(
            ledger=ledger,
            count=walk.count,
            hash=walk.head,
            ts_ns=walk.last_ts,
            key=None if walk.keys.current is None else walk.keys.current.key_id,
        )
    return SegmentVerdict(
        accepted=True,
        reason=None,
        code=None,
        params={"new": len(new), "known": len(segment.entries) - len(new), "count": new_head.count},
        finding=None,
        new_entries=new,
        known_entries=len(segment.entries) - len(new),
        head=new_head,
        new_keys=tuple(walk.introduced),
    )
