"""Explaining a break: what happened at the first row that does not follow the chain (edited,
deleted, inserted, reordered), worked out from the walk's state and the rest of the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.findings import Finding, TamperKind, tamper_finding
from ledger.rows import StoredRow

if TYPE_CHECKING:
    from ledger.walk import Walk


class BreakExplainer:
    """Works out what happened at the first row that does not follow the chain."""

    def __init__(self, walk: Walk, rest: list[StoredRow]) -> None:
        self.walk = walk
        self.rest = rest
        self.by_hash: dict[str, list[StoredRow]] = {}
        self.by_prev: dict[str, list[StoredRow]] = {}
        self.by_seq: dict[int, list[StoredRow]] = {}
        for row in rest:
            if row.hash is not None:
                self.by_hash.setdefault(row.hash, []).append(row)
            if row.prev is not None:
                self.by_prev.setdefault(row.prev, []).append(row)
            if row.seq is not None:
                self.by_seq.setdefault(row.seq, []).append(row)

    def vouched(self, digest: str | None, besides: StoredRow | None = None) -> bool:
        """Whether a row other than ``besides`` names ``digest`` as its prev."""
        return digest is not None and any(
            row is not besides for row in self.by_prev.get(digest, ())
        )

    def origin(self, row: StoredRow, depth: int = 0) -> int | None:
        """The sequence number ``row``'s prev link gives it, following moved rows back."""
        walk = self.walk
        if row.prev is None or depth > 64:
            return None
        if row.prev == walk.genesis and walk.base == 0:
            return 1
        before = walk.seq_of(row.prev)
        if before is not None:
            return before + 1
        for earlier in self.by_hash.get(row.prev, ()):
            if earlier is row:
                continue
            if earlier.selfok and earlier.seq is not None:
                return earlier.seq + 1
            found = self.origin(earlier, depth + 1)
            if found is not None and earlier.hash_with_seq(found) == earlier.hash:
                return found + 1
        return None

    def finding(self) -> Finding:
        walk = self.walk
        row = self.rest[0]
        m = walk.count
        s = m + 1
        last = walk.last_row()
        if row.problem is not None:
            return tamper_finding(
                TamperKind.EDITED, "edited.malformed", s, row=row, problem=row.problem
            )
        assert row.seq is not None
        if not row.selfok:
            return self._not_matching(row, s)
        if row.seq <= m:
            return self._second_claim(row, last)
        if row.seq == s:
            return self._wrong_link(row, last)
        return self._jump(row, s)

    def _not_matching(self, row: StoredRow, s: int) -> Finding:
        assert row.seq is not None
        if row.seq != s and row.hash_with_seq(s) == row.hash:
            return tamper_finding(
                TamperKind.EDITED, "edited.seq_changed", s, row=row, claimed=row.seq
            )
        original = self.origin(row)
        if original is not None and original != s and row.hash_with_seq(original) == row.hash:
            return tamper_finding(
                TamperKind.REORDERED,
                "reordered.renumbered",
                s,
                row=row,
                original=original,
                claimed=row.seq,
            )
        if row.seq < s:
            return tamper_finding(TamperKind.INSERTED, "inserted.corrupt_claim", row.seq, row=row)
        return tamper_finding(TamperKind.EDITED, "edited.mismatch", s, row=row)

    def _second_claim(self, row: StoredRow, last: StoredRow | None) -> Finding:
        walk = self.walk
        assert row.seq is not None
        if (
            row.seq == walk.count
            and last is not None
            and last.hash != row.hash
            and self.vouched(row.hash)
            and not self.vouched(walk.head)
        ):
            return tamper_finding(TamperKind.INSERTED, "inserted.intruder", row.seq, row=last)
        if walk.digest_at(row.seq) == row.hash:
            return tamper_finding(TamperKind.INSERTED, "inserted.duplicate", row.seq, row=row)
        return self._branch(row, row.seq) or tamper_finding(
            TamperKind.INSERTED, "inserted.second_claim", row.seq, row=row
        )

    def _wrong_link(self, row: StoredRow, last: StoredRow | None) -> Finding:
        walk = self.walk
        m = walk.count
        s = m + 1
        assert row.ts is not None
        if row.prev == walk.head:
            # Linked right, so the row is here for its time.
            return tamper_finding(TamperKind.INSERTED, "inserted.backdated", s, row=row, prev_seq=m)
        branch = self._branch(row, s)
        if branch is not None:
            return branch
        for earlier in self.by_hash.get(row.prev or "", ()):
            if earlier is row:
                continue
            if earlier.seq == m and last is not None:
                return tamper_finding(TamperKind.INSERTED, "inserted.intruder", m, row=last)
            return tamper_finding(
                TamperKind.REORDERED, "reordered.moved", s, row=row, claimed=row.seq or s
            )
        if m == walk.base:
            # Nothing accepted yet: the row does not continue this ledger (or the known head).
            return tamper_finding(
                TamperKind.INSERTED, "inserted.foreign", s, row=row, ledger=walk.ledger
            )
        return tamper_finding(TamperKind.EDITED, "edited.recomputed", m, row=last, next=s)

    def _jump(self, row: StoredRow, s: int) -> Finding:
        walk = self.walk
        assert row.seq is not None
        later = self.rest[1:]
        if any(other.hash == row.hash for other in later):
            return tamper_finding(TamperKind.INSERTED, "inserted.duplicate", row.seq, row=row)
        rivals = [
            other
            for other in later
            if other.seq == row.seq and other.hash != row.hash and other.selfok
        ]
        if (
            rivals
            and not self.vouched(row.hash)
            and any(self.vouched(other.hash, other) for other in rivals)
        ):
            return tamper_finding(TamperKind.INSERTED, "inserted.second_claim", row.seq, row=row)
        if any(other.seq == s for other in later) or any(other.hash == row.prev for other in later):
            return tamper_finding(
                TamperKind.REORDERED, "reordered.moved", s, row=row, claimed=row.seq
            )
        if row.prev == walk.head:
            return tamper_finding(
                TamperKind.EDITED, "edited.renumbered", s, row=row, claimed=row.seq
            )
        return self._branch(row, row.seq) or tamper_finding(
            TamperKind.DELETED, "deleted.entries", s, last_seq=row.seq - 1, row=row
        )

    def _branch(self, row: StoredRow, seq: int) -> Finding | None:
        """``row``, claiming ``seq``, links to an accepted entry other than ``seq - 1``: a branch
        off an earlier entry."""
        branch_of = self.walk.seq_of(row.prev)
        if branch_of is None or branch_of == seq - 1:
            return None
        return tamper_finding(
            TamperKind.INSERTED,
            "inserted.branch",
            seq,
            row=row,
            claimed=seq,
            branch_of=branch_of,
            expected=seq - 1,
        )
