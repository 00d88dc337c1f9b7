"""Verification: walk a ledger and its checkpoints, name the first broken entry and how.

``verify`` reads entries as stored rows (``Entry`` or any 8-field row in ``Entry``'s column
order, e.g. straight from a database cursor), one at a time, keeping 32 bytes per entry (a digest
index used to explain a break) and nothing else of them. While every entry follows the chain it
does the least work that proves it: link, sequence, time, header, content hash, and, for the
unsigned tail after the last checkpoint, the canonical form of the body (under a checkpoint the
signature vouches for it). At the first entry that does not follow, it reads the rest and works
out what happened:

``edited``     an entry's content no longer matches its hash; or it was changed and its hash
               recomputed (the next entry, or a checkpoint, still names the original hash)
``deleted``    entries are missing from the chain (a gap)
``inserted``   an entry that does not belong: a duplicate, a second entry with an existing
               sequence number, an entry that branches off an earlier one, a backdated one
``reordered``  entries are all there but out of chain order (moved, or renumbered)
``truncated``  the ledger has fewer entries than a signed checkpoint counts
``rewritten``  the chain is consistent but disagrees with a signed checkpoint (or a signed key
               rotation): rewritten, hashes and all, by someone without the key
``checkpoint_forged``    a checkpoint whose signature does not hold, whose key is not trusted or
                         not the one in force, from another ledger, or unreadable
``checkpoint_replayed``  an older checkpoint after a newer one
``rotation_forged``      a key rotation whose signatures do not hold or that hands over from a
                         key other than the one in force

What a clean report does not prove is in its ``notes``: entries after the last checkpoint can be
removed or rewritten unseen; a holder of the private key can sign anything.

Longer than 500 lines on purpose: the fast path, the slow path and the explanation of a break are
one walk over one state (the digest index, the key epochs, the pending checkpoints); the report's
models are in :mod:`ledger.findings`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Final

import orjson

from ledger.canonical import (
    FLOAT_SCREEN,
    FLOAT_SCREEN_DELETE,
    SORTED,
    canonical_json,
    has_astral,
    has_float,
)
from ledger.canonical import check_canonical_object as _check_body
from ledger.checkpoint import Checkpoint
from ledger.entry import (
    CONTENT_FORMAT,
    ROTATION_KIND,
    SUBJECT_MAX,
    TS_NS_MAX,
    ChainHead,
    Entry,
    check_hash,
    check_header,
    check_text,
    content_bytes,
    genesis_hash,
)
from ledger.errors import CanonicalError, CheckpointError, EntryError
from ledger.findings import (
    EntryFacts,
    Finding,
    KeyEpoch,
    Note,
    TamperKind,
    VerifyReport,
    _finding,
    _note,
)
from ledger.keys import PublicKey
from ledger.rotation import RotationProblem, read_rotation

_CACHE_LIMIT: Final = 4096


def _json_string(text: str) -> bytes:
    """A JSON string as JCS writes it, for the caches. (orjson's output would do as well, but
    each of its small results keeps a 4 KB buffer: 4,096 cached subjects would hold 16 MB.)"""
    return encode_basestring(text).encode()


# The hot path puts a known-good hex ``prev`` in as its bytes (a JSON string needs the quotes).
_FAST_CONTENT: Final = CONTENT_FORMAT.replace(b'"prev":%b', b'"prev":"%b"')


# -- one row, read slowly ---------------------------------------------------------------------


class _Row:
    """A stored row read field by field, with what is wrong with it (the slow path)."""

    __slots__ = (
        "actor",
        "body",
        "computed",
        "hash",
        "kind",
        "position",
        "prev",
        "problem",
        "seq",
        "subject",
        "ts",
    )

    def __init__(self, raw: Any, position: int) -> None:
        self.position = position
        self.seq: int | None = None
        self.ts: int | None = None
        self.kind: str | None = None
        self.subject: str | None = None
        self.actor: str | None = None
        self.body: bytes | None = None
        self.prev: str | None = None
        self.hash: str | None = None
        self.problem: str | None = None
        self.computed: str | None = None
        try:
            seq, ts, kind, subject, actor, body_json, prev, digest = raw
        except (TypeError, ValueError):
            self.problem = "not a row of the 8 entry fields"
            return
        self.seq = seq if type(seq) is int else None
        self.ts = ts if type(ts) is int else None
        self.kind = kind if isinstance(kind, str) else None
        self.subject = subject if isinstance(subject, str) else None
        self.actor = actor if isinstance(actor, str) else None
        self.prev = prev if isinstance(prev, str) else None
        self.hash = digest if isinstance(digest, str) else None
        problems: list[str] = []
        try:
            check_header(seq, ts, kind, subject, actor)
        except EntryError as exc:
            problems.append(str(exc))
        for name, value in (("prev", prev), ("hash", digest)):
            try:
                check_hash(name, value)
            except EntryError as exc:
                problems.append(str(exc))
        try:
            self.body = _check_body(body_json)
        except CanonicalError as exc:
            problems.append(f"body {exc}")
        if problems:
            self.problem = "; ".join(problems)
        self.computed = self.hash_with_seq(self.seq)

    def hash_with_seq(self, seq: int | None) -> str | None:
        """The hash this row's content would have with sequence number ``seq``."""
        if (
            seq is None
            or self.ts is None
            or self.kind is None
            or self.subject is None
            or self.actor is None
            or self.body is None
            or self.prev is None
        ):
            return None
        try:
            content = content_bytes(
                seq, self.ts, self.kind, self.subject, self.actor, self.body, self.prev
            )
        except (TypeError, orjson.JSONEncodeError):
            return None
        return hashlib.sha256(content).hexdigest()

    @property
    def selfok(self) -> bool:
        """Well formed, and its content hashes to its stored hash."""
        return self.problem is None and self.computed == self.hash

    def facts(self) -> EntryFacts:
        # A tampered row may hold any integer; what is no time at all is reported as unknown.
        ts = self.ts if self.ts is not None and 0 <= self.ts <= TS_NS_MAX else None
        return EntryFacts(
            seq=self.seq,
            ts_ns=ts,
            kind=self.kind,
            subject=self.subject,
            actor=self.actor,
            prev=self.prev,
            hash=self.hash,
        )


