"""The bench's own record of its runs: a local SQLite file (WAL, every commit fsync'ed).

Everything a run needs to go on after a crash or a power cut is written as it happens: the run
(its procedure's text and hash, the operator, the declared UUT, the reference resolved at the
start), each point's result as soon as it is complete, each write to an instrument as soon as
it is confirmed (or refused), and the run's events (started, resumed, interrupted, aborted,
completed). A point that was under way when the process died has no row: a resumed run starts
again at the first point without one, and keeps the others as they are.

A completed run's record (canonical JSON and its SHA-256) is written once; triggers refuse to
change it, to change or delete the points of a completed run, or to change or delete a write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.sqlite_thread import SqliteThread
from metrology.certificate.record import PointResult, WriteEntry

RunStatus = Literal["running", "interrupted", "aborted", "completed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    procedure_path TEXT NOT NULL,
    procedure_sha256 TEXT NOT NULL,
    procedure_text TEXT NOT NULL,
    procedure_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    language TEXT NOT NULL,
    declared TEXT NOT NULL,
    reference TEXT NOT NULL,
    run_date TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    finished_ns INTEGER,
    identity_start TEXT,
    identity_end TEXT,
    instruments TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '[]',
    points_total INTEGER NOT NULL,
    record TEXT,
    record_sha256 TEXT,
    published_ns INTEGER
);
CREATE TABLE IF NOT EXISTS points (
    run TEXT NOT NULL REFERENCES runs(run),
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    written_ns INTEGER NOT NULL,
    PRIMARY KEY (run, idx)
);
CREATE TABLE IF NOT EXISTS writes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL REFERENCES runs(run),
    point INTEGER,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL REFERENCES runs(run),
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS record_once BEFORE UPDATE OF record, record_sha256 ON runs
    WHEN OLD.record IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'the record of a completed run cannot change'); END;
CREATE TRIGGER IF NOT EXISTS completed_stays BEFORE UPDATE OF status ON runs
    WHEN OLD.status = 'completed'
    BEGIN SELECT RAISE(ABORT, 'a completed run cannot change'); END;
CREATE TRIGGER IF NOT EXISTS points_of_completed_update BEFORE UPDATE ON points
    WHEN (SELECT status FROM runs WHERE run = OLD.run) = 'completed'
    BEGIN SELECT RAISE(ABORT, 'the points of a completed run cannot change'); END;
CREATE TRIGGER IF NOT EXISTS points_of_completed_delete BEFORE DELETE ON points
    WHEN (SELECT status FROM runs WHERE run = OLD.run) = 'completed'
    BEGIN SELECT RAISE(ABORT, 'the points of a completed run cannot change'); END;
CREATE TRIGGER IF NOT EXISTS writes_no_update BEFORE UPDATE ON writes
    BEGIN SELECT RAISE(ABORT, 'the audit of writes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS writes_no_delete BEFORE DELETE ON writes
    BEGIN SELECT RAISE(ABORT, 'the audit of writes is append-only'); END;
"""


@dataclass(frozen=True)
class RunRow:
    """A run as stored."""

    run: str
    created_ns: int
    updated_ns: int
    status: RunStatus
    reason: str | None
    procedure_path: str
    procedure_sha256: str
    procedure_text: str
    procedure_id: str
    operator: str
    language: str
    declared: dict[str, str]
    reference: dict[str, Any]
    run_date: str
    started_ns: int
    finished_ns: int | None
    identity_start: dict[str, str] | None
    identity_end: dict[str, str] | None
    instruments: list[dict[str, Any]]
    notes: list[str]
    points_total: int
    record: str | None
    record_sha256: str | None
    published_ns: int | None


_JSON_COLUMNS = {"declared", "reference", "identity_start", "identity_end", "instruments", "notes"}


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> RunRow:
    names = [d[0] for d in cursor.description]
    data = dict(zip(names, values, strict=True))
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = json.loads(data[column])
    return RunRow(**data)


