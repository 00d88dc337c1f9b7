"""core.sqlite_thread: one connection on one thread, errors mapped with the label, rollback."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from core.errors import ConflictError, SpoolError, StoreError
from core.sqlite_thread import SqliteThread


def _table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")


def _count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM t").fetchone()[0])


async def test_errors_are_mapped_with_the_label_and_an_open_transaction_rolled_back(
    tmp_path: Path,
) -> None:
    store = SqliteThread(tmp_path / "a" / "s.db", "test store X", thread_name="t")
    await store.open(_table)
    try:

        def half_done(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (1)")
            db.execute("INSERT INTO t VALUES (1)")  # the primary key refuses it

        with pytest.raises(StoreError) as caught:
            await store.run(half_done)
        assert str(caught.value) == "test store X: UNIQUE constraint failed: t.x"
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)

        def not_sqlite(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (2)")
            raise ValueError("a bug")

        with pytest.raises(ValueError, match="a bug"):  # not mapped without map_other
            await store.run(not_sqlite)

        def ours(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (3)")
            raise ConflictError("in use")

        with pytest.raises(ConflictError, match=r"^in use$"):  # our tree goes through as is
            await store.run(ours)

        # Nothing of the three stayed, and no transaction is left open for the next caller.
        assert await store.run(lambda db: (_count(db), db.in_transaction)) == (0, False)
    finally:
        await store.close()


async def test_map_other_names_the_type_and_after_runs_on_every_call(tmp_path: Path) -> None:
    seen: list[bool] = []

    def after(db: sqlite3.Connection) -> None:
        seen.append(db.in_transaction)
        if len(seen) == 3:
            db.execute("SELECT * FROM missing")

    store = SqliteThread(
        tmp_path / "s.db", "L", thread_name="t", error=SpoolError, map_other=True, after=after
    )
    await store.open(_table)
    try:

        def overflow(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            db.execute("INSERT INTO t VALUES (?)", (2**64,))

        with pytest.raises(SpoolError, match=r"^L: OverflowError: "):
            await store.run(overflow)
        with pytest.raises(SpoolError, match=r"^L: no such table: nope$"):
            await store.run(lambda db: db.execute("SELECT * FROM nope"))
        with pytest.raises(SpoolError, match=r"^L: no such table: missing$"):  # after's own error
            await store.run(_count)
        assert seen == [False, False, False]  # after the rollback, each time
    finally:
        await store.close()


async def test_open_applies_pragmas_and_refuses_with_the_label(tmp_path: Path) -> None:
    store = SqliteThread(tmp_path / "s.db", "L", thread_name="t")
    await store.open(synchronous="NORMAL", foreign_keys=True)
    try:
        pragmas = await store.run(
            lambda db: [
                db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
        )
        assert pragmas == ["wal", 1, 1]  # synchronous NORMAL is 1
    finally:
        await store.close()

    (tmp_path / "dir.db").mkdir()
    bad = SqliteThread(tmp_path / "dir.db", "L", thread_name="t")
    with pytest.raises(StoreError, match=r"^L: cannot open: unable to open database file$"):
        await bad.open()
    await bad.close()

    opened: list[sqlite3.Connection] = []

    def failing_setup(db: sqlite3.Connection) -> None:
        opened.append(db)
        raise ValueError("bad schema")

    failing = SqliteThread(tmp_path / "f.db", "L", thread_name="t")
    with pytest.raises(ValueError, match="bad schema"):
        await failing.open(failing_setup)
    with pytest.raises(sqlite3.ProgrammingError):  # the connection was closed again
        opened[0].execute("SELECT 1")
    with pytest.raises(StoreError, match=r"^L: not open$"):
        await failing.run(_count)
    await failing.close()


async def test_one_thread_queued_calls_finish_and_later_calls_are_refused(
    tmp_path: Path,
) -> None:
    threads: set[int] = set()

    def on_thread(db: sqlite3.Connection) -> None:
        threads.add(threading.get_ident())

    store = SqliteThread(tmp_path / "s.db", "L", thread_name="t", after=on_thread)
    with pytest.raises(StoreError, match=r"^L: not open$"):
        await store.run(_count)
    await store.open(lambda db: (on_thread(db), _table(db)))
    queued = [
        asyncio.ensure_future(
            store.run(lambda db, k=k: db.execute("INSERT INTO t VALUES (?)", (k,)))
        )
        for k in range(20)
    ]
    await asyncio.sleep(0)  # the inserts are on the thread's queue before close is called
    counted: list[int] = []
    await store.close(lambda db: (on_thread(db), counted.append(_count(db))))
    await asyncio.gather(*queued)
    assert counted == [20]  # close ran after every call queued before it
    assert len(threads) == 1
    assert threading.get_ident() not in threads
    assert not any(t.ident in threads for t in threading.enumerate())  # close waited for it

    with pytest.raises(StoreError, match=r"^L: not open$"):
        await store.run(_count)
    with pytest.raises(StoreError, match=r"^L: not open$"):
        await store.open()
    await store.close()  # a second close does nothing
