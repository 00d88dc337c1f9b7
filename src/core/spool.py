"""A transactional, bounded FIFO of byte entries in SQLite (WAL), behind an async face.

The agent spools one entry per reading before it publishes; the gateway spools one entry per
accepted MQTT message before it acknowledges it. An entry leaves only by :meth:`Spool.ack` (the
next hop took it) or by :meth:`Spool.append` dropping the oldest when the spool is full — and
then it is counted in ``dropped``, never silently.

Ids grow strictly (``AUTOINCREMENT``), so a reader can walk forward with a cursor even after the
spool emptied. All SQLite work runs on one dedicated thread; the connection never leaves it.

Durability: with ``synchronous=full`` each commit is fsync'ed in WAL mode, so an appended entry
survives power loss; with ``normal`` it survives a crash of the process (the WAL is in the OS
cache) but the last commits may be lost if the machine loses power.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field

from core.errors import SpoolError
from core.logs import log_event
from core.models import FrozenModel

log = logging.getLogger("etalon.spool")


class SpoolConfig(FrozenModel):
    """The on-disk spool (SQLite, WAL) that holds readings until the next hop acknowledged them."""

    path: Path = Field(..., description="SQLite file; its directory is created if missing.")
    max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="When full, the oldest entries are dropped (counted).",
    )
    synchronous: Literal["full", "normal"] = Field(
        "full",
        description="full: every commit is fsync'ed, so a commit survives power loss. normal: a "
        "commit survives a process crash but the last ones may be lost on power loss.",
    )


T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One spooled entry."""

    id: int
    data: bytes


class Spool:
    """See the module doc. Create, then ``await open()``; ``await close()`` at the end."""

    def __init__(self, config: SpoolConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.path = Path(config.path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spool-{name}")
        self._db: sqlite3.Connection | None = None
        self.depth = 0
        self.bytes = 0
        self.dropped = 0
        self.appended = 0
        self.acked = 0
        self.changed = asyncio.Event()

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(self) -> None:
        """Open or create the file; raises SpoolError naming the file and the reason."""
        await self._run(self._open)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.config.synchronous.upper()}")
            db.executescript(_SCHEMA)
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(entry)), 0) FROM spool"
            ).fetchone()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot open: {exc}") from exc
        self._db = db
        self.depth, self.bytes = int(row[0]), int(row[1])

    async def close(self) -> None:
        """Close the file (entries stay for the next run)."""
        if self._db is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        assert self._db is not None
        with contextlib.suppress(sqlite3.Error):  # the WAL is replayed at the next open
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._db = None

    async def append(self, entries: list[bytes]) -> int:
        """Commit entries (one transaction); returns how many old entries were dropped to fit."""
        if not entries:
            return 0
        dropped = await self._run(lambda: self._append(entries))
        self.changed.set()
        if dropped:
            log_event(
                log,
                logging.WARNING,
                "spool full, oldest entries dropped",
                spool=self.name,
                dropped=dropped,
                total_dropped=self.dropped,
                max_bytes=self.config.max_bytes,
            )
        return dropped

    def _append(self, entries: list[bytes]) -> int:
        db = self._require()
        size = sum(len(e) for e in entries)
        try:
            db.execute("BEGIN IMMEDIATE")
            dropped, freed = self._make_room(db, size)
            db.executemany("INSERT INTO spool(entry) VALUES (?)", ((e,) for e in entries))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise SpoolError(f"spool {self.path}: cannot append: {exc}") from exc
        self.depth += len(entries) - dropped
        self.bytes += size - freed
        self.appended += len(entries)
        self.dropped += dropped
        return dropped

    def _make_room(self, db: sqlite3.Connection, incoming: int) -> tuple[int, int]:
        excess = self.bytes + incoming - self.config.max_bytes
        if excess <= 0:
            return 0, 0
        dropped = freed = 0
        last_id = None
        for entry_id, length in db.execute("SELECT id, LENGTH(entry) FROM spool ORDER BY id"):
            dropped += 1
            freed += length
            last_id = entry_id
            if freed >= excess:
                break
        if last_id is not None:
            db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
        return dropped, freed

    async def read(self, after_id: int, limit: int) -> list[Entry]:
        """Up to ``limit`` oldest entries with id > ``after_id``."""
        return await self._run(lambda: self._read(after_id, limit))

    def _read(self, after_id: int, limit: int) -> list[Entry]:
        rows = self._require().execute(
            "SELECT id, entry FROM spool WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [Entry(int(i), bytes(e)) for i, e in rows]

    async def ack(self, first_id: int, last_id: int) -> int:
        """Remove entries with ids in [first_id, last_id]; returns how many were there."""
        removed = await self._run(lambda: self._ack(first_id, last_id))
        self.changed.set()
        return removed

    def _ack(self, first_id: int, last_id: int) -> int:
        db = self._require()
        try:
            db.execute("BEGIN IMMEDIATE")
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(entry)), 0) FROM spool"
                " WHERE id BETWEEN ? AND ?",
                (first_id, last_id),
            ).fetchone()
            db.execute("DELETE FROM spool WHERE id BETWEEN ? AND ?", (first_id, last_id))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise SpoolError(
                f"spool {self.path}: cannot remove acknowledged entries: {exc}"
            ) from exc
        self.depth -= int(count)
        self.bytes -= int(size)
        self.acked += int(count)
        return int(count)

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError(f"spool {self.path}: not open")
        return self._db
