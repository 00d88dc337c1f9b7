"""The writing end of a ledger: entries, rotations and checkpoints, in chain order.

The writer keeps the chain's head in memory and stores nothing itself: the caller stores each
entry (in the same transaction as the record it describes) and then commits it to the writer::

    writer = LedgerWriter(head)               # ChainHead.start(lab) or the verified head
    entry = writer.prepare("audit", "standard/Z10", "alice", {"action": "update", ...})
    store.insert(entry)                       # one transaction with the record itself
    writer.commit(entry)
    checkpoint = writer.checkpoint(key)       # every N entries or minutes
    CheckpointFile(path).append(checkpoint)

One writer per ledger, appends serialised by the caller (the store's write lock). Because the
writer signs the head *it* committed, an entry that someone else slipped into the store shows
as a disagreement at the next checkpoint instead of being signed along.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec

from ledger.checkpoint import Checkpoint
from ledger.entry import ROTATION_KIND, ChainHead, Entry
from ledger.errors import ChainError
from ledger.keys import SigningKey
from ledger.rotation import rotation_body

_Prepared = ParamSpec("_Prepared")


def _committing(
    prepare: Callable[Concatenate[LedgerWriter, _Prepared], Entry],
) -> Callable[Concatenate[LedgerWriter, _Prepared], Entry]:
    """A writer method taking ``prepare``'s parameters that prepares the next entry and
    commits it in one step (for a store that cannot refuse the entry)."""

    def prepare_and_commit(
        writer: LedgerWriter, /, *args: _Prepared.args, **kwargs: _Prepared.kwargs
    ) -> Entry:
        entry = prepare(writer, *args, **kwargs)
        writer.commit(entry)
        return entry

    # inspect.signature() follows __wrapped__: help() shows prepare's parameters.
    functools.update_wrapper(prepare_and_commit, prepare, assigned=("__module__",), updated=())
    prepare_and_commit.__doc__ = f"``{prepare.__name__}`` and ``commit`` in one step."
    return prepare_and_commit


class LedgerWriter:
    """Makes the next entries of one ledger and signs its checkpoints."""

    def __init__(self, head: ChainHead, *, clock: Callable[[], int] = time.time_ns) -> None:
        self.ledger = head.ledger
        # The head as plain values: a commit is on every record's path, a model is not needed.
        self._count = head.count
        self._hash = head.hash
        self._ts = head.ts_ns
        self._key = head.key
        self._clock = clock
        self.clamped = 0
        """How many entries took the previous entry's time because the clock was behind it."""

    @property
    def head(self) -> ChainHead:
        """The head after the last committed entry."""
        return ChainHead(
            ledger=self.ledger, count=self._count, hash=self._hash, ts_ns=self._ts, key=self._key
        )

    def _time(self, ts_ns: int | None) -> int:
        if ts_ns is None:
            now = self._clock()
            if now < self._ts:
                # The clock stepped back (NTP, a VM resumed): keep the chain's time monotonic.
                self.clamped += 1
                return self._ts
            return now
        if ts_ns < self._ts:
            raise ChainError(
                f"ts_ns {ts_ns} is before the last entry's ({self._ts}): "
                "a ledger's time never goes back"
            )
        return ts_ns

    def prepare(
        self,
        kind: str,
        subject: str,
        actor: str,
        body: Mapping[str, Any],
        *,
        ts_ns: int | None = None,
    ) -> Entry:
        """The next entry (not yet committed); ``EntryError`` names a bad field."""
        if kind == ROTATION_KIND:
            raise ChainError("a key_rotation entry is made by prepare_rotation()")
        return Entry.create(
            self._count + 1,
            self._time(ts_ns),
            kind,
            subject,
            actor,
            body,
            self._hash,
        )

    def prepare_rotation(
        self, old: SigningKey, new: SigningKey, actor: str, *, ts_ns: int | None = None
    ) -> Entry:
        """The next entry: a ``key_rotation`` from ``old`` (the key in force) to ``new``."""
        if self._key is not None and old.key_id != self._key:
            raise ChainError(
                f"the key in force is {self._key}, not {old.key_id}: only it can hand over"
            )
        if new.key_id == old.key_id:
            raise ChainError("the new key is the old key")
        seq = self._count + 1
        body = rotation_body(self.ledger, seq, self._hash, old, new)
        # The subject of a rotation is the key it brings in.
        return Entry.create(
            seq, self._time(ts_ns), ROTATION_KIND, new.key_id, actor, body, self._hash
        )

    def commit(self, entry: Entry) -> None:
        """Advance the head past ``entry``, which the caller has stored."""
        if entry.seq != self._count + 1 or entry.prev != self._hash:
            raise ChainError(
                f"entry {entry.seq} does not follow the head (count {self._count}): "
                "prepare it again"
            )
        if entry.ts_ns < self._ts:
            raise ChainError(f"entry {entry.seq} is dated before the head")
        if entry.kind == ROTATION_KIND:
            self._key = str(entry.body["new_key"])
        self._count, self._hash, self._ts = entry.seq, entry.hash, entry.ts_ns

    append = _committing(prepare)
    rotate = _committing(prepare_rotation)

    def checkpoint(self, key: SigningKey, *, ts_ns: int | None = None) -> Checkpoint:
        """A checkpoint of the head signed with ``key``, which must be the key in force.

        The first checkpoint of a new ledger binds its key; after that, only a rotation changes
        it.
        """
        if self._key is not None and key.key_id != self._key:
            raise ChainError(
                f"the key in force at entry {self._count} is {self._key}, "
                f"not {key.key_id}: sign with it, or rotate first"
            )
        if self._key is None:
            self._key = key.key_id
        now = self._clock() if ts_ns is None else ts_ns
        return Checkpoint.sign(key, self.ledger, self._count, self._hash, now)
