"""The record store's ledger: every record change appends a hash-chained entry in the same
SQLite transaction as the change, and the chain is signed by checkpoints kept outside the
database (docs/records.md).

Several processes may write one record store (the gateway, ``etalon standards import-dcc``,
``etalon records rotate-key``). Each writer, while it appends, holds an exclusive lock file
beside the store, and before it lets go of it, it signs a checkpoint if its session asks for
one (a command signs every session; the gateway signs every N entries or T seconds). So when a
writer finds the stored chain ahead of the head it committed, the extension must be another
writer's signed work; if it is not, something wrote the ledger behind etalon's back: that is a
finding (raised as an alert by the gateway's monitor) and is itself recorded in the chain
(a ``records.integrity`` entry) before the writer goes on from the stored chain.

Appending reads the stored chain's last entry each time (one indexed lookup): a savepoint
rolled back, or two transactions in one :meth:`RecordStore.run`, never leave the writer on an
entry that is not there. :meth:`RecordsLedger.finish` (called by the record store after each
``run``) learns what was committed, signs when due and releases the lock.

The key and checkpoint files are :mod:`gateway.records.keys`; the rest stays in one module, as
:class:`RecordsLedger` is one writer's state machine (lock, head, rotation, checkpoints) whose
invariants splitting would scatter.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError, StoreError
from core.logs import log_event
from gateway.records.config import RecordsConfig
from gateway.records.keys import load_key, trusted_keys, write_public_key
from ledger import (
    ROTATION_KIND,
    ChainHead,
    Checkpoint,
    CheckpointFile,
    Entry,
    LedgerError,
    LedgerWriter,
    SigningKey,
    export_segment,
    genesis_hash,
    verify_segment,
)

log = logging.getLogger("etalon.gateway.records")

FORMAT = "etalon-records/1"
"""What the first entry of a record store's ledger names (``records.start``)."""
START_KIND = "records.start"
INTEGRITY_KIND = "records.integrity"
LOCK_TIMEOUT_S = 30.0
ENTRY_COLUMNS = "seq, ts_ns, kind, subject, actor, body_json, prev, hash"
_TAIL = "SELECT seq, hash, ts_ns FROM ledger ORDER BY seq DESC LIMIT 1"


@dataclass(frozen=True)
class LedgerSettings:
    """How a process uses the ledger: its paths and policy (from ``records:``), the id a new
    ledger gets, whether it may write (it has the key), and whether it signs every session."""

    records: RecordsConfig
    default_id: str
    writer: bool = True
    sign_each_session: bool = False
    clock: Callable[[], int] = time.time_ns

    @classmethod
    def of(
        cls,
        records: RecordsConfig,
        site: str,
        gateway_id: str,
        *,
        writer: bool = True,
        sign_each_session: bool = False,
    ) -> LedgerSettings:
        """The settings of a gateway config's record store."""
        return cls(records, f"{site}.{gateway_id}", writer, sign_each_session)


@dataclass
class Finding:
    """Something the writer found wrong while appending (the stored chain moved under it)."""

    code: str
    params: dict[str, str | int] = field(default_factory=dict)