# -- key state --------------------------------------------------------------------------------


@dataclass
class _Pending:
    """A checkpoint met before its key could be judged."""

    number: int
    checkpoint: Checkpoint
    head_ok: bool
    signature_checked: bool


@dataclass
class _Keys:
    trusted: dict[str, PublicKey]
    current: PublicKey | None = None
    anchored: bool = False
    epochs: list[list[Any]] = field(default_factory=list)  # [from_seq, key id | None, trusted]
    pending: list[_Pending] = field(default_factory=list)

    def anchor_all(self) -> None:
        self.anchored = True
        for epoch in self.epochs:
            epoch[2] = True


class _Stop(Exception):
    """The walk ends here (a finding was recorded)."""


class _Slow(Exception):
    """The fast path cannot vouch for this row."""


# -- the walk ---------------------------------------------------------------------------------


class _Walk:
    """Walks rows in order from a known head; records findings; stops at the first break."""

    def __init__(
        self,
        ledger: str,
        start: ChainHead,
        keys: _Keys,
        checkpoints: Mapping[int, list[tuple[int, Checkpoint]]],
        *,
        quiet_until: int = 0,
        signed: int = 0,
        known: Mapping[int, str] | None = None,
    ) -> None:
        self.ledger = ledger
        self.genesis = genesis_hash(ledger)
        self.base = start.count
        self.base_hash = start.hash
        self.count = start.count
        self.head = start.hash
        self.last_ts = start.ts_ns
        self.digests = bytearray()
        self.last: _Row | None = None
        self.last_raw: Any = None
        self.introduced: list[PublicKey] = []
        self.position = 0
        self.keys = keys
        self.checkpoints = checkpoints
        self.quiet_until = quiet_until  # rotations and checkpoints up to here were judged before
        self.known = dict(known or {})
        self.findings: list[Finding] = []
        self.stopped = False
        self.verified_checkpoints = 0
        self.signed_count = signed
        self.agreed = start.count  # the last count a trusted signature (or the hub) agrees with
        self.kinds: dict[str, bytes] = {}
        self.actors: dict[str, bytes] = {}
        self.subjects: dict[str, bytes] = {}

    def start(self) -> None:
        """Check what is signed or known about the starting head itself (count 0: genesis)."""
        if self.count in self.checkpoints or self.count in self.known:
            try:
                self._at_count(self.count, iter(()))
            except _Stop:
                self.stopped = True

    # -- the fast path ------------------------------------------------------------------------

    def run(self, rows: Iterable[Iterable[Any]]) -> None:
        """Walk ``rows``; returns at their end or at the first break."""
        if self.stopped:
            return
        iterator = iter(rows)
        sha256 = hashlib.sha256
        dumps = orjson.dumps
        loads = orjson.loads
        sort = SORTED
        screen, screen_delete = FLOAT_SCREEN, FLOAT_SCREEN_DELETE
        content_format = _FAST_CONTENT
        json_string = _json_string
        digests = self.digests
        kinds, actors, subjects = self.kinds, self.actors, self.subjects
        stops = set(self.checkpoints) | set(self.known)
        # Up to the highest count a checkpoint (or the hub's head) names, a body's canonical
        # form needs no check of its own: the signature will prove the entry is the writer's,
        # which writes nothing else, and if it does not the report is not ok anyway. Beyond,
        # in the unsigned tail, every body is held to the format.
        signed_until = max(stops, default=self.count)
        expect = self.count + 1
        head = self.head
        last_ts = self.last_ts
        last_raw = self.last_raw
        position = self.position
        try:
            for raw in iterator:
                position += 1
                try:
                    seq, ts, kind, subject, actor, body_json, prev, digest = raw
                    if (
                        seq != expect
                        or prev != head
                        or type(seq) is not int
                        or type(ts) is not int
                        or not last_ts <= ts <= TS_NS_MAX
                    ):
                        raise _Slow
                    # Kinds, actors and subjects seen before are known good; the caches hold
                    # them as JSON strings, ready for the content.
                    quoted_kind = kinds[kind]
                    quoted_actor = actors[actor]
                    quoted_subject = subjects.get(subject)
                    if quoted_subject is None:
                        check_text("subject", subject, SUBJECT_MAX)
                        if len(subjects) >= _CACHE_LIMIT:
                            subjects.clear()
                        quoted_subject = subjects[subject] = json_string(subject)
                    body = body_json.encode()
                    if seq > signed_until:
                        # Canonical: parse it, write it again, screen it for floats.
                        value = loads(body)
                        if type(value) is not dict or dumps(value, option=sort) != body:
                            raise _Slow
                        if b":." in body.translate(screen, screen_delete) and has_float(value):
                            raise _Slow
                        if not body.isascii() and has_astral(body):
                            raise _Slow  # beyond U+FFFF keys may sort otherwise: slow path decides
                    content = content_format % (
                        quoted_actor,
                        body,
                        quoted_kind,
                        prev.encode(),
                        seq,
                        quoted_subject,
                        ts,
                    )
                    digest_bytes = sha256(content).digest()
                    if digest_bytes.hex() != digest:
                        raise _Slow
                except (_Slow, KeyError, TypeError, ValueError, AttributeError):
                    self._sync(expect - 1, head, last_ts, last_raw, position)
                    self._slow(raw, iterator)
                    expect, head, last_ts = self.count + 1, self.head, self.last_ts
                    last_raw, position = self.last_raw, self.position
                    continue
                digests += digest_bytes
                head = digest
                last_ts = ts
                last_raw = raw
                expect += 1
                if seq in stops:
                    self._sync(seq, head, last_ts, last_raw, position)
                    self._at_count(seq, iterator)
                    position = self.position
        except _Stop:
            self.stopped = True
            return
        self._sync(expect - 1, head, last_ts, last_raw, position)

    def _sync(self, count: int, head: str, last_ts: int, last_raw: Any, position: int) -> None:
        """Bring the fast path's local state back into the walk."""
        if last_raw is not self.last_raw:
            self.last = None
        self.count, self.head, self.last_ts = count, head, last_ts
        self.last_raw, self.position = last_raw, position

    # -- the slow path ------------------------------------------------------------------------

    def _accept(self, row: _Row, raw: Any) -> None:
        assert row.hash is not None and row.ts is not None and row.seq is not None
        self.digests += bytes.fromhex(row.hash)
        self.count = row.seq
        self.head = row.hash
        self.last_ts = row.ts
        self.last = row
        self.last_raw = raw

    def _slow(self, raw: Any, iterator: Iterator[Any]) -> None:
        row = _Row(raw, self.position)
        expect = self.count + 1
        if (
            row.selfok
            and row.seq == expect
            and row.prev == self.head
            and row.ts is not None
            and row.ts >= self.last_ts
        ):
            # A sound row the fast path had not met the like of (a new kind or actor), or a
            # key rotation.
            if row.kind == ROTATION_KIND and row.seq > self.quiet_until:
                self._rotation(row)
            if row.kind != ROTATION_KIND:
                self._remember(self.kinds, str(row.kind))
            self._remember(self.actors, str(row.actor))
            self._remember(self.subjects, str(row.subject))
            self._accept(row, raw)
            if expect in self.checkpoints or expect in self.known:
                self._at_count(expect, iterator)
            return
        rest = [row]
        rest.extend(_Row(item, self.position + offset) for offset, item in enumerate(iterator, 1))
        self.position += len(rest) - 1
        self.findings.append(_Explain(self, rest).finding())
        raise _Stop

    @staticmethod
    def _remember(cache: dict[str, bytes], value: str) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = _json_string(value)

    def _last_row(self) -> _Row | None:
        """The last accepted row, read slowly (the fast path keeps only the raw row)."""
        if self.last is None and self.last_raw is not None:
            self.last = _Row(self.last_raw, self.position)
        return self.last

    def seq_of(self, digest: str | None) -> int | None:
        """The sequence number of an accepted entry with hash ``digest``, if any."""
        if digest is None:
            return None
        if digest == self.head:
            return self.count
        if digest == self.base_hash:
            return self.base
        try:
            needle = bytes.fromhex(digest)
        except ValueError:
            return None
        if len(needle) != 32:
            return None
        found = self.digests.find(needle)
        while found != -1 and found % 32:
            found = self.digests.find(needle, found + 1)
        return None if found == -1 else self.base + 1 + found // 32

    def digest_at(self, seq: int) -> str | None:
        """The hash of accepted entry ``seq``."""
        offset = (seq - self.base - 1) * 32
        if offset < 0 or offset + 32 > len(self.digests):
            return None
        return self.digests[offset : offset + 32].hex()

    # -- key rotations ------------------------------------------------------------------------

    def _rotation(self, row: _Row) -> None:
        assert row.body is not None and row.seq is not None
        seq = row.seq
        keys = self.keys
        try:
            rotation = read_rotation(orjson.loads(row.body))
        except RotationProblem as problem:
            code = "signature" if problem.code == "signature" else "malformed"
            self._stop(
                _finding(
                    TamperKind.ROTATION_FORGED,
                    f"rotation_forged.{code}",
                    seq,
                    row=row,
                    problem=problem.detail,
                )
            )
        if rotation.ledger != self.ledger:
            self._stop(
                _finding(
                    TamperKind.ROTATION_FORGED,
                    "rotation_forged.other_ledger",
                    seq,
                    row=row,
                    other=rotation.ledger,
                )
            )
        if rotation.seq != seq or rotation.prev != row.prev:
            self._stop(
                _finding(
                    TamperKind.REWRITTEN,
                    "rewritten.rotation",
                    self.agreed + 1,
                    last_seq=max(self.agreed + 1, seq - 1),
                    row=row,
                    rotation=seq,
                )
            )
        if keys.current is not None and rotation.old != keys.current:
            self._stop(
                _finding(
                    TamperKind.ROTATION_FORGED,
                    "rotation_forged.wrong_old_key",
                    seq,
                    row=row,
                    key=rotation.old.key_id,
                    expected=keys.current.key_id,
                )
            )
        if keys.current is None:
            keys.current = rotation.old
            keys.epochs[-1][1] = rotation.old.key_id
            self._resolve_first_epoch(rotation.old)
        trusted = keys.trusted
        if not keys.anchored and (
            trusted.get(rotation.old.key_id) == rotation.old
            or trusted.get(rotation.new.key_id) == rotation.new
        ):
            keys.anchor_all()
            self._resolve_anchored()
        if keys.anchored:
            self.agreed = max(self.agreed, seq - 1)
        keys.epochs.append([seq, rotation.new.key_id, keys.anchored])
        keys.current = rotation.new
        self.introduced.append(rotation.new)
        if self.findings:
            raise _Stop

    def _stop(self, finding: Finding) -> None:
        self.findings.append(finding)
        raise _Stop

    def _resolve_first_epoch(self, key: PublicKey) -> None:
        """The first rotation names the first key: judge the checkpoints signed before it."""
        for pending in self.keys.pending:
            if pending.signature_checked:
                continue
            cp = pending.checkpoint
            if cp.key != key.key_id:
                self.findings.append(self._forged(pending.number, cp, "wrong_key", key))
            elif not cp.signature_holds(key):
                self.findings.append(self._forged(pending.number, cp, "signature"))
            else:
                pending.signature_checked = True
        self.keys.pending = [p for p in self.keys.pending if p.signature_checked]

    def _resolve_anchored(self) -> None:
        """The keys are now trusted: checkpoints whose signature held now count."""
        for pending in self.keys.pending:
            if pending.signature_checked:
                self._agrees(pending.number, pending.checkpoint, pending.head_ok, None)
        self.keys.pending = []

    # -- checkpoints --------------------------------------------------------------------------

    def _forged(
        self, number: int, cp: Checkpoint, code: str, expected: PublicKey | None = None
    ) -> Finding:
        expected_id = "" if expected is None else expected.key_id
        return _finding(
            TamperKind.CHECKPOINT_FORGED,
            f"checkpoint_forged.{code}",
            cp.count,
            checkpoint=number,
            count=cp.count,
            key=cp.key,
            expected=expected_id,
        )

    def _agrees(
        self, number: int, cp: Checkpoint, head_ok: bool, iterator: Iterator[Any] | None
    ) -> None:
        """A trusted, verified checkpoint: the chain must agree with it."""
        if head_ok:
            self.verified_checkpoints += 1
            self.signed_count = max(self.signed_count, cp.count)
            self.agreed = max(self.agreed, cp.count)
            return
        finding = None
        if iterator is not None:
            finding = self._explain_disagreement(number, cp, iterator)
        if finding is None:
            finding = _finding(
                TamperKind.REWRITTEN,
                "rewritten.checkpoint",
                min(self.agreed + 1, cp.count),
                last_seq=cp.count,
                checkpoint=number,
            )
        self.findings.append(finding)

    def _explain_disagreement(
        self, number: int, cp: Checkpoint, iterator: Iterator[Any]
    ) -> Finding | None:
        """Only the head entry was replaced, if the next row still names the signed hash."""
        following = next(iterator, None)
        if following is None:
            return None
        self.position += 1
        row = _Row(following, self.position)
        last = self._last_row()
        if row.selfok and row.seq == cp.count + 1 and row.prev == cp.head:
            return _finding(
                TamperKind.EDITED,
                "edited.recomputed_checkpoint",
                cp.count,
                row=last,
                checkpoint=number,
                next=cp.count + 1,
            )
        if row.selfok and row.seq == cp.count and row.hash == cp.head:
            return _finding(TamperKind.INSERTED, "inserted.intruder", cp.count, row=last)
        return None

    def _at_count(self, count: int, iterator: Iterator[Any]) -> None:
        """Entry ``count`` was just accepted: check what is signed or known about it."""
        if count in self.known and self.known[count] != self.head:
            self._stop(
                _finding(
                    TamperKind.REWRITTEN,
                    "rewritten.known_head",
                    count,
                    row=self._last_row(),
                )
            )
        keys = self.keys
        for number, cp in self.checkpoints.get(count, ()):
            head_ok = cp.head == self.head
            if keys.current is None:
                first = keys.trusted.get(cp.key)
                if first is None:
                    keys.pending.append(_Pending(number, cp, head_ok, False))
                    continue
                if not cp.signature_holds(first):
                    self.findings.append(self._forged(number, cp, "signature"))
                    continue
                keys.current = first
                keys.epochs[-1][1] = first.key_id
                keys.anchor_all()
                self._resolve_first_epoch(first)
                self._resolve_anchored()
                self._agrees(number, cp, head_ok, iterator)
            elif cp.key != keys.current.key_id:
                code = "wrong_key" if self._known_key(cp.key) else "unknown_key"
                self.findings.append(self._forged(number, cp, code, keys.current))
            elif not cp.signature_holds(keys.current):
                self.findings.append(self._forged(number, cp, "signature"))
            elif not keys.anchored:
                keys.pending.append(_Pending(number, cp, head_ok, True))
            else:
                self._agrees(number, cp, head_ok, iterator)
        if self.findings:
            raise _Stop

    def _known_key(self, key_id: str) -> bool:
        return key_id in self.keys.trusted or any(e[1] == key_id for e in self.keys.epochs)