class RunStore:
    """Async face over the runs database; one thread owns the connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sqlite = SqliteThread(path, f"run store {path}", thread_name="calibration-state")

    async def open(self) -> None:
        """Open or create the file."""
        await self._sqlite.open(lambda db: db.executescript(_SCHEMA), foreign_keys=True)

    async def close(self) -> None:
        """Close the file."""
        await self._sqlite.close()

    async def __aenter__(self) -> RunStore:
        await self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- runs ----------------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> None:
        """A new run (status running); raises StoreError if the id exists."""
        now = time.time_ns()
        values = dict(fields)
        for column in _JSON_COLUMNS & set(values):
            values[column] = json.dumps(values[column], ensure_ascii=False, sort_keys=True)
        values.setdefault("created_ns", now)
        values.setdefault("updated_ns", now)
        values.setdefault("status", "running")
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)

        def insert(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", tuple(values.values()))
            db.execute(
                "INSERT INTO events(run, ts_ns, kind) VALUES (?,?,?)",
                (values["run"], now, "created"),
            )
            db.execute("COMMIT")

        await self._sqlite.run(insert)

    async def get(self, run: str) -> RunRow | None:
        """A run, or None."""

        def get(db: sqlite3.Connection) -> RunRow | None:
            cursor = db.execute("SELECT * FROM runs WHERE run = ?", (run,))
            values = cursor.fetchone()
            return None if values is None else _row(cursor, values)

        return await self._sqlite.run(get)

    async def runs(self, limit: int = 200) -> list[RunRow]:
        """The newest runs first."""

        def query(db: sqlite3.Connection) -> list[RunRow]:
            cursor = db.execute("SELECT * FROM runs ORDER BY created_ns DESC LIMIT ?", (limit,))
            return [_row(cursor, values) for values in cursor.fetchall()]

        return await self._sqlite.run(query)

    async def update(self, run: str, **fields: Any) -> None:
        """Change a run's fields (not its record once written)."""
        values = dict(fields)
        for column in _JSON_COLUMNS & set(values):
            values[column] = json.dumps(values[column], ensure_ascii=False, sort_keys=True)
        values["updated_ns"] = time.time_ns()
        assignments = ", ".join(f"{column} = ?" for column in values)

        def update(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE runs SET {assignments} WHERE run = ?", (*values.values(), run))

        await self._sqlite.run(update)

    async def event(self, run: str, kind: str, details: str = "") -> None:
        """One line of the run's history."""

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO events(run, ts_ns, kind, details) VALUES (?,?,?,?)",
                (run, time.time_ns(), kind, details),
            )

        await self._sqlite.run(insert)

    async def events(self, run: str) -> list[tuple[int, str, str]]:
        """(ts_ns, kind, details) of a run, oldest first."""

        def query(db: sqlite3.Connection) -> list[tuple[int, str, str]]:
            rows = db.execute(
                "SELECT ts_ns, kind, details FROM events WHERE run = ? ORDER BY id", (run,)
            )
            return [(int(t), str(k), str(d)) for t, k, d in rows]

        return await self._sqlite.run(query)

    # -- points and writes -----------------------------------------------------------------------

    async def save_point(self, run: str, result: PointResult) -> None:
        """A point's result, committed (replaces an earlier try of the same point)."""
        text = result.model_dump_json()

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO points(run, idx, status, result, written_ns) "
                "VALUES (?,?,?,?,?)",
                (run, result.index, result.status, text, time.time_ns()),
            )

        await self._sqlite.run(insert)

    async def drop_point(self, run: str, index: int) -> None:
        """Forget a point (measured on a unit that turned out to be another)."""

        def delete(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM points WHERE run = ? AND idx = ?", (run, index))

        await self._sqlite.run(delete)

    async def points(self, run: str) -> dict[int, PointResult]:
        """The stored points of a run, by index."""

        def query(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute("SELECT idx, result FROM points WHERE run = ? ORDER BY idx", (run,))
            return [(int(i), str(r)) for i, r in rows]

        rows = await self._sqlite.run(query)
        return {index: PointResult.model_validate_json(text) for index, text in rows}

    async def point_written_ns(self, run: str) -> dict[int, int]:
        """When each stored point was committed (a resumed run keeps them as they were)."""

        def query(db: sqlite3.Connection) -> dict[int, int]:
            rows = db.execute("SELECT idx, written_ns FROM points WHERE run = ?", (run,))
            return {int(i): int(t) for i, t in rows}

        return await self._sqlite.run(query)

    async def add_writes(self, run: str, entries: list[WriteEntry]) -> None:
        """Append writes to the audit (one transaction)."""
        if not entries:
            return
        rows = [(run, e.point, e.model_dump_json()) for e in entries]

        def insert(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO writes(run, point, entry) VALUES (?,?,?)", rows)
            db.execute("COMMIT")

        await self._sqlite.run(insert)

    async def writes(self, run: str) -> list[WriteEntry]:
        """Every write of a run, in order."""

        def query(db: sqlite3.Connection) -> list[str]:
            return [
                str(r[0])
                for r in db.execute("SELECT entry FROM writes WHERE run = ? ORDER BY id", (run,))
            ]

        return [WriteEntry.model_validate_json(text) for text in await self._sqlite.run(query)]

    async def complete(self, run: str, record: str, sha256: str, finished_ns: int) -> None:
        """Write the record and mark the run completed, in one transaction."""

        def finish(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE runs SET record = ?, record_sha256 = ?, finished_ns = ?, updated_ns = ? "
                "WHERE run = ?",
                (record, sha256, finished_ns, time.time_ns(), run),
            )
            db.execute("UPDATE runs SET status = 'completed', reason = NULL WHERE run = ?", (run,))
            db.execute(
                "INSERT INTO events(run, ts_ns, kind, details) VALUES (?,?,?,?)",
                (run, time.time_ns(), "completed", sha256),
            )
            db.execute("COMMIT")

        await self._sqlite.run(finish)

    async def mark_published(self, run: str) -> None:
        """The gateway's broker took the record."""

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE runs SET published_ns = ? WHERE run = ? AND published_ns IS NULL",
                (time.time_ns(), run),
            )

        await self._sqlite.run(update)