def entries(db: sqlite3.Connection, after: int = 0) -> sqlite3.Cursor:
    """The stored entries after ``after``, in ``seq`` order (rows in ``Entry``'s columns)."""
    return db.execute(f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE seq > ? ORDER BY seq", (after,))


def ledger_id_of(db: sqlite3.Connection) -> str | None:
    """The ledger id the record store was started with (None before the ledger starts)."""
    row = db.execute("SELECT value FROM ledger_meta WHERE key='ledger'").fetchone()
    return None if row is None else str(row[0])


class RecordsLedger:
    """The ledger of one record store, as one process uses it (see the module doc)."""

    def __init__(self, settings: LedgerSettings) -> None:
        self.settings = settings
        self.records = settings.records
        self.ledger_id: str | None = None
        self.key: SigningKey | None = None
        self.head: ChainHead | None = None
        """The head this process committed (or adopted)."""
        self._pending: dict[str, Entry] = {}
        self._rotating: SigningKey | None = None
        self._lock: int | None = None
        self.unsigned = 0
        """Committed entries not yet covered by a checkpoint this process signed."""
        self._last_checkpoint = time.monotonic()
        self.on_checkpoint: list[Callable[[Checkpoint], None]] = []
        """Called (on the record store's thread) with every checkpoint signed."""
        self.on_finding: list[Callable[[Finding], None]] = []
        """Called (on the record store's thread) when the stored chain moved under the writer."""
        self.checkpoints_signed = 0
        self.entries_appended = 0

    # -- opening --------------------------------------------------------------------------------

    def open(self, db: sqlite3.Connection) -> None:
        """Learn the ledger's id and head; a writer loads its key, and starts the ledger (with
        the records already there, as imported) when the store has none."""
        stored_id = ledger_id_of(db)
        wanted = self.records.ledger.id
        if stored_id is not None and wanted is not None and wanted != stored_id:
            raise ConfigError(
                [
                    f"records.ledger.id: the record store's ledger is {stored_id!r}, not "
                    f"{wanted!r} (a ledger's id is fixed when it starts)"
                ]
            )
        tail = db.execute(_TAIL).fetchone()
        if not self.settings.writer:
            self.ledger_id = stored_id
            if stored_id is not None:
                self.head = self._head_from(db, stored_id, tail, None)
            return
        self.key = load_key(self.records, create=tail is None)
        if self.records.ledger.key_env is None and not self.records.public_key_path().exists():
            write_public_key(self.records.public_key_path(), self.key.public_key)
        if stored_id is None or tail is None:
            self._start(db, stored_id or wanted or self.settings.default_id)
            return
        self.ledger_id = stored_id
        self.head = self._head_from(db, stored_id, tail, self.key)

    def _head_from(
        self, db: sqlite3.Connection, ledger_id: str, tail: Any, key: SigningKey | None
    ) -> ChainHead:
        in_force = self._key_in_force(db)
        if tail is None:
            return ChainHead.start(ledger_id)
        if key is not None and in_force is not None and in_force != key.key_id:
            key = self._finish_rotation(in_force) or key
            if key.key_id != in_force:
                raise ConfigError(
                    [
                        f"records.ledger: the ledger's key in force is {in_force}, the configured "
                        f"key is {key.key_id}: configure the key in force (a new key comes in by "
                        "`etalon records rotate-key`, which the chain records)"
                    ]
                )
            self.key = key
        return ChainHead(ledger=ledger_id, count=tail[0], hash=tail[1], ts_ns=tail[2], key=in_force)

    def _key_in_force(self, db: sqlite3.Connection) -> str | None:
        """The key of the latest rotation or checkpoint (whichever is later), None if neither:
        a rotation hands over for every count from its own on."""
        rotation = db.execute(
            "SELECT seq, subject FROM ledger WHERE kind=? ORDER BY seq DESC LIMIT 1",
            (ROTATION_KIND,),
        ).fetchone()
        try:
            last = CheckpointFile(self.records.checkpoints_path()).last()
        except LedgerError:
            last = None
        if rotation is not None and (last is None or last.count < rotation[0]):
            return str(rotation[1])
        return None if last is None else last.key

    def _finish_rotation(self, in_force: str) -> SigningKey | None:
        """A rotation whose commit happened but whose key file was not yet moved into place
        (a crash in between): the new key waits in ``<key>.new``."""
        if self.records.ledger.key_env is not None:
            return None
        staged = self.records.key_path().with_name(self.records.key_path().name + ".new")
        try:
            key = SigningKey.load(staged)
        except LedgerError:
            return None
        if key.key_id != in_force:
            return None
        staged.replace(self.records.key_path())
        write_public_key(self.records.public_key_path(), key.public_key)
        log_event(log, logging.WARNING, "ledger key rotation completed at start", key=key.key_id)
        return key

    def _start(self, db: sqlite3.Connection, ledger_id: str) -> None:
        """The first entries: ``records.start``, then the records already in the store."""
        from gateway.records.bodies import import_existing

        self.ledger_id = ledger_id
        self.head = ChainHead.start(ledger_id)
        db.execute("BEGIN IMMEDIATE")
        try:
            now = self.settings.clock()
            db.execute(
                "INSERT INTO ledger_meta VALUES ('ledger', ?), ('started_ns', ?), ('format', ?)",
                (ledger_id, str(now), FORMAT),
            )
            counts = import_existing(db, self)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._pending.clear()
            self._release()
            self.head = None
            raise
        self.finish(db)
        if self.unsigned:
            self.checkpoint(db)
        log_event(log, logging.INFO, "record ledger started", ledger=ledger_id, **counts)

    # -- appending ------------------------------------------------------------------------------

    def append(
        self, db: sqlite3.Connection, kind: str, subject: str, actor: str, body: Mapping[str, Any]
    ) -> Entry:
        """Append an entry inside the caller's open transaction (with the record it records)."""
        if self.key is None or self.head is None or self.ledger_id is None:
            raise StoreError(
                f"record store {self.records.path}: this process cannot write records (it was "
                "opened without the ledger's signing key)"
            )
        if not db.in_transaction:
            raise StoreError("a ledger entry is appended inside the transaction of its record")
        self._acquire()
        tail = db.execute(_TAIL).fetchone()
        count, digest, ts_ns = (0, genesis_hash(self.ledger_id), 0) if tail is None else tail
        if digest != self.head.hash and digest not in self._pending:
            self._moved(db, count, digest)
            tail = db.execute(_TAIL).fetchone()
            count, digest, ts_ns = tail
        session = LedgerWriter(
            ChainHead(ledger=self.ledger_id, count=count, hash=digest, ts_ns=ts_ns),
            clock=self.settings.clock,
        )
        try:
            entry = session.prepare(kind, subject, actor, body)
        except LedgerError as exc:
            raise StoreError(f"ledger entry {kind} {subject}: {exc}") from None
        db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)", tuple(entry))
        self._pending[entry.hash] = entry
        return entry

    def rotate(self, db: sqlite3.Connection, new: SigningKey, actor: str) -> Entry:
        """Append a ``key_rotation`` entry (old key hands over to ``new``) in the caller's
        transaction; :meth:`finish` then signs with the new key."""
        if self.key is None or self.ledger_id is None or self.head is None:
            raise StoreError("this process cannot write records")
        if not db.in_transaction:
            raise StoreError("a key rotation is appended inside a transaction")
        self._acquire()
        tail = db.execute(_TAIL).fetchone()
        if tail is None or (tail[1] != self.head.hash and tail[1] not in self._pending):
            raise StoreError("the stored chain is not where this writer left it: verify first")
        session = LedgerWriter(
            ChainHead(
                ledger=self.ledger_id,
                count=tail[0],
                hash=tail[1],
                ts_ns=tail[2],
                key=self.head.key,
            ),
            clock=self.settings.clock,
        )
        try:
            entry = session.prepare_rotation(self.key, new, actor)
        except LedgerError as exc:
            raise StoreError(f"key rotation: {exc}") from None
        db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)", tuple(entry))
        self._pending[entry.hash] = entry
        self._rotating = new
        return entry

    def _signed_extension(self, db: sqlite3.Connection, count: int) -> ChainHead | None:
        """The head after entries another writer appended beyond ours, if a checkpoint signed
        with a key we trust covers them and they continue our chain; else None."""
        assert self.head is not None and self.ledger_id is not None
        head = self.head
        try:
            segment = export_segment(
                list(entries(db, head.count)),
                CheckpointFile(self.records.checkpoints_path()).read(),
                ledger=self.ledger_id,
                from_seq=head.count + 1,
                to_seq=count,
                max_entries=min(count - head.count, 10_000),
            )
            verdict = verify_segment(segment, head, trusted_keys(self.records, self.key))
        except LedgerError as exc:
            log_event(log, logging.DEBUG, "ledger extension not signed", reason=str(exc))
            return None
        if not verdict.accepted:
            log_event(log, logging.DEBUG, "ledger extension refused", reason=verdict.message)
            return None
        if verdict.new_keys:
            self._reload_key(verdict.head)
        return verdict.head

    def _catch_up(self, db: sqlite3.Connection, count: int, digest: str) -> bool:
        """Adopt another writer's signed extension; False if the stored chain is not that."""
        assert self.head is not None
        if count > self.head.count:
            extended = self._signed_extension(db, count)
            if extended is not None and extended.hash == digest:
                self.head = extended
                self.unsigned = 0
                return True
        return False

    def _moved(self, db: sqlite3.Connection, count: int, digest: str) -> None:
        """The stored chain is not at our head: another writer's signed work, or tampering."""
        assert self.head is not None and self.ledger_id is not None
        if self._catch_up(db, count, digest):
            return
        head = self.head
        if count > head.count:
            finding = Finding("records.moved.unsigned", {"from": head.count + 1, "to": count})
        elif count < head.count:
            finding = Finding("records.moved.shorter", {"count": count, "head": head.count})
        else:
            finding = Finding("records.moved.replaced", {"seq": count})
        log_event(
            log,
            logging.ERROR,
            "ledger changed behind the writer",
            code=finding.code,
            **{k: str(v) for k, v in finding.params.items()},
        )
        # Go on from what is stored (every change is still chained) and record what was found:
        # the entry below is signed with the next checkpoint, so the finding stays on record.
        tail = db.execute(_TAIL).fetchone()
        self.head = ChainHead(
            ledger=self.ledger_id,
            count=count,
            hash=digest,
            ts_ns=tail[2] if tail is not None else 0,
            key=head.key,
        )
        body = {"code": finding.code, "params": finding.params, "writer_head": head.count}
        self.append(db, INTEGRITY_KIND, "ledger", "gateway", body)
        for callback in self.on_finding:
            with contextlib.suppress(Exception):
                callback(finding)

    def _reload_key(self, head: ChainHead) -> None:
        """Another process rotated the key: take the new one from the key file."""
        if head.key is None or self.key is None or head.key == self.key.key_id:
            return
        try:
            self.key = load_key(self.records, create=False)
        except ConfigError as exc:
            log_event(log, logging.ERROR, "ledger key rotated, new key unreadable", reason=str(exc))
            return
        if self.key.key_id != head.key:
            log_event(
                log,
                logging.ERROR,
                "ledger key rotated by another process: restart with the new key",
                key=head.key,
            )

    # -- after each run: commit, sign, unlock ---------------------------------------------------

    def finish(self, db: sqlite3.Connection) -> None:
        """What was committed since the last call becomes the head; sign when due; unlock."""
        if db.in_transaction:
            return  # the caller's transaction is still open: its entries are not committed
        if self._pending:
            assert self.head is not None
            tail = db.execute(_TAIL).fetchone()
            committed = self._pending.get(tail[1]) if tail is not None else None
            if committed is not None:
                self.unsigned += committed.seq - self.head.count
                self.entries_appended += committed.seq - self.head.count
                key = self.head.key
                for entry in self._pending.values():
                    if entry.kind == ROTATION_KIND and entry.seq <= committed.seq:
                        key = str(entry.body["new_key"])
                        if self._rotating is not None and self._rotating.key_id == key:
                            self.key = self._rotating
                self.head = ChainHead(
                    ledger=self.head.ledger,
                    count=committed.seq,
                    hash=committed.hash,
                    ts_ns=committed.ts_ns,
                    key=key,
                )
            self._pending.clear()
            self._rotating = None
        if self._lock is None:
            return
        try:
            due = self.settings.sign_each_session or (
                self.unsigned >= self.records.ledger.checkpoint_every_entries
            )
            if self.unsigned and due:
                self.checkpoint(db)
        finally:
            self._release()

    def checkpoint_due(self) -> bool:
        """Whether entries wait for a signature longer than ``checkpoint_every_s``."""
        every = self.records.ledger.checkpoint_every_s
        return self.unsigned > 0 and time.monotonic() - self._last_checkpoint >= every

    def checkpoint(self, db: sqlite3.Connection) -> Checkpoint | None:
        """Sign the committed head and keep the checkpoint (file, copies, listeners)."""
        if self.key is None or self.head is None or self.head.count == 0:
            return None
        held = self._lock is not None
        self._acquire()
        try:
            tail = db.execute(_TAIL).fetchone()
            if tail is not None and tail[1] != self.head.hash:
                # Another writer's signed work is adopted; anything else is left unsigned (the
                # next append records it as a finding).
                self._catch_up(db, tail[0], tail[1])
            writer = LedgerWriter(self.head, clock=self.settings.clock)
            try:
                checkpoint = writer.checkpoint(self.key)
            except LedgerError as exc:
                raise StoreError(f"ledger checkpoint: {exc}") from None
            CheckpointFile(self.records.checkpoints_path()).append(checkpoint)
            for copy in self.records.ledger.checkpoint_copies:
                try:
                    CheckpointFile(copy).append(checkpoint)
                except LedgerError as exc:
                    log_event(log, logging.ERROR, "checkpoint copy not written", reason=str(exc))
            self.head = writer.head
            self.unsigned = 0
            self._last_checkpoint = time.monotonic()
            self.checkpoints_signed += 1
        finally:
            if not held:
                self._release()
        for callback in self.on_checkpoint:
            with contextlib.suppress(Exception):
                callback(checkpoint)
        return checkpoint

    # -- the writers' lock ----------------------------------------------------------------------

    def _acquire(self) -> None:
        if self._lock is not None:
            return
        path = self.records.lock_path()
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"ledger lock {path}: {exc.strerror}") from None
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(descriptor)
                    raise StoreError(
                        f"ledger lock {path}: held by another writer for {LOCK_TIMEOUT_S:g} s"
                    ) from None
                time.sleep(0.01)
        self._lock = descriptor

    def _release(self) -> None:
        if self._lock is not None:
            descriptor, self._lock = self._lock, None
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def close(self, db: sqlite3.Connection | None) -> None:
        """Sign what is unsigned (a clean stop) and let go of the lock."""
        try:
            if db is not None and self.unsigned and not db.in_transaction:
                self.checkpoint(db)
        finally:
            self._release()