# -- explaining a break -----------------------------------------------------------------------


class _Explain:
    """Works out what happened at the first row that does not follow the chain."""

    def __init__(self, walk: _Walk, rest: list[_Row]) -> None:
        self.walk = walk
        self.rest = rest
        self.by_hash: dict[str, list[_Row]] = {}
        self.by_prev: dict[str, list[_Row]] = {}
        self.by_seq: dict[int, list[_Row]] = {}
        for row in rest:
            if row.hash is not None:
                self.by_hash.setdefault(row.hash, []).append(row)
            if row.prev is not None:
                self.by_prev.setdefault(row.prev, []).append(row)
            if row.seq is not None:
                self.by_seq.setdefault(row.seq, []).append(row)

    def vouched(self, digest: str | None, besides: _Row | None = None) -> bool:
        """Whether a row other than ``besides`` names ``digest`` as its prev."""
        return digest is not None and any(
            row is not besides for row in self.by_prev.get(digest, ())
        )

    def origin(self, row: _Row, depth: int = 0) -> int | None:
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
        last = walk._last_row()
        if row.problem is not None:
            return _finding(TamperKind.EDITED, "edited.malformed", s, row=row, problem=row.problem)
        assert row.seq is not None
        if not row.selfok:
            return self._not_matching(row, s)
        if row.seq <= m:
            return self._second_claim(row, last)
        if row.seq == s:
            return self._wrong_link(row, last)
        return self._jump(row, s)

    def _not_matching(self, row: _Row, s: int) -> Finding:
        assert row.seq is not None
        if row.seq != s and row.hash_with_seq(s) == row.hash:
            return _finding(TamperKind.EDITED, "edited.seq_changed", s, row=row, claimed=row.seq)
        original = self.origin(row)
        if original is not None and original != s and row.hash_with_seq(original) == row.hash:
            return _finding(
                TamperKind.REORDERED,
                "reordered.renumbered",
                s,
                row=row,
                original=original,
                claimed=row.seq,
            )
        if row.seq < s:
            return _finding(TamperKind.INSERTED, "inserted.corrupt_claim", row.seq, row=row)
        return _finding(TamperKind.EDITED, "edited.mismatch", s, row=row)

    def _second_claim(self, row: _Row, last: _Row | None) -> Finding:
        walk = self.walk
        assert row.seq is not None
        if (
            row.seq == walk.count
            and last is not None
            and last.hash != row.hash
            and self.vouched(row.hash)
            and not self.vouched(walk.head)
        ):
            return _finding(TamperKind.INSERTED, "inserted.intruder", row.seq, row=last)
        if walk.digest_at(row.seq) == row.hash:
            return _finding(TamperKind.INSERTED, "inserted.duplicate", row.seq, row=row)
        return self._branch(row, row.seq) or _finding(
            TamperKind.INSERTED, "inserted.second_claim", row.seq, row=row
        )

    def _wrong_link(self, row: _Row, last: _Row | None) -> Finding:
        walk = self.walk
        m = walk.count
        s = m + 1
        assert row.ts is not None
        if row.prev == walk.head:
            # Linked right, so the row is here for its time.
            return _finding(TamperKind.INSERTED, "inserted.backdated", s, row=row, prev_seq=m)
        branch = self._branch(row, s)
        if branch is not None:
            return branch
        for earlier in self.by_hash.get(row.prev or "", ()):
            if earlier is row:
                continue
            if earlier.seq == m and last is not None:
                return _finding(TamperKind.INSERTED, "inserted.intruder", m, row=last)
            return _finding(
                TamperKind.REORDERED, "reordered.moved", s, row=row, claimed=row.seq or s
            )
        if m == walk.base:
            # Nothing accepted yet: the row does not continue this ledger (or the known head).
            return _finding(TamperKind.INSERTED, "inserted.foreign", s, row=row, ledger=walk.ledger)
        return _finding(TamperKind.EDITED, "edited.recomputed", m, row=last, next=s)

    def _jump(self, row: _Row, s: int) -> Finding:
        walk = self.walk
        assert row.seq is not None
        later = self.rest[1:]
        if any(other.hash == row.hash for other in later):
            return _finding(TamperKind.INSERTED, "inserted.duplicate", row.seq, row=row)
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
            return _finding(TamperKind.INSERTED, "inserted.second_claim", row.seq, row=row)
        if any(other.seq == s for other in later) or any(other.hash == row.prev for other in later):
            return _finding(TamperKind.REORDERED, "reordered.moved", s, row=row, claimed=row.seq)
        if row.prev == walk.head:
            return _finding(TamperKind.EDITED, "edited.renumbered", s, row=row, claimed=row.seq)
        return self._branch(row, row.seq) or _finding(
            TamperKind.DELETED, "deleted.entries", s, last_seq=row.seq - 1, row=row
        )

    def _branch(self, row: _Row, seq: int) -> Finding | None:
        """``row``, claiming ``seq``, links to an accepted entry other than ``seq - 1``: a branch
        off an earlier entry."""
        branch_of = self.walk.seq_of(row.prev)
        if branch_of is None or branch_of == seq - 1:
            return None
        return _finding(
            TamperKind.INSERTED,
            "inserted.branch",
            seq,
            row=row,
            claimed=seq,
            branch_of=branch_of,
            expected=seq - 1,
        )


