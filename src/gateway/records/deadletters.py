"""Dead letters: what the gateway refused, kept in the record store with the reason — bounded.

Ingest adds the payloads it refused, the writer the points a store refused. A retention task
deletes, every ``records.deadletters.trim_interval_s``, those older than ``max_age_days`` and
then, oldest first, those beyond ``max_bytes`` in total (payload, reason and topic, plus a small
per-row allowance); how many it deleted is the self-metric ``deadletters_trimmed``. A flood of
hostile payloads therefore costs bounded disk. Dead letters are evidence of faults, not records
of the quality system: unlike the audit log they are not append-only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable

from core.logs import log_event
from gateway.metrics import GatewayMetrics
from gateway.records.config import DeadLetterRetention
from gateway.records.store import RecordStore

log = logging.getLogger("etalon.gateway")

ROW_ALLOWANCE = 64
"""Bytes counted per dead letter beyond its payload, reason and topic (ids, sizes, index)."""
CHUNK = 10_000
"""Rows deleted per transaction: the record store's thread serves ingest between chunks."""
_SIZE = "length(payload) + length(CAST(reason AS BLOB)) + length(CAST(topic AS BLOB))"


def insert(
    db: sqlite3.Connection, ts_ns: int, topic: str, reason: str, size: int, payload: bytes
) -> None:
    """Add one dead letter (``payload`` is what is kept of it, ``size`` its full length)."""
    db.execute(
        "INSERT INTO deadletters(ts_ns, topic, reason, payload_bytes, payload) VALUES (?,?,?,?,?)",
        (ts_ns, topic, reason, size, payload),
    )


def trim_older(db: sqlite3.Connection, before_ns: int, limit: int = CHUNK) -> int:
    """Delete up to ``limit`` dead letters older than ``before_ns``; how many were deleted."""
    cursor = db.execute(
        "DELETE FROM deadletters WHERE id IN "
        "(SELECT id FROM deadletters WHERE ts_ns < ? ORDER BY ts_ns LIMIT ?)",
        (before_ns, limit),
    )
    return cursor.rowcount


def trim_beyond(db: sqlite3.Connection, max_bytes: int, limit: int = CHUNK) -> int:
    """Delete up to ``limit`` of the oldest dead letters beyond ``max_bytes`` in total."""
    total = db.execute(
        f"SELECT COALESCE(SUM({_SIZE}), 0) + COUNT(*) * ? FROM deadletters", (ROW_ALLOWANCE,)
    ).fetchone()[0]
    if total <= max_bytes:
        return 0
    # The newest rows that fit are kept: find the newest row that no longer fits.
    row = db.execute(
        f"SELECT id FROM (SELECT id, SUM({_SIZE} + ?) OVER (ORDER BY id DESC) AS kept "
        "FROM deadletters) WHERE kept > ? ORDER BY id DESC LIMIT 1",
        (ROW_ALLOWANCE, max_bytes),
    ).fetchone()
    if row is None:
        return 0
    cursor = db.execute(
        "DELETE FROM deadletters WHERE id IN "
        "(SELECT id FROM deadletters WHERE id <= ? ORDER BY id LIMIT ?)",
        (row[0], limit),
    )
    return cursor.rowcount


async def trim(
    records: RecordStore, retention: DeadLetterRetention, now_ns: int | None = None
) -> int:
    """Apply both limits now, a chunk per transaction; how many dead letters were deleted."""
    now = time.time_ns() if now_ns is None else now_ns
    before = now - int(retention.max_age_days * 86_400 * 1e9)
    deleted = 0
    for step in (
        functools.partial(trim_older, before_ns=before),
        functools.partial(trim_beyond, max_bytes=retention.max_bytes),
    ):
        while True:
            count = await records.run(_in_transaction(step))
            deleted += count
            if count < CHUNK:
                break
    return deleted


def _in_transaction(step: Callable[[sqlite3.Connection], int]) -> Callable[..., int]:
    def run(db: sqlite3.Connection) -> int:
        db.execute("BEGIN")
        count = step(db)
        db.execute("COMMIT")
        return count

    return run


async def retention_loop(
    records: RecordStore, retention: DeadLetterRetention, metrics: GatewayMetrics
) -> None:
    """Trim at start and every ``trim_interval_s`` until cancelled; a failed trim is logged and
    tried again at the next interval (it never stops the gateway)."""
    while True:
        try:
            deleted = await trim(records, retention)
        except Exception as exc:  # noqa: BLE001 - retention is housekeeping: next interval
            log_event(log, logging.ERROR, "dead letters not trimmed", reason=str(exc))
        else:
            metrics.deadletters_trimmed += deleted
            if deleted:
                log_event(log, logging.INFO, "dead letters trimmed", deleted=deleted)
        await asyncio.sleep(retention.trim_interval_s)
