"""The record store rolls back whatever a write raises, and says so in its own error tree."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import ConfigError, StoreError
from gateway.records.store import RecordStore


def half_written(failure: BaseException) -> object:
    def write(db: sqlite3.Connection) -> None:
        db.execute("BEGIN")
        db.execute("INSERT INTO agents VALUES ('lab-1','a','online',NULL,1,1,'{}',NULL)")
        raise failure

    return write


@pytest.mark.parametrize(
    "failure",
    [
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        TypeError("unsupported type"),
        RecursionError("deep"),
        sqlite3.IntegrityError("constraint"),
    ],
)
async def test_any_exception_rolls_back_and_becomes_a_store_error(
    tmp_path: Path, failure: Exception
) -> None:
    records = RecordStore(tmp_path / "records.db")
    await records.open()
    try:
        with pytest.raises(StoreError, match=str(failure)):
            await records.run(half_written(failure))  # type: ignore[arg-type]
        # Nothing of it stayed, and the connection is not left inside a transaction.
        assert await records.query("SELECT * FROM agents") == []
        await records.run(lambda db: db.execute("BEGIN") and db.execute("COMMIT"))
    finally:
        await records.close()


async def test_an_error_of_our_own_goes_through_after_the_rollback(tmp_path: Path) -> None:
    records = RecordStore(tmp_path / "records.db")
    await records.open()
    try:
        with pytest.raises(ConfigError):
            await records.run(half_written(ConfigError(["a conflict"])))  # type: ignore[arg-type]
        assert await records.query("SELECT * FROM agents") == []
    finally:
        await records.close()