# -- checkpoints given ------------------------------------------------------------------------


def _screen(
    ledger: str, checkpoints: Iterable[Checkpoint | str | bytes]
) -> tuple[list[tuple[int, Checkpoint]], list[Finding], int]:
    usable: list[tuple[int, Checkpoint]] = []
    findings: list[Finding] = []
    latest = -1
    seen: set[Checkpoint] = set()
    total = 0
    for number, item in enumerate(checkpoints, start=1):
        total = number
        if isinstance(item, Checkpoint):
            cp = item
        else:
            try:
                cp = Checkpoint.from_json(item, f"checkpoint {number}")
            except CheckpointError as exc:
                findings.append(
                    _finding(
                        TamperKind.CHECKPOINT_FORGED,
                        "checkpoint_forged.malformed",
                        None,
                        checkpoint=number,
                        problem=exc.reason,
                    )
                )
                continue
        if cp.ledger != ledger:
            findings.append(
                _finding(
                    TamperKind.CHECKPOINT_FORGED,
                    "checkpoint_forged.other_ledger",
                    cp.count,
                    checkpoint=number,
                    other=cp.ledger,
                    ledger=ledger,
                )
            )
            continue
        if cp.count < latest:
            findings.append(
                _finding(
                    TamperKind.CHECKPOINT_REPLAYED,
                    "checkpoint_replayed.order",
                    cp.count,
                    checkpoint=number,
                    count=cp.count,
                    latest=latest,
                )
            )
            continue
        latest = cp.count
        if cp in seen:
            continue  # the same checkpoint published twice
        seen.add(cp)
        usable.append((number, cp))
    return usable, findings, total


