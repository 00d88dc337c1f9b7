"""The walk over a ledger's rows from a known head: the fast path that proves a row follows the
chain, the slow path for a row it cannot vouch for, key rotations and checkpoints met on the way.
It records findings and stops at the first break (:mod:`ledger.explain` says what happened);
:func:`ledger.verify` and :func:`ledger.verify_segment` run it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from json.encoder import encode_basestring
from typing import Any, Final

import orjson

from ledger.canonical import FLOAT_SCREEN, FLOAT_SCREEN_DELETE, SORTED, has_astral, has_float
from ledger.checkpoint import Checkpoint
from ledger.entry import (
    CONTENT_FORMAT,
    ROTATION_KIND,
    SUBJECT_MAX,
    TS_NS_MAX,
    ChainHead,
    check_text,
    genesis_hash,
)
from ledger.explain import BreakExplainer
from ledger.findings import Finding, TamperKind, tamper_finding
from ledger.key_state import KeyState, PendingCheckpoint
from ledger.keys import PublicKey
from ledger.rotation import RotationProblem, read_rotation
from ledger.rows import StoredRow

_CACHE_LIMIT: Final = 4096


def _json_string(text: str) -> bytes:
    """A JSON string as JCS writes it, for the caches. (orjson's output would do as well, but
    each of its small results keeps a 4 KB buffer: 4,096 cached subjects would hold 16 MB.)"""
    return encode_basestring(text).encode()


# The hot path puts a known-good hex ``prev`` in as its bytes (a JSON string needs the quotes).
_FAST_CONTENT: Final = CONTENT_FORMAT.replace(b'"prev":%b', b'"prev":"%b"')


class _Stop(Exception):
    """The walk ends here (a finding was recorded)."""


class _Slow(Exception):
    """The fast path cannot vouch for this row."""


# -- the walk ---------------------------------------------------------------------------------


class Walk:
    """Walks rows in order from a known head; records findings; stops at the first break."""

    def __init__(
        self,
        ledger: str,
        start: ChainHead,
        keys: KeyState,
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
        self.last: StoredRow | None = None
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

    def _accept(self, row: StoredRow, raw: Any) -> None:
        assert row.hash is not None and row.ts is not None and row.seq is not None
        self.digests += bytes.fromhex(row.hash)
        self.count = row.seq
        self.head = row.hash
        self.last_ts = row.ts
        self.last = row
        self.last_raw = raw

    def _slow(self, raw: Any, iterator: Iterator[Any]) -> None:
        row = StoredRow(raw, self.position)
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
        rest.extend(
            StoredRow(item, self.position + offset) for offset, item in enumerate(iterator, 1)
        )
        self.position += len(rest) - 1
        self.findings.append(BreakExplainer(self, rest).finding())
        raise _Stop

    @staticmethod
    def _remember(cache: dict[str, bytes], value: str) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = _json_string(value)

    def last_row(self) -> StoredRow | None:
        """The last accepted row, read slowly (the fast path keeps only the raw row)."""
        if self.last is None and self.last_raw is not None:
            self.last = StoredRow(self.last_raw, self.position)
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

    def _rotation(self, row: StoredRow) -> None:
        assert row.body is not None and row.seq is not None
        seq = row.seq
        keys = self.keys
        try:
            rotation = read_rotation(orjson.loads(row.body))
        except RotationProblem as problem:
            code = "signature" if problem.code == "signature" else "malformed"
            self._stop(
                tamper_finding(
                    TamperKind.ROTATION_FORGED,
                    f"rotation_forged.{code}",
                    seq,
                    row=row,
                    problem=problem.detail,
                )
            )
        if rotation.ledger != self.ledger:
            self._stop(
                tamper_finding(
                    TamperKind.ROTATION_FORGED,
                    "rotation_forged.other_ledger",
                    seq,
                    row=row,
                    other=rotation.ledger,
                )
            )
        if rotation.seq != seq or rotation.prev != row.prev:
            self._stop(
                tamper_finding(
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
                tamper_finding(
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
                self.findings.append(self.forged(pending.number, cp, "wrong_key", key))
            elif not cp.signature_holds(key):
                self.findings.append(self.forged(pending.number, cp, "signature"))
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

    def forged(
        self, number: int, cp: Checkpoint, code: str, expected: PublicKey | None = None
    ) -> Finding:
        expected_id = "" if expected is None else expected.key_id
        return tamper_finding(
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
            finding = tamper_finding(
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
        row = StoredRow(following, self.position)
        last = self.last_row()
        if row.selfok and row.seq == cp.count + 1 and row.prev == cp.head:
            return tamper_finding(
                TamperKind.EDITED,
                "edited.recomputed_checkpoint",
                cp.count,
                row=last,
                checkpoint=number,
                next=cp.count + 1,
            )
        if row.selfok and row.seq == cp.count and row.hash == cp.head:
            return tamper_finding(TamperKind.INSERTED, "inserted.intruder", cp.count, row=last)
        return None

    def _at_count(self, count: int, iterator: Iterator[Any]) -> None:
        """Entry ``count`` was just accepted: check what is signed or known about it."""
        if count in self.known and self.known[count] != self.head:
            self._stop(
                tamper_finding(
                    TamperKind.REWRITTEN,
                    "rewritten.known_head",
                    count,
                    row=self.last_row(),
                )
            )
        keys = self.keys
        for number, cp in self.checkpoints.get(count, ()):
            head_ok = cp.head == self.head
            if keys.current is None:
                first = keys.trusted.get(cp.key)
                if first is None:
                    keys.pending.append(PendingCheckpoint(number, cp, head_ok, False))
                    continue
                if not cp.signature_holds(first):
                    self.findings.append(self.forged(number, cp, "signature"))
                    continue
                keys.current = first
                keys.epochs[-1][1] = first.key_id
                keys.anchor_all()
                self._resolve_first_epoch(first)
                self._resolve_anchored()
                self._agrees(number, cp, head_ok, iterator)
            elif cp.key != keys.current.key_id:
                code = "wrong_key" if self.known_key(cp.key) else "unknown_key"
                self.findings.append(self.forged(number, cp, code, keys.current))
            elif not cp.signature_holds(keys.current):
                self.findings.append(self.forged(number, cp, "signature"))
            elif not keys.anchored:
                keys.pending.append(PendingCheckpoint(number, cp, head_ok, True))
            else:
                self._agrees(number, cp, head_ok, iterator)
        if self.findings:
            raise _Stop

    def known_key(self, key_id: str) -> bool:
        return key_id in self.keys.trusted or any(e[1] == key_id for e in self.keys.epochs)
