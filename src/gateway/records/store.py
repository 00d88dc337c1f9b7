"""The record store: what a quality system must keep, never only in the TSDB (SQLite, WAL).

Holds the agents and their channel catalogue, the refused payloads (dead letters), the audit
log, and the ledger that makes them tamper-evident: every audit row and every record a 17025
assessor relies on is chained in the same transaction as its change (:mod:`.chain`,
:mod:`.bodies`). The tables of the features (standards and certificates, alerts) are part of
the record schema too, declared in this room (``standards_schema``, ``alerts_schema``,
``ledger_schema``) and applied through :data:`MIGRATIONS`, keyed by feature so each applies its
own steps exactly once: the record store knows no feature's code, only its tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from core.errors import EtalonError, StoreError
from gateway.records.alerts_schema import ALERTS_MIGRATIONS
from gateway.records.bodies import RecordConnection, append_audit, query_rows
from gateway.records.calibrations_schema import CALIBRATIONS_MIGRATIONS
from gateway.records.chain import LedgerSettings, RecordsLedger
from gateway.records.config import RecordsConfig
from gateway.records.corrections_schema import CORRECTIONS_MIGRATIONS
from gateway.records.ledger_schema import LEDGER_MIGRATIONS
from gateway.records.standards_schema import STANDARDS_MIGRATIONS

T = TypeVar("T")

CORE_MIGRATIONS = [
    """
    CREATE TABLE agents (
        site TEXT NOT NULL, agent TEXT NOT NULL, state TEXT NOT NULL, version TEXT,
        since_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL, clock TEXT NOT NULL DEFAULT '{}',
        reason TEXT,
        PRIMARY KEY (site, agent)
    );
    CREATE TABLE channels (
        site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL, channel TEXT NOT NULL,
        protocol TEXT NOT NULL, unit TEXT NOT NULL, interval_s REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}', identity TEXT NOT NULL DEFAULT '{}',
        updated_ns INTEGER NOT NULL,
        PRIMARY KEY (site, agent, instrument, channel)
    );
    CREATE TABLE instrument_states (
        site TEXT NOT NULL, agent TEXT NOT NULL, instrument TEXT NOT NULL, state TEXT NOT NULL,
        since_ns INTEGER NOT NULL, reason TEXT,
        PRIMARY KEY (site, agent, instrument)
    );
    CREATE TABLE deadletters (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, topic TEXT NOT NULL,
        reason TEXT NOT NULL, payload_bytes INTEGER NOT NULL, payload BLOB NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # Dead letters are trimmed by age (gateway.records.deadletters).
    "CREATE INDEX deadletters_by_ts ON deadletters(ts_ns);",
]

MIGRATIONS: dict[str, list[str]] = {
    "core": CORE_MIGRATIONS,
    "standards": STANDARDS_MIGRATIONS,
    "alerts": ALERTS_MIGRATIONS,
    "ledger": LEDGER_MIGRATIONS,
    "corrections": CORRECTIONS_MIGRATIONS,
    "calibrations": CALIBRATIONS_MIGRATIONS,
}
"""Feature → ordered SQL scripts. Append steps; never edit a step that has shipped."""


class RecordStore:
    """Async face over the record database; one thread owns the connection.

    ``ledger``: how this process uses the store's ledger (a writer needs its signing key);
    None opens the store to read only (any write that must be chained is refused).
    """

    def __init__(self, path: Path, ledger: LedgerSettings | None = None) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")
        self._db: RecordConnection | None = None
        self.ledger = RecordsLedger(
            ledger
            if ledger is not None
            else LedgerSettings(RecordsConfig(path=path), "records", writer=False)
        )

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the record store's thread.

        Whatever ``fn`` raises, a transaction it left open is rolled back (a half-done write
        never stays open for the next caller to commit). Errors of our own tree (a conflict, a
        missing standard) go through as they are; any other exception — sqlite3's, or an
        ``OverflowError`` for an integer SQLite cannot hold — becomes a :class:`StoreError`.
        Afterwards the ledger learns what was committed (and signs when due).
        """

        def call() -> T:
            db = self._db
            if db is None:
                raise StoreError(f"record store {self.path}: not open")
            try:
                return fn(db)
            except BaseException as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                        db.execute("ROLLBACK")
                if isinstance(exc, EtalonError) or not isinstance(exc, Exception):
                    raise
                what = (
                    str(exc) if isinstance(exc, sqlite3.Error) else f"{type(exc).__name__}: {exc}"
                )
                raise StoreError(f"record store {self.path}: {what}") from exc
            finally:
                try:
                    self.ledger.finish(db)
                except sqlite3.Error as exc:
                    raise StoreError(f"record store {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        """Open or create the database, apply pending migrations, open the ledger (a writer
        starts it if the store has none)."""

        def open_db() -> None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=RecordConnection,
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA foreign_keys=ON")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS migrations (feature TEXT NOT NULL, step INTEGER "
                    "NOT NULL, applied_ns INTEGER NOT NULL, PRIMARY KEY (feature, step))"
                )
                for feature, steps in MIGRATIONS.items():
                    done = {
                        r[0]
                        for r in db.execute(
                            "SELECT step FROM migrations WHERE feature=?", (feature,)
                        )
                    }
                    for step, script in enumerate(steps):
                        if step in done:
                            continue
                        db.executescript(f"BEGIN; {script}; COMMIT;")
                        db.execute(
                            "INSERT INTO migrations VALUES (?, ?, ?)",
                            (feature, step, time.time_ns()),
                        )
                db.ledger = self.ledger
                try:
                    self.ledger.open(db)
                except BaseException:
                    db.close()
                    raise
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"record store {self.path}: cannot open: {exc}") from exc
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, open_db)

    async def close(self) -> None:
        """Sign what is not signed yet, and close the database."""
        if self._db is not None:
            db, self._db = self._db, None

            def close_db() -> None:
                try:
                    self.ledger.close(db)
                finally:
                    db.close()

            await asyncio.get_running_loop().run_in_executor(self._executor, close_db)
        self._executor.shutdown(wait=True)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read query, as dicts of column → value."""
        return await self.run(lambda db: query_rows(db, sql, params))

    async def audit(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append one entry to the audit log (and the ledger), in a transaction of its own."""

        def run(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            append_audit(db, actor, action, subject, details)
            db.execute("COMMIT")

        await self.run(run)