def _group(usable: list[tuple[int, Checkpoint]]) -> dict[int, list[tuple[int, Checkpoint]]]:
    by_count: dict[int, list[tuple[int, Checkpoint]]] = {}
    for number, cp in usable:
        by_count.setdefault(cp.count, []).append((number, cp))
    return by_count


def _order(finding: Finding) -> tuple[int, int]:
    # Earliest in the chain first; at one place, an entry's finding before a checkpoint's.
    seq = finding.seq if finding.seq is not None else 0
    return (seq, 0 if finding.checkpoint is None else 1)


def _unanchored(walk: _Walk) -> list[Finding]:
    """Checkpoints and rotations that no trusted key reaches, once everything is read."""
    findings: list[Finding] = []
    keys = walk.keys
    for pending in keys.pending:
        cp = pending.checkpoint
        code = "untrusted_chain" if pending.signature_checked else "unknown_key"
        findings.append(walk._forged(pending.number, cp, code))
    keys.pending = []
    if not keys.anchored and len(keys.epochs) > 1:
        findings.append(
            _finding(TamperKind.ROTATION_FORGED, "rotation_forged.untrusted", keys.epochs[1][0])
        )
    return findings


def _beyond_head(walk: _Walk, beyond: list[tuple[int, Checkpoint]]) -> list[Finding]:
    """Checkpoints that count more entries than the chain has: truncation, or forgeries."""
    findings: list[Finding] = []
    truncation: Finding | None = None
    keys = walk.keys
    for number, cp in beyond:
        key = keys.current if keys.current is not None and cp.key == keys.current.key_id else None
        if key is None and keys.current is None:
            key = keys.trusted.get(cp.key)
        if key is None:
            code = "wrong_key" if walk._known_key(cp.key) else "unknown_key"
            findings.append(walk._forged(number, cp, code, keys.current))
        elif not cp.signature_holds(key):
            findings.append(walk._forged(number, cp, "signature"))
        elif truncation is None or cp.count > (truncation.last_seq or 0):
            # The checkpoint counting the most says how much is gone.
            truncation = _finding(
                TamperKind.TRUNCATED,
                "truncated.checkpoint",
                walk.count + 1,
                last_seq=cp.count,
                checkpoint=number,
                count=walk.count,
            )
    if truncation is not None:
        findings.append(truncation)
    return findings


