"""Steady streaming through the whole chain: every reading arrives exactly once, with its unit
and quality. VictoriaMetrics here keeps every duplicate, so a reading written twice is caught."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.chain import UNITS, Chain, stored_in_victoria, wait_for_count
from tests.support.services import Mosquitto, VictoriaMetrics


def test_steady_streaming_arrives_exactly_once(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria.url, "bucket": "etalon", "org": "lab"},
    )
    try:
        chain.start()
        time.sleep(6)
        read = chain.stop_agent()
        assert read["readings_read"] > 60  # 6 channels, 0.2-1 s intervals, 6 s
        stored = wait_for_count(lambda: stored_in_victoria(victoria), read["readings_read"])
        assert chain.gateway.stop() == 0
    finally:
        chain.close()

    assert stored.distinct == read["readings_read"]
    assert stored.count == read["readings_read"], f"duplicates: {stored.duplicates()[:5]}"
    assert read["spool_depth"] == 0 and read["acknowledged"] == read["readings_read"]
    # Every channel arrived with its unit, and every reading with quality 0 (good).
    seen = {(i, c, u) for i, c, u, _ in stored.samples}
    assert seen == {(i, c, u) for (i, c), u in UNITS.items()}
    assert set(stored.qualities) == {0}
    # Channels keep their own intervals: the 0.2 s channel has ~5x the 1 s channel's readings.
    fast = len(stored.timestamps("zener-10v", "voltage"))
    slow = len(stored.timestamps("zener-10v", "temperature"))
    assert 4 <= fast / slow <= 6.5
    gateway = chain.gateway.final_metrics()
    assert gateway["readings_rejected"] == 0 and gateway["payloads_deadlettered"] == 0
