"""A transactional, bounded FIFO of byte entries in SQLite (WAL), behind an async face.

The agent spools one entry per poll of an instrument (the poll's readings, encoded) before it
publishes; the gateway spools one entry per accepted MQTT message before it acknowledges it. An
entry may say how many items (readings) it carries: ``depth``, ``dropped``, ``acked`` and the
result of :meth:`Spool.ack` count items, so they mean readings whatever the entries hold.

An entry leaves only by :meth:`Spool.ack` (the next hop took it) or by :meth:`Spool.append`
dropping the oldest when the spool is full — and then it is counted in ``dropped``, never
silently. :meth:`Spool.ack_later` acknowledges without a commit of its own: the entries are
removed in the transaction of the next append (a busy agent appends every few tens of
milliseconds: one commit and one fsync for both, not two), or after ``ACK_DELAY_S`` when no
append came — sooner when the appends have stopped (:meth:`Spool.until_quiet`) — or at close.

Ids grow strictly (``AUTOINCREMENT``), so a reader can walk forward with a cursor even after the
spool emptied. Appends and removals run on one dedicated thread with its own connection; reads
on another thread with a second connection, which WAL lets read what is committed while the first
commits: a reader that fell behind its memory (a gateway's writer after a burst, an agent after an
outage) does not wait behind the appends' fsync'ed commits. Each connection stays on its thread.

The newest committed entries are also kept in memory (up to ``memory_bytes``: by default
``RECENT_MAX_BYTES``; the gateway's writer asks for more), so a reader that keeps up — the
agent's publisher, the gateway's writer — gets them without a trip to the SQLite thread, where it
would wait behind the next commit's fsync.

Durability: with ``synchronous=full`` each commit is fsync'ed in WAL mode, so an appended entry
survives power loss; with ``normal`` it survives a crash of the process (the WAL is in the OS
cache) but the last commits may be lost if the machine loses power.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import functools
import itertools
import logging
import math
import operator
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

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

ACK_DELAY_S = 0.05
"""How long an :meth:`Spool.ack_later` waits for an append to carry it before it is committed
alone (at most: see :meth:`Spool.until_quiet`)."""

QUIET_GAPS = 4
"""A spool whose appends came at a cadence is quiet after this many of its recent gaps between
appends without one (see :meth:`Spool.until_quiet`)."""

QUIET_MIN_S = 0.005
"""... and never sooner than this after the last append: the gateway's appends come in bursts a
few milliseconds apart while its event loop does other work."""

_GAP_WEIGHT = 0.25
"""Weight of the newest gap in the moving average of the gaps between appends."""

RECENT_MAX_BYTES = 2 * 1024 * 1024
"""Most bytes of the newest committed entries kept in memory for readers that keep up."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry BLOB NOT NULL,
    n INTEGER NOT NULL DEFAULT 1
);
"""
_ID = operator.itemgetter(0)
"""An :class:`Entry`'s id (its first field)."""
_UPGRADE = "ALTER TABLE spool ADD COLUMN n INTEGER NOT NULL DEFAULT 1"
"""A spool file written before entries carried a count: each of its entries holds one item."""


class Entry(NamedTuple):
    """One spooled entry, holding ``count`` items.

    A tuple: a read of hundreds of entries makes them from SQLite's rows in C
    (:data:`_entry_of_row`), not by a Python constructor per entry."""

    id: int
    data: bytes
    count: int = 1  # type: ignore[assignment]  # shadows tuple.count: the name callers use


_entry_of_row: Callable[[tuple[int, bytes, int]], Entry] = functools.partial(tuple.__new__, Entry)
"""An (id, entry, n) row of the spool table as an Entry: SQLite gives int, bytes, int."""


_Counted = TypeVar("_Counted", Entry, tuple[int, bytes, int])