def _trusted(keys: Iterable[PublicKey]) -> dict[str, PublicKey]:
    return {key.key_id: key for key in keys}


def verify(
    entries: Iterable[Iterable[Any]],
    checkpoints: Iterable[Checkpoint | str | bytes] = (),
    trusted_keys: Iterable[PublicKey] = (),
    *,
    ledger: str,
) -> VerifyReport:
    """Verify ledger ``ledger``: its entries in stored order, its checkpoints in file order.

    ``entries``: ``Entry`` objects or rows in ``Entry``'s column order, read once, in order.
    ``checkpoints``: ``Checkpoint`` objects or their JSON lines (a bad line is a forgery).
    ``trusted_keys``: the public keys to trust: the enrolled key, or any key the ledger has
    had (a rotation links keys both ways). Never raises on bad data: it reports it.
    """
    start = ChainHead.start(ledger)
    usable, findings, total = _screen(ledger, checkpoints)
    keys = _Keys(_trusted(trusted_keys), epochs=[[1, None, False]])
    walk = _Walk(ledger, start, keys, _group(usable))
    walk.start()
    walk.run(entries)
    findings.extend(walk.findings)
    if not walk.stopped:
        findings.extend(_unanchored(walk))
        beyond = [(n, cp) for n, cp in usable if cp.count > walk.count]
        findings.extend(_beyond_head(walk, beyond))
    return _report(walk, findings, total)


