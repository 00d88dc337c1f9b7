"""The embedded store: readings in a local SQLite file, for the demo and a single bench.

A reading's primary key is (series, timestamp) and writes are ``INSERT OR REPLACE``, so a
redelivered reading overwrites itself, as a point does in InfluxDB.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import StoreError
from core.sqlite_thread import SqliteThread
from core.threads import in_own_thread
from gateway.tsdb.config import SqliteStoreConfig
from gateway.tsdb.points import QUALITY_CODE, Lines, MetricsSample, ReadingsBatch, Writable
from gateway.tsdb.reader import (
    ChannelKey,
    HistoryPoint,
    PointsReader,
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

CORRECTION_COLUMNS = {
    "corrected": "REAL",
    "u_corrected": "REAL",
    "certificate": "TEXT",
    "certificate_id": "INTEGER",
    "conformity": "INTEGER",
}
"""Columns a store made before corrections (issue 19) gains when it is opened."""

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
    corrected REAL, u_corrected REAL, certificate TEXT, certificate_id INTEGER, conformity INTEGER,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    measurement TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL, ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (measurement, source, name, ts)
) WITHOUT ROWID;
"""


_INT64 = range(-(2**63), 2**63)


def _number(value: object, what: str) -> float | None:
    """A finite float for SQLite's REAL column (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        number = float(value)
        if math.isfinite(number):
            return number
    raise ValueError(f"{what} {value!r} is not a finite number")


def _reading_row(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """A reading's columns after the series id, each checked (what ingest validated, checked
    again so that no point can fail the transaction of the others)."""
    ts = r["ts"]
    if ts.__class__ is not int or ts not in _INT64:
        raise ValueError(f"timestamp {ts!r} is not a 64-bit integer")
    value = r.get("value")
    text = value if isinstance(value, str) else None
    number = None if text is not None else _number(value, "value")
    reason = r.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"reason {reason!r} is not text")
    for name in ("instrument", "channel", "unit"):
        if not isinstance(r[name], str):
            raise TypeError(f"{name} {r[name]!r} is not text")
    certificate = r.get("certificate")
    if certificate is not None and not isinstance(certificate, str):
        raise TypeError(f"certificate {certificate!r} is not text")
    return (
        ts, number, text, QUALITY_CODE[r["quality"]], _number(r.get("u"), "u"), reason,
        _number(r.get("corrected"), "corrected"), _number(r.get("u_corrected"), "u_corrected"),
        certificate, r.get("certificate_id"), r.get("conformity"),
    )  # fmt: skip


def _metric_rows(item: MetricsSample, rejected: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    try:
        source = json.dumps(dict(item.tags), sort_keys=True)
        if item.ts_ns.__class__ is not int or item.ts_ns not in _INT64:
            raise ValueError(f"timestamp {item.ts_ns!r} is not a 64-bit integer")
    except (TypeError, ValueError) as exc:
        rejected.append((repr(item)[:500], f"cannot be stored: {type(exc).__name__}: {exc}"))
        return []
    rows = []
    for name, value in item.values.items():
        try:
            number = _number(value, str(name))
        except (ValueError, OverflowError) as exc:
            rejected.append(
                (f"{item.measurement} {name}={value!r}"[:500], f"cannot be stored: {exc}")
            )
            continue
        rows.append((item.measurement, source, str(name), item.ts_ns, number))
    return [row for row in rows if row[4] is not None]


def _create_tables(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(readings)")}
    for name, kind in CORRECTION_COLUMNS.items():
        if name not in columns:
            db.execute(f"ALTER TABLE readings ADD COLUMN {name} {kind}")


class SqliteStore:
    """See the module doc."""

    name = "sqlite"

    def __init__(self, config: SqliteStoreConfig) -> None:
        self.config = config
        self._sqlite = SqliteThread(
            config.path, f"sqlite store {config.path}", thread_name="sqlite-store"
        )
        self._series: dict[tuple[str, ...], int] = {}
        """Series ids by key; only the store's thread uses it."""

    async def open(self) -> None:
        """Create the file and tables."""
        await self._sqlite.open(_create_tables, synchronous="NORMAL")

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

    def _write(self, db: sqlite3.Connection, items: Sequence[Writable]) -> WriteResult:
        result = WriteResult()
        rows: list[tuple[Any, ...]] = []
        metric_rows: list[tuple[Any, ...]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in items:
                if isinstance(item, MetricsSample):
                    metric_rows.extend(_metric_rows(item, result.rejected))
                    continue
                # Line protocol is built ahead only for the line stores (Gateway.memo).
                assert not isinstance(item, Lines), "line protocol given to the SQLite store"
                rows.extend(self._reading_rows(db, item, result.rejected))
            db.executemany(
                "INSERT OR REPLACE INTO readings(series_id, ts, value, text, quality, u, reason, "
                "corrected, u_corrected, certificate, certificate_id, conformity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)", metric_rows)
            db.execute("COMMIT")
        except Exception as exc:
            # Rows are checked one by one above, so this is the file or a bug, not a point.
            # SqliteThread.run rolls the transaction back.
            self._series.clear()  # ids created in the rolled-back transaction are gone
            raise StoreError(f"{self._sqlite.label}: {exc}") from exc
        result.written = len(rows) + len(metric_rows)
        return result

    def _reading_rows(
        self, db: sqlite3.Connection, batch: ReadingsBatch, rejected: list[tuple[str, str]]
    ) -> list[tuple[Any, ...]]:
        rows = []
        for r in batch.readings:
            try:
                row = _reading_row(r)
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                shown = repr({"site": batch.site, "agent": batch.agent, **r})[:500]
                rejected.append((shown, f"cannot be stored: {type(exc).__name__}: {exc}"))
                continue
            tags = json.dumps(r.get("tags") or {}, sort_keys=True)
            sid = self._series_id(
                db, (batch.site, batch.agent, r["instrument"], r["channel"], r["unit"], tags)
            )
            rows.append((sid, *row))
        return rows

    async def write(self, items: Sequence[Writable]) -> WriteResult:
        """Write all items in one transaction, or raise StoreError; a point that cannot be
        stored (a value SQLite cannot hold) is refused alone, in ``rejected``."""
        return await self._sqlite.run(lambda db: self._write(db, items))

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the store's thread (for the live view and the API)."""
        return await self._sqlite.run(lambda db: list(db.execute(sql, params)))

    async def close(self) -> None:
        """Close the file."""
        await self._sqlite.close()


# -- reading back: the dashboard's points ---------------------------------------------------------


class SqlitePoints(PointsReader):
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
                "SELECT ts, value, quality, u, corrected, u_corrected, certificate_id "
                f"FROM readings WHERE {where} ORDER BY ts",
                args,
            )
            return [raw_point(*row) for row in rows]
        width = bucket_width_ns(start_ns, end_ns, max_points)
        rows = db.execute(
            "SELECT (ts - ?) / ? AS bucket, avg(value), min(value), max(value), count(value), "
            f"max(quality), avg(corrected) FROM readings WHERE {where} GROUP BY bucket "
            "ORDER BY bucket",
            (start_ns, width, *args),
        )
        return [
            HistoryPoint(
                start_ns + b * width, mean, low, high, n, worst, None, corrected, span_ns=width
            )
            for b, mean, low, high, n, worst, corrected in rows
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