def within_items(entries: Iterable[_Counted], max_items: int) -> list[_Counted]:
    """The leading ``entries`` (rows or :class:`Entry`) whose running total of items stays
    within ``max_items``, but always the first (counts are never negative, so the totals only
    grow). Taken one at a time and no further than the first that does not fit: from a cursor,
    the rows after it are never made (a gateway's entries are ~50 kB each)."""
    taken: list[_Counted] = []
    total = 0
    for entry in entries:
        total += entry[2]  # the item count: a row's third field, and an Entry's
        if taken and total > max_items:
            break
        taken.append(entry)
    return taken


class Spool:
    """See the module doc. Create, then ``await open()``; ``await close()`` at the end."""

    def __init__(
        self, config: SpoolConfig, name: str, *, memory_bytes: int = RECENT_MAX_BYTES
    ) -> None:
        self.config = config
        self.name = name
        self.memory_bytes = memory_bytes
        """Most bytes of the newest committed entries kept in memory for readers that keep up."""
        self.path = Path(config.path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spool-{name}")
        self._db: sqlite3.Connection | None = None
        self._rows_per_insert = 1
        """Rows one INSERT statement takes (two parameters each, within SQLite's limit)."""
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spool-read-{name}")
        self._read_db: sqlite3.Connection | None = None
        """The readers' connection, opened on the reads' thread at the first read."""
        self._reads_closing = False
        """close() has begun closing the reads' side (a second close leaves it alone)."""
        self._reads_closed = False
        """Set on the reads' thread as its connection closes: a read queued after that must not
        open it again."""
        self.depth = 0
        self.bytes = 0
        self.dropped = 0
        self.appended = 0
        self.acked = 0
        self.dropped_through = 0
        """The highest id dropped to make room (0: none in this run): a reader holding entries
        it read earlier forgets those at or below it."""
        self.changed = asyncio.Event()
        self.last_ids = range(0)
        """The ids the latest :meth:`append` gave its entries, in their order."""
        self._recent: collections.deque[Entry] = collections.deque()
        """The newest committed entries, contiguous: every entry still spooled with an id from
        the first one's on is here."""
        self._recent_bytes = 0
        self._acks: list[tuple[int, int, asyncio.Future[int]]] = []
        """Ranges acknowledged with :meth:`ack_later`, not yet removed, each with the future of
        how many items it held."""
        self._ack_flusher: asyncio.Task[None] | None = None
        self._appended_at: float | None = None
        """When the latest append was committed (the event loop's clock)."""
        self._append_gap_s = math.inf
        """A moving average of the time between appends; inf until two appends were seen."""

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
            # Debian's SQLite zeroes removed entries (secure_delete), writing their pages again:
            # FAST zeroes only what is written anyway (71 MB removed: 0.10 s of CPU, not 0.25).
            db.execute("PRAGMA secure_delete=FAST")
            db.executescript(_SCHEMA)
            columns = {r[1] for r in db.execute("PRAGMA table_info(spool)")}
            if "n" not in columns:
                db.execute(_UPGRADE)
            row = db.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(entry)), 0) FROM spool"
            ).fetchone()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot open: {exc}") from exc
        self._db = db
        variables = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(500, variables // 2))
        self.depth, self.bytes = int(row[0]), int(row[1])

    async def close(self) -> None:
        """Close the file (entries stay for the next run); acknowledgements still pending are
        committed first."""
        if self._ack_flusher is not None:
            # Not cancelled: a commit it started would go on in the spool's thread, uncounted.
            await asyncio.gather(self._ack_flusher, return_exceptions=True)
        if not self._reads_closing:  # a second close has nothing more to do here
            self._reads_closing = True
            # Through the reads' thread, which runs its jobs in order: a read queued there before
            # the close (even the first, which opens the connection) is answered; one queued
            # after it finds the spool closed.
            await asyncio.get_running_loop().run_in_executor(self._reads, self._close_reader)
            self._reads.shutdown(wait=True)
        if self._db is not None:
            await self._commit_acks()
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _close_reader(self) -> None:
        self._reads_closed = True
        if self._read_db is not None:
            self._read_db.close()
            self._read_db = None

    def _close(self) -> None:
        assert self._db is not None
        with contextlib.suppress(sqlite3.Error):  # the WAL is replayed at the next open
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
        self._db = None

    async def append(self, entries: list[bytes] | list[tuple[bytes, int]]) -> int:
        """Commit entries (one transaction), each bytes (one item) or (bytes, items); returns
        how many old items were dropped to fit."""
        if not entries:
            return 0
        dropped, last_dropped, added, _removed = await self._carrying(
            lambda ranges: self._append(entries, ranges), operator.itemgetter(3)
        )
        if last_dropped is not None:
            self.dropped_through = max(self.dropped_through, last_dropped)
        self.last_ids = range(added[0].id, added[-1].id + 1)
        self._remember(last_dropped, added)
        self._note_append()
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

    def _append(
        self, entries: list[bytes] | list[tuple[bytes, int]], acks: list[tuple[int, int]]
    ) -> tuple[int, int | None, list[Entry], list[int]]:
        db = self._require()
        rows = [(e, 1) if isinstance(e, bytes) else e for e in entries]
        size = sum(len(e) for e, _ in rows)
        items = sum(n for _, n in rows)
        try:
            db.execute("BEGIN IMMEDIATE")
            # Acknowledged entries first: the room they free is not taken from unsent ones.
            removed = self._remove(db, acks)
            acked_bytes = sum(size for _count, size in removed)
            dropped, freed, last_dropped = self._make_room(db, size - acked_bytes)
            for start in range(0, len(rows), self._rows_per_insert):
                _insert(db, rows[start : start + self._rows_per_insert])
            # One writer in one transaction: AUTOINCREMENT gives the rows consecutive ids.
            (last_id,) = db.execute("SELECT last_insert_rowid()").fetchone()
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise SpoolError(f"spool {self.path}: cannot append: {exc}") from exc
        self._count_removed(removed)
        self.depth += items - dropped
        self.bytes += size - freed
        self.appended += items
        self.dropped += dropped
        first_id = int(last_id) - len(rows) + 1
        added = [Entry(first_id + k, bytes(e), n) for k, (e, n) in enumerate(rows)]
        return dropped, last_dropped, added, [count for count, _size in removed]

    def _note_append(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._appended_at is not None:
            gap = now - self._appended_at
            previous = self._append_gap_s
            self._append_gap_s = (
                gap if previous == math.inf else previous + _GAP_WEIGHT * (gap - previous)
            )
        self._appended_at = now

    def quiet_at(self) -> float:
        """When (the event loop's clock) the appends count as stopped: ``QUIET_GAPS`` of their
        recent gaps after the last one (at least ``QUIET_MIN_S``); inf while no cadence is
        known (fewer than two appends)."""
        if self._appended_at is None or self._append_gap_s == math.inf:
            return math.inf
        return self._appended_at + max(QUIET_MIN_S, QUIET_GAPS * self._append_gap_s)

    async def until_quiet(self, at_most_s: float) -> None:
        """Wait ``at_most_s``, or less: until the appends have stopped (:meth:`quiet_at`).

        What waits for appends (a removal to ride on the next one, the gateway's writer to fill
        a batch) waits for nothing once a stream of appends ended — a drain's end, the last
        message of a burst — instead of the whole delay; appends that keep coming at their cadence
        keep it waiting to the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + at_most_s
        # Each sleep ends when the appends would count as stopped; one that came meanwhile moved
        # that on, and the loop sleeps again (no event: nothing to wake on but the time).
        while (until := min(deadline, self.quiet_at())) > loop.time():  # noqa: ASYNC110
            await asyncio.sleep(until - loop.time())

    def _remember(self, last_dropped: int | None, added: list[Entry]) -> None:
        """Keep the newest entries in memory (loop thread), contiguous with what is there."""
        recent = self._recent
        if last_dropped is not None:
            while recent and recent[0].id <= last_dropped:
                self._recent_bytes -= len(recent.popleft().data)
        for entry in added:
            recent.append(entry)
            self._recent_bytes += len(entry.data)
        while recent and self._recent_bytes > self.memory_bytes:
            self._recent_bytes -= len(recent.popleft().data)

    def _forget(self, first_id: int, last_id: int) -> None:
        recent = self._recent
        if not recent or last_id < recent[0].id:
            return
        if first_id <= recent[0].id:
            while recent and recent[0].id <= last_id:
                self._recent_bytes -= len(recent.popleft().data)
            return
        kept = [e for e in recent if not first_id <= e.id <= last_id]
        self._recent = collections.deque(kept)
        self._recent_bytes = sum(len(e.data) for e in kept)

    def _from_memory(self, after_id: int, limit: int, max_items: int | None) -> list[Entry] | None:
        """What a read would return, if every entry after ``after_id`` is in memory."""
        recent = self._recent
        if not recent or recent[0].id > after_id + 1:
            return None
        start = bisect.bisect_right(recent, after_id, key=_ID)  # ids ascend (gaps allowed)
        ahead = itertools.islice(recent, start, start + limit)
        return list(ahead) if max_items is None else within_items(ahead, max_items)

    def _make_room(self, db: sqlite3.Connection, incoming: int) -> tuple[int, int, int | None]:
        excess = self.bytes + incoming - self.config.max_bytes
        if excess <= 0:
            return 0, 0, None
        dropped = freed = 0
        last_id = None
        for entry_id, length, n in db.execute("SELECT id, LENGTH(entry), n FROM spool ORDER BY id"):
            dropped += n
            freed += length
            last_id = entry_id
            if freed >= excess:
                break
        if last_id is not None:
            db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
        return dropped, freed, last_id

    async def read(self, after_id: int, limit: int, max_items: int | None = None) -> list[Entry]:
        """Up to ``limit`` oldest entries with id > ``after_id``; with ``max_items``, only as
        many as hold at most that many items together (but always the first one)."""
        recent = self._from_memory(after_id, limit, max_items)
        if recent is not None:
            return recent
        return await asyncio.get_running_loop().run_in_executor(
            self._reads, lambda: self._read(after_id, limit, max_items)
        )

    def _reader(self) -> sqlite3.Connection:
        """The readers' connection (reads' thread), opened at the first read."""
        self._require()
        if self._reads_closed:
            raise SpoolError(f"spool {self.path}: closed")
        if self._read_db is None:
            try:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA query_only=1")
            except sqlite3.Error as exc:
                raise SpoolError(f"spool {self.path}: cannot open for reading: {exc}") from exc
            self._read_db = db
        return self._read_db

    def _read(self, after_id: int, limit: int, max_items: int | None = None) -> list[Entry]:
        cursor = self._reader().execute(
            "SELECT id, entry, n FROM spool WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        if max_items is None:
            rows = cursor.fetchall()
        else:
            rows = within_items(cursor, max_items)
            cursor.close()
        return list(map(_entry_of_row, rows))

    async def ack(self, first_id: int, last_id: int) -> int:
        """Remove entries with ids in [first_id, last_id]; returns how many items they held."""
        (removed,) = await self._run(lambda: self._ack([(first_id, last_id)]))
        self._forget(first_id, last_id)
        self.changed.set()
        return removed

    def ack_later(self, first_id: int, last_id: int) -> asyncio.Future[int]:
        """:meth:`ack` without a commit of its own (see the module doc); the future says how many
        items the entries held once they are removed. The caller's cursor is past them: they are
        no longer kept in memory for readers."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks.append((first_id, last_id, future))
        self._forget(first_id, last_id)
        self._flush_later()
        return future

    def _requeue(self, acks: list[tuple[int, int, asyncio.Future[int]]]) -> None:
        # A cancelled append or commit may never have reached the spool's thread: its removals
        # go back in front, for the flusher or close() (removing a range twice removes nothing).
        self._acks[:0] = acks
        if acks:
            self._flush_later()

    def _flush_later(self) -> None:
        """Start the flusher of pending removals, unless one runs."""
        if self._ack_flusher is None or self._ack_flusher.done():
            self._ack_flusher = asyncio.get_running_loop().create_task(self._flush_acks_later())

    async def _flush_acks_later(self) -> None:
        # Until none is left: an acknowledgement that came while this flusher was committing
        # found it not done and started no other; without the loop it would wait for the next
        # append, and an agent draining its spool with no more appends would never remove it.
        while self._acks:
            await self.until_quiet(ACK_DELAY_S)
            with contextlib.suppress(SpoolError):  # the acknowledgements' futures carry it
                await self._commit_acks()

    async def _commit_acks(self) -> None:
        """Commit the acknowledgements no append carried."""
        if not self._acks:
            return
        await self._carrying(self._ack, _same)
        self.changed.set()

    async def _carrying(
        self, job: Callable[[list[tuple[int, int]]], T], removed: Callable[[T], list[int]]
    ) -> T:
        """Run ``job`` on the spool's thread with the pending removals' ranges and settle their
        futures with its outcome (``removed`` finds the counts in its result)."""
        acks, self._acks = self._acks, []
        ranges = [(first, last) for first, last, _future in acks]
        try:
            result = await self._run(lambda: job(ranges))
        except asyncio.CancelledError:
            self._requeue(acks)
            raise
        except BaseException as exc:
            _settle(acks, exc)
            raise
        _settle(acks, removed(result))
        return result

    def _ack(self, ranges: list[tuple[int, int]]) -> list[int]:
        db = self._require()
        try:
            db.execute("BEGIN IMMEDIATE")
            removed = self._remove(db, ranges)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise SpoolError(
                f"spool {self.path}: cannot remove acknowledged entries: {exc}"
            ) from exc
        self._count_removed(removed)
        return [count for count, _size in removed]

    @staticmethod
    def _remove(db: sqlite3.Connection, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Delete each range (inside the caller's transaction); (items, bytes) of each."""
        removed = []
        for first_id, last_id in ranges:
            count, size = db.execute(
                "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(entry)), 0) FROM spool"
                " WHERE id BETWEEN ? AND ?",
                (first_id, last_id),
            ).fetchone()
            db.execute("DELETE FROM spool WHERE id BETWEEN ? AND ?", (first_id, last_id))
            removed.append((int(count), int(size)))
        return removed

    def _count_removed(self, removed: list[tuple[int, int]]) -> None:
        """After the commit: the removed ranges leave the counters."""
        for count, size in removed:
            self.depth -= count
            self.bytes -= size
            self.acked += count

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError(f"spool {self.path}: not open")
        return self._db


def _insert(db: sqlite3.Connection, rows: list[tuple[bytes, int]]) -> None:
    """Rows in one INSERT statement: the sqlite3 module takes the GIL back after every step, at
    up to the switch interval's cost while the loop's thread computes (docs/performance.md)."""
    values = ", ".join(["(?, ?)"] * len(rows))
    db.execute(f"INSERT INTO spool(entry, n) VALUES {values}", [v for row in rows for v in row])


def _same(counts: list[int]) -> list[int]:
    return counts


def _settle(
    acks: list[tuple[int, int, asyncio.Future[int]]], outcome: list[int] | BaseException
) -> None:
    """Resolve the futures of deferred acknowledgements with their counts, or the failure."""
    for k, (_first, _last, future) in enumerate(acks):
        if future.done():
            continue
        if isinstance(outcome, asyncio.CancelledError):
            future.cancel()
        elif isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[k])
