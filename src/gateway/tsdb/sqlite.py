"""The embedded store: readings in a local SQLite file, for the demo and a single bench.

A reading's primary key is (series, timestamp) and writes are ``INSERT OR REPLACE``, so a
redelivered reading overwrites itself, as a point does in InfluxDB.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import StoreError
from core.threads import in_own_thread
from gateway.tsdb.config import SqliteStoreConfig
from gateway.tsdb.points import QUALITY_CODE, MetricsSample, ReadingsBatch, Writable
from gateway.tsdb.reader import (
    ChannelKey,
    CheckedPointsReader,
    HistoryPoint,
    RawReadings,
    SeriesRef,
    T,
    bucket_width_ns,
    raw_point,
    to_periods,
)
from gateway.tsdb.store import WriteResult

if TYPE_CHECKING:
    from gateway.analytics.aggregate import PeriodStat

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL,
    unit TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '{}',
    UNIQUE (site, agent, instrument, channel, unit, tags)
);
CREATE TABLE IF NOT EXISTS readings (
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts INTEGER NOT NULL,
    value REAL, text TEXT, quality INTEGER NOT NULL, u REAL, reason TEXT,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    measurement TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL, ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (measurement, source, name, ts)
) WITHOUT ROWID;
"""


class SqliteStore:
    """See the module doc."""

    name = "sqlite"

    def __init__(self, config: SqliteStoreConfig) -> None:
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._series: dict[tuple[str, ...], int] = {}

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Create the file and tables."""
        await self._run(self._open)

    def _open(self) -> None:
        try:
            self.config.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.config.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"sqlite store {self.config.path}: cannot open: {exc}") from exc
        self._db = db

    def _series_id(self, db: sqlite3.Connection, key: tuple[str, ...]) -> int:
        found = self._series.get(key)
        if found is not None:
            return found
        db.execute(
            "INSERT OR IGNORE INTO series(site, agent, instrument, channel, unit, tags) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            key,
        )
        row = db.execute(
            "SELECT id FROM series WHERE site=? AND agent=? AND instrument=? AND "
            "channel=? AND unit=? AND tags=?",
            key,
        ).fetchone()
        self._series[key] = int(row[0])
        return int(row[0])

    def _write(self, items: Sequence[Writable]) -> int:
        db = self._db
        if db is None:
            raise StoreError(f"sqlite store {self.config.path}: not open")
        rows: list[tuple[Any, ...]] = []
        metric_rows: list[tuple[Any, ...]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in items:
                if isinstance(item, MetricsSample):
                    source = json.dumps(dict(item.tags), sort_keys=True)
                    metric_rows.extend(
                        (item.measurement, source, name, item.ts_ns, float(value))
                        for name, value in item.values.items()
                    )
                    continue
                rows.extend(self._reading_rows(db, item))
            db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)", metric_rows)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._series.clear()  # ids created in the rolled-back transaction are gone
            raise StoreError(f"sqlite store {self.config.path}: {exc}") from exc
        return len(rows) + len(metric_rows)

    def _reading_rows(self, db: sqlite3.Connection, batch: ReadingsBatch) -> list[tuple[Any, ...]]:
        rows = []
        for r in batch.readings:
            tags = json.dumps(r.get("tags") or {}, sort_keys=True)
            sid = self._series_id(
                db, (batch.site, batch.agent, r["instrument"], r["channel"], r["unit"], tags)
            )
            value = r.get("value")
            number = float(value) if isinstance(value, int | float) else None
            text = value if isinstance(value, str) else None
            rows.append(
                (
                    sid,
                    r["ts"],
                    number,
                    text,
                    QUALITY_CODE[r["quality"]],
                    r.get("u"),
                    r.get("reason"),
                )
            )
        return rows

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        """Write all items in one transaction, or raise StoreError."""
        written = await self._run(self._write, items)
        return WriteResult(written=written)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the store's thread (for the live view and the API)."""

        def run() -> list[tuple[Any, ...]]:
            if self._db is None:
                raise StoreError("sqlite store not open")
            return list(self._db.execute(sql, params))

        result: list[tuple[Any, ...]] = await self._run(run)
        return result

    async def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)


# -- reading back: the dashboard's points ---------------------------------------------------------


