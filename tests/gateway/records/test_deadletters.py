"""Dead letters are bounded: older than the retention age, or beyond the total size (oldest
first), they are deleted, and how many is a self-metric. The audit log is not touched."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.records import deadletters
from gateway.records.config import DeadLetterRetention
from tests.gateway.ingest.harness import ROOT, IngestRig

NOW = 1_800_000_000_000_000_000
DAY = 86_400 * 10**9


async def add(rig: IngestRig, count: int, ts_ns: int, size: int) -> None:
    def run(db: sqlite3.Connection) -> None:
        db.execute("BEGIN")
        for _ in range(count):
            deadletters.insert(db, ts_ns, f"{ROOT}/data", "invalid JSON", size, b"x" * size)
        db.execute("COMMIT")

    await rig.records.run(run)


async def test_older_than_the_retention_age_are_deleted(tmp_path: Path) -> None:
    async with IngestRig(tmp_path) as rig:
        await rig.records.audit("tester", "test entry", "subject", {})
        await add(rig, 25_000, NOW - 40 * DAY, 10)  # more than a chunk of deletions
        await add(rig, 3, NOW - 10 * DAY, 10)
        deleted = await deadletters.trim(rig.records, DeadLetterRetention(), now_ns=NOW)
        assert deleted == 25_000
        rows = await rig.query("SELECT ts_ns FROM deadletters")
        assert [r["ts_ns"] for r in rows] == [NOW - 10 * DAY] * 3
        assert len(await rig.query("SELECT * FROM audit_log")) == 1


async def test_beyond_the_total_size_the_oldest_are_deleted(tmp_path: Path) -> None:
    retention = DeadLetterRetention(max_bytes=1024 * 1024)
    async with IngestRig(tmp_path) as rig:
        for day in range(30):  # 30 letters of 100 KiB, one a day
            await add(rig, 1, NOW - (30 - day) * 3600 * 10**9, 100 * 1024)
        deleted = await deadletters.trim(rig.records, retention, now_ns=NOW)
        rows = await rig.query("SELECT id, ts_ns, length(payload) AS n FROM deadletters")
    assert deleted == 30 - len(rows)
    assert len(rows) == 10  # 10 × (100 KiB + topic, reason, allowance) ≤ 1 MiB < 11 ×
    assert [r["id"] for r in rows] == list(range(21, 31))  # the newest kept


async def test_the_retention_task_counts_what_it_trims(tmp_path: Path) -> None:
    retention = DeadLetterRetention(max_age_days=1, trim_interval_s=1)
    metrics = GatewayMetrics()
    async with IngestRig(tmp_path) as rig:
        for _ in range(20):  # refused by ingest, then made old
            rig.deliver(f"{ROOT}/data", b"not json")
        await rig.settle()
        await rig.records.run(lambda db: db.execute("UPDATE deadletters SET ts_ns = 0"))
        task = asyncio.create_task(deadletters.retention_loop(rig.records, retention, metrics))
        try:
            for _ in range(100):
                if metrics.deadletters_trimmed:
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert metrics.deadletters_trimmed == 20
        assert await rig.deadletter_count() == 0


@pytest.mark.parametrize(
    ("retention", "field"),
    [
        ({"max_age_days": 0}, "max_age_days"),
        ({"max_bytes": 1000}, "max_bytes"),
        ({"trim_interval_s": 0.1}, "trim_interval_s"),
        ({"max_rows": 10}, "max_rows"),
    ],
)
def test_bad_retention_settings_are_refused_naming_the_field(
    tmp_path: Path, retention: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        GatewayConfig.model_validate(
            {
                "site": "lab-1",
                "spool": {"path": str(tmp_path / "s.db")},
                "store": {"kind": "sqlite", "path": str(tmp_path / "r.db")},
                "records": {"path": str(tmp_path / "rec.db"), "deadletters": retention},
            }
        )
    assert error.value.errors()[0]["loc"] == ("records", "deadletters", field)
