"""One SQLite connection owned by one thread, behind an async face.

The stores that keep a local SQLite file (the record store, the embedded TSDB, the bench's run
store) each hand every call on their connection to one dedicated thread, so the event loop never
waits on a commit's fsync and the connection never changes threads. :class:`SqliteThread` is that
thread and that connection: :meth:`~SqliteThread.open` creates the file with its pragmas and the
store's schema, :meth:`~SqliteThread.run` runs a function on the connection and maps what it
raises into the error tree (rolling back a transaction it left open), :meth:`~SqliteThread.close`
closes the file after every call already queued, and waits for the thread to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, InitVar, dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from core.errors import EtalonError, StoreError

T = TypeVar("T")

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


@dataclass(eq=False)
class SqliteThread:
    """A SQLite file on its own thread. ``label`` starts every error message (``"record store
    /var/lib/etalon/records.db"`` → ``"record store /var/lib/etalon/records.db: not open"``);
    ``error`` is the class those errors are raised as; ``thread_name`` names the thread.

    ``map_other``: besides sqlite3's errors, map any other ``Exception`` outside the error tree
    (an ``OverflowError`` for an integer SQLite cannot hold), named by its type; otherwise such
    an exception goes through as it is (after the rollback). ``after``: called on the thread
    after every :meth:`run` function, whatever it did (the record store's ledger learns what was
    committed there); a sqlite3 error it raises is mapped like the function's.
    """

    path: Path
    label: str
    _: KW_ONLY
    thread_name: InitVar[str]
    error: Callable[[str], EtalonError] = StoreError
    map_other: bool = False
    after: Callable[[sqlite3.Connection], None] | None = None
    _executor: ThreadPoolExecutor = field(init=False)
    _db: sqlite3.Connection | None = field(init=False, default=None)
    """Only the thread reads or sets it (open, run and close all run there, in order)."""
    _closed: bool = field(init=False, default=False)

    def __post_init__(self, thread_name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise self.error(f"{self.label}: not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(
        self,
        setup: Callable[[sqlite3.Connection], object] | None = None,
        *,
        synchronous: Synchronous = "FULL",
        foreign_keys: bool = False,
        factory: type[sqlite3.Connection] = sqlite3.Connection,
    ) -> None:
        """Create the directory and the file if missing, open it in autocommit mode (callers
        write ``BEGIN``/``COMMIT`` themselves) with WAL and the given pragmas, then ``setup(db)``
        (schema, migrations). Any failure closes the connection again; a sqlite3 or OS error is
        raised as ``"{label}: cannot open: …"``, anything else as it is."""

        def open_db() -> None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, factory=factory
                )
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(f"PRAGMA synchronous={synchronous}")
                    if foreign_keys:
                        db.execute("PRAGMA foreign_keys=ON")
                    if setup is not None:
                        setup(db)
                except BaseException:
                    db.close()
                    raise
            except (sqlite3.Error, OSError) as exc:
                raise self.error(f"{self.label}: cannot open: {exc}") from exc
            self._db = db

        await self._submit(open_db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the thread; its result, or what it raised, mapped.

        Whatever ``fn`` raises, a transaction it left open is rolled back (a half-done write
        never stays open for the next caller to commit). A sqlite3 error becomes ``error(
        "{label}: {exc}")``; errors of our own tree go through as they are. Refused with
        ``"{label}: not open"`` before :meth:`open` and once :meth:`close` was called.
        """
        return await self._submit(lambda: self._call(fn))

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise self.error(f"{self.label}: not open")
        try:
            return fn(db)
        except BaseException as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                    db.execute("ROLLBACK")
            mapped = self._mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if self.after is not None:
                try:
                    self.after(db)
                except sqlite3.Error as exc:
                    raise self.error(f"{self.label}: {exc}") from exc

    def _mapped(self, exc: BaseException) -> EtalonError | None:
        if isinstance(exc, sqlite3.Error):
            return self.error(f"{self.label}: {exc}")
        if self.map_other and isinstance(exc, Exception) and not isinstance(exc, EtalonError):
            return self.error(f"{self.label}: {type(exc).__name__}: {exc}")
        return None

    async def close(self, teardown: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Refuse new calls, let the queued ones finish, then ``teardown(db)`` (even if it
        fails, the file is closed) and close the file, on the thread; wait for the thread to end.
        A second call does nothing."""
        if self._closed:
            return
        self._closed = True

        def close_db() -> None:
            db, self._db = self._db, None
            if db is None:
                return
            try:
                if teardown is not None:
                    teardown(db)
            finally:
                db.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close_db)
        except BaseException:
            self._executor.shutdown(wait=False)  # the thread ends after its queue; don't block
            raise
        self._executor.shutdown(wait=True)
