"""The embedded store: readings in a local SQLite file, for the demo and a single bench.

A reading's primary key is (series, timestamp) and writes are ``INSERT OR REPLACE``, so a
redelivered reading overwrites itself, as a point does in InfluxDB.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import StoreError
from gateway.config import SqliteStoreConfig
from gateway.points import QUALITY_CODE, MetricsSample, ReadingsBatch, Writable
from gateway.stores.base import WriteResult

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
