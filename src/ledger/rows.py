"""One stored row read field by field, with what is wrong with it: the verifier's slow path
(:mod:`ledger.walk` reads a row this way when its fast path cannot vouch for it, and
:mod:`ledger.explain` reads the rest of the ledger this way after a break).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ledger.canonical import check_canonical_object as _check_body
from ledger.entry import TS_NS_MAX, check_hash, check_header, content_bytes
from ledger.errors import CanonicalError, EntryError
from ledger.findings import EntryFacts


class StoredRow:
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