class SqlitePoints(CheckedPointsReader):
    """History from the embedded store's file, on a read-only connection per query, in a thread
    per query (queries are occasional; no thread waits between them)."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def _points(
        self, key: ChannelKey, start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        return await in_own_thread(
            self._read,
            key,
            start_ns,
            end_ns,
            max_points,
            name="history-sqlite",
        )

    def _read(
        self, key: tuple[str, str, str, str], start_ns: int, end_ns: int, max_points: int
    ) -> list[HistoryPoint]:
        if not self.path.exists():
            return []  # nothing written yet
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: cannot open: {exc}") from exc
        try:
            return self._query(db, key, start_ns, end_ns, max_points)
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []  # the store has not created its tables yet
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc
        finally:
            db.close()

    @staticmethod
    def _query(
        db: sqlite3.Connection,
        key: tuple[str, str, str, str],
        start_ns: int,
        end_ns: int,
        max_points: int,
    ) -> list[HistoryPoint]:
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM series WHERE site=? AND agent=? AND instrument=? AND channel=?",
                key,
            )
        ]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        where = f"series_id IN ({marks}) AND ts >= ? AND ts < ?"
        args = (*ids, start_ns, end_ns)
        (count,) = db.execute(f"SELECT count(*) FROM readings WHERE {where}", args).fetchone()
        if count <= max_points:
            rows = db.execute(
                f"SELECT ts, value, quality, u FROM readings WHERE {where} ORDER BY ts", args
            )
            return [raw_point(*row) for row in rows]
        width = bucket_width_ns(start_ns, end_ns, max_points)
        rows = db.execute(
            "SELECT (ts - ?) / ? AS bucket, avg(value), min(value), max(value), count(value), "
            f"max(quality) FROM readings WHERE {where} GROUP BY bucket ORDER BY bucket",
            (start_ns, width, *args),
        )
        return [
            HistoryPoint(start_ns + b * width, mean, low, high, n, worst, None, width)
            for b, mean, low, high, n, worst in rows
        ]

    async def close(self) -> None:
        """Nothing held between queries."""


# -- reading back: the analytics' periods ---------------------------------------------------------


_CONNECTIONS: dict[str, sqlite3.Connection] = {}
"""Read-only connections of the worker (one worker: one user of each)."""


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    key = str(path)
    db = _CONNECTIONS.get(key)
    if db is None:
        uri = f"file:{urllib.parse.quote(key)}?mode=ro"
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
        _CONNECTIONS[key] = db
    return db


def sqlite_raw(path: Path, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
    """On the worker: good readings of a series from the embedded store."""
    try:
        rows = (
            _sqlite_connection(path)
            .execute(
                "SELECT r.ts, r.value, r.u FROM readings r JOIN series s ON r.series_id = s.id "
                "WHERE s.site=? AND s.agent=? AND s.instrument=? AND s.channel=? AND s.unit=? "
                "AND r.quality=0 AND r.value IS NOT NULL AND r.ts >= ? AND r.ts < ?",
                (
                    series.site,
                    series.agent,
                    series.instrument,
                    series.channel,
                    series.unit,
                    start_ns,
                    end_ns,
                ),
            )
            .fetchall()
        )
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return RawReadings.empty()  # nothing written yet
        raise StoreError(f"sqlite store {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: {exc}") from exc
    return RawReadings.of(rows)


def sqlite_periods(
    path: Path, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
) -> list[PeriodStat]:
    """On the worker: period statistics of a series from the embedded store."""
    return to_periods(sqlite_raw(path, series, start_ns, end_ns), period_ns)


def sqlite_close(path: Path) -> None:
    """On the worker: close its connection to a store."""
    db = _CONNECTIONS.pop(str(path), None)
    if db is not None:
        db.close()


class SqlitePeriods:
    """The embedded store, read with SQL on the analytics' worker."""

    name = "sqlite"

    def __init__(self, path: Path, executor: Executor) -> None:
        self.path = path
        self._executor = executor

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def read(self, series: SeriesRef, start_ns: int, end_ns: int) -> RawReadings:
        """See :class:`PeriodsReader`."""
        return await self._run(sqlite_raw, self.path, series, start_ns, end_ns)

    async def read_periods(
        self, series: SeriesRef, start_ns: int, end_ns: int, period_ns: int
    ) -> list[PeriodStat]:
        """See :class:`PeriodsReader`."""
        return await self._run(sqlite_periods, self.path, series, start_ns, end_ns, period_ns)

    async def close(self) -> None:
        """Close the worker's connection."""
        await self._run(sqlite_close, self.path)
