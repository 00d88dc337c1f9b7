"""What :func:`ledger.verify` reports: the kinds of tampering it tells apart, its findings, the
notes on what a clean result does not prove, and the report itself (models on the wire: the
gateway prints them, the hub returns them).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from pydantic import Field

from ledger.entry import ChainHead, NanoTime, WireModel
from ledger.messages import MESSAGES, render


class TamperKind(StrEnum):
    """The kinds of tampering ``verify`` tells apart."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    CHECKPOINT_FORGED = "checkpoint_forged"
    CHECKPOINT_REPLAYED = "checkpoint_replayed"
    ROTATION_FORGED = "rotation_forged"


class EntryFacts(WireModel):
    """What could be read of the entry a finding is about (as stored: it may be false)."""

    seq: int | None = None
    ts_ns: NanoTime | None = None
    kind: str | None = None
    subject: str | None = None
    actor: str | None = None
    prev: str | None = None
    hash: str | None = None


class _Coded(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def params(self) -> Mapping[str, str | int]: ...


class _Rendered:
    """What a finding and a note share: their message in a reader's language."""

    def text(self: _Coded, lang: str = "en") -> str:
        """The message in ``lang`` ("en" or "vi")."""
        return render(self.code, self.params, lang)


class Finding(_Rendered, WireModel):
    """One broken thing: its kind, where it is, and a message (``text(lang)`` translates)."""

    kind: TamperKind
    code: str
    seq: int | None = None
    """First sequence number affected, in chain order (a checkpoint's count for checkpoints)."""
    last_seq: int | None = None
    """Last sequence number of a range (deleted, truncated, rewritten)."""
    row: int | None = None
    """1-based position, among the entries given, of the row the finding is about."""
    checkpoint: int | None = None
    """1-based position, among the checkpoints given, of the checkpoint it is about."""
    entry: EntryFacts | None = None
    params: dict[str, str | int] = Field(default_factory=dict)
    message: str


class Note(_Rendered, WireModel):
    """Something a clean result does not prove."""

    code: str
    params: dict[str, str | int] = Field(default_factory=dict)
    message: str


class KeyEpoch(WireModel):
    """A signing key's span: in force from entry ``from_seq`` (1 for the first key)."""

    from_seq: int
    key: str | None
    trusted: bool


class VerifyReport(WireModel):
    """The result of ``verify``: ok, or the first finding, with what was proven and what not."""

    ledger: str
    ok: bool
    finding: Finding | None
    """The first broken thing (the earliest in the chain), None when ok."""
    findings: tuple[Finding, ...]
    """Every finding, earliest first; the walk stops at the first broken entry, so this is
    not a list of everything wrong."""
    rows: int
    """How many rows were read."""
    head: ChainHead
    """The last entry verified in chain order (the key in force there, if known)."""
    checkpoints: int
    checkpoints_verified: int
    signed_count: int
    """The count of the last checkpoint that is verified, trusted and agrees (0: none)."""
    unsigned: int
    """Verified entries after ``signed_count``: not yet covered by a signature."""
    keys: tuple[KeyEpoch, ...]
    notes: tuple[Note, ...]


class _FoundRow(Protocol):
    """A stored row a finding is about (the verifier's slow reading of it)."""

    position: int

    def facts(self) -> EntryFacts: ...


def tamper_finding(
    kind: TamperKind,
    code: str,
    seq: int | None,
    *,
    last_seq: int | None = None,
    row: _FoundRow | None = None,
    checkpoint: int | None = None,
    **params: str | int,
) -> Finding:
    values: dict[str, str | int] = dict(params)
    if last_seq is not None and last_seq == seq and f"{code}_one" in MESSAGES:
        code = f"{code}_one"
    if seq is not None:
        values.setdefault("seq", seq)
    if last_seq is not None:
        values.setdefault("last_seq", last_seq)
    if checkpoint is not None:
        values.setdefault("checkpoint", checkpoint)
    return Finding(
        kind=kind,
        code=code,
        seq=seq,
        last_seq=last_seq,
        row=None if row is None else row.position,
        checkpoint=checkpoint,
        entry=None if row is None else row.facts(),
        params=values,
        message=render(code, values),
    )


def report_note(code: str, **params: str | int) -> Note:
    return Note(code=code, params=params, message=render(code, params))
