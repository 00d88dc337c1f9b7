"""The embedded store keeps InfluxDB's semantics that exactly-once delivery relies on: a reading
written again (a redelivery after a crash) is the same point, not a second one."""

from __future__ import annotations

from pathlib import Path

from gateway.tsdb.config import SqliteStoreConfig
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.sqlite import SqliteStore
from tests.gateway.tsdb.test_points_readers import AGENT, READINGS, SITE


async def test_a_reading_written_twice_is_one_point(tmp_path: Path) -> None:
    store = SqliteStore(SqliteStoreConfig(path=tmp_path / "readings.db"))
    await store.open()
    try:
        first = await store.write([ReadingsBatch(SITE, AGENT, READINGS)])
        # Redelivered: the whole batch, then a part of it again in another batch.
        again = await store.write([ReadingsBatch(SITE, AGENT, READINGS)])
        await store.write([ReadingsBatch(SITE, AGENT, READINGS[:10])])
        assert first.written == again.written == len(READINGS)
        ((count,),) = await store.query("SELECT COUNT(*) FROM readings")
        assert count == len(READINGS)
        # Same series and time with another value: the point is replaced (last write wins).
        changed = dict(READINGS[0]) | {"value": 42.0}
        await store.write([ReadingsBatch(SITE, AGENT, [changed])])
        ((count,),) = await store.query("SELECT COUNT(*) FROM readings")
        assert count == len(READINGS)
        values = await store.query("SELECT value FROM readings WHERE value = 42.0")
        assert len(values) == 1
    finally:
        await store.close()
