"""The alert engine's counters: evaluation, writes and deliveries in one set, which the engine
and its notifier share and ``/api/v1/alerts/stats`` shows."""

from __future__ import annotations

from pathlib import Path

from gateway.alerts.engine import AlertEngine
from gateway.config import GatewayConfig
from gateway.ingest.events import EventHub
from gateway.records.chain import LedgerSettings
from gateway.records.store import RecordStore

COUNTERS = [
    "readings_evaluated",
    "events",
    "changes",
    "flushes",
    "flush_errors",
    "queue_depth",
    "evaluation_errors",
    "batches_dropped",
    "mqtt_published",
    "messages_sent",
    "notifications_sent",
    "delivery_attempts_failed",
    "messages_failed",
]


async def test_the_engine_and_its_notifier_count_into_one_set(tmp_path: Path) -> None:
    cfg = GatewayConfig.model_validate(
        {
            "site": "lab-1",
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            "alerts": {},
        }
    )
    records = RecordStore(cfg.records.path, LedgerSettings.of(cfg.records, cfg.site, cfg.id))
    await records.open()
    engine = AlertEngine(cfg, records, EventHub())
    try:
        assert engine.notifier.stats is engine.stats
        engine.stats.flushes += 2
        engine.notifier.stats.messages_sent += 3
        stats = engine.snapshot_stats()
        assert list(stats) == [*COUNTERS, "alerts_open"]
        assert (stats["flushes"], stats["messages_sent"], stats["alerts_open"]) == (2, 3, 0)
    finally:
        await engine.close()
        await records.close()