def _report(walk: _Walk, findings: list[Finding], total: int) -> VerifyReport:
    findings.sort(key=_order)
    keys = walk.keys
    notes: list[Note] = []
    if findings:
        if walk.stopped:
            notes.append(_note("note.stopped"))
    elif walk.signed_count == 0 and walk.count:
        notes.append(_note("note.no_checkpoint"))
    elif walk.count > walk.signed_count:
        notes.append(
            _note(
                "note.unsigned",
                unsigned=walk.count - walk.signed_count,
                signed_count=walk.signed_count,
            )
        )
    head = ChainHead(
        ledger=walk.ledger,
        count=walk.count,
        hash=walk.head,
        ts_ns=walk.last_ts,
        key=None if keys.current is None else keys.current.key_id,
    )
    return VerifyReport(
        ledger=walk.ledger,
        ok=not findings,
        finding=findings[0] if findings else None,
        findings=tuple(findings),
        rows=walk.position,
        head=head,
        checkpoints=total,
        checkpoints_verified=walk.verified_checkpoints,
        signed_count=walk.signed_count,
        unsigned=walk.count - walk.signed_count,
        keys=tuple(
            KeyEpoch(from_seq=epoch[0], key=epoch[1], trusted=epoch[2]) for epoch in keys.epochs
        ),
        notes=tuple(notes),
    )


# -- live tables ------------------------------------------------------------------------------


def latest_by_subject(
    entries: Iterable[Iterable[Any]], kinds: Iterable[str] | None = None
) -> dict[tuple[str, str], Entry]:
    """The latest entry for each (kind, subject), optionally of ``kinds`` only.

    Run it over entries that ``verify`` found sound; compare each live row with
    ``body_matches`` to find a table edited behind the ledger's back.
    """
    wanted = None if kinds is None else frozenset(kinds)
    latest: dict[tuple[str, str], Entry] = {}
    for raw in entries:
        entry = raw if isinstance(raw, Entry) else Entry(*raw)
        if wanted is None or entry.kind in wanted:
            latest[(entry.kind, entry.subject)] = entry
    return latest


def body_matches(entry: Entry, current: Mapping[str, Any]) -> bool:
    """Whether ``current`` (a live row as a JSON object) is exactly ``entry``'s body."""
    try:
        return canonical_json(dict(current)) == entry.body_json.encode()
    except CanonicalError:
        return False


__all__ = [
    "EntryFacts",
    "Finding",
    "KeyEpoch",
    "Note",
    "TamperKind",
    "VerifyReport",
    "body_matches",
    "latest_by_subject",
    "verify",
]
