"""The chain under failure: processes killed with SIGKILL, the broker and the store stopped for
10 s. Each ends with an exact count in the store.

Redelivery after a kill is allowed by design (a reading is written again with the same series and
timestamp), so these tests use stores with InfluxDB's overwrite semantics: influxd 1.x, and
VictoriaMetrics with deduplication. The steady test uses a VictoriaMetrics without it.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.chain import (
    Chain,
    Stored,
    clock_steps,
    max_gap_ms,
    pending_in_spool,
    stored_in_influxd,
    stored_in_victoria,
    wait_for_count,
)
from tests.support.clock_steps import missed_ticks
from tests.support.services import Influxd, Mosquitto, VictoriaMetrics

# interval of each channel of sim_instruments(), ms
INTERVALS_MS = {
    ("zener-10v", "voltage"): 200,
    ("zener-10v", "temperature"): 1000,
    ("room-a", "temperature"): 500,
    ("room-a", "humidity"): 500,
    ("room-a", "pressure"): 500,
    ("resistor-10k", "resistance"): 1000,
}


def assert_no_gaps(stored: Stored, agent: dict[str, int], steps: Sequence[tuple[int, int]]) -> None:
    """No channel misses a tick the agent did not count: every tick of each channel's schedule
    between its first and last reading has a reading, except the ticks the agent skipped
    because it overran (a loaded machine) and counted. A reading late on its tick is that
    tick's (tests.support.clock_steps.missed_ticks); steps of the host's clock the agent
    reported (``steps``, from its log) are taken off."""
    missing: dict[str, int] = {}
    for (instrument, channel), interval in INTERVALS_MS.items():
        stamps = stored.timestamps(instrument, channel)
        missed = missed_ticks(stamps, interval, steps)
        if missed:
            missing[f"{instrument}/{channel}"] = sum(n for _a, _b, n in missed)
    assert max_gap_ms(stored, "zener-10v", "voltage", steps) > 0  # there are readings to compare
    assert sum(missing.values()) <= agent["readings_skipped"], (missing, agent)


def spooled_readings(spool: Path, more_than: int, timeout_s: float = 60.0) -> int:
    """Wait until a running agent's spool holds more than ``more_than`` readings (13 a second
    when it keeps its schedule: a loaded machine's agent skips ticks and takes longer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        db = sqlite3.connect(f"{spool.as_uri()}?mode=ro", uri=True)
        try:
            held = int(db.execute("SELECT COALESCE(SUM(n), 0) FROM spool").fetchone()[0])
        finally:
            db.close()
        if held > more_than:
            return held
        assert time.monotonic() < deadline, f"{held} readings in {spool} after {timeout_s:g} s"
        time.sleep(0.1)


def influx_store(influxd: Influxd) -> tuple[dict[str, object], str]:
    db = f"t{uuid.uuid4().hex[:10]}"
    return (
        {"kind": "influxdb_v1", "url": influxd.url, "database": db, "create_database": True},
        db,
    )


def test_gateway_killed_and_restarted_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    store, db = influx_store(influxd)
    chain = Chain(tmp_path, mosquitto, store)
    try:
        chain.start()
        time.sleep(3)
        chain.gateway.kill9()
        time.sleep(3)  # the agent keeps reading and publishing; the broker queues for the gateway
        chain.start_gateway()
        time.sleep(3)
        agent = chain.stop_agent()
        read = agent["readings_read"]
        stored = wait_for_count(lambda: stored_in_influxd(influxd, db), read)
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    assert stored.distinct == read
    assert_no_gaps(stored, agent, clock_steps(chain.agent.log()))


def test_agent_killed_and_restarted_delivers_its_spool(
    tmp_path: Path, mosquitto: Mosquitto, victoria_dedup: VictoriaMetrics
) -> None:
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria_dedup.url, "bucket": "b", "org": "o"},
    )
    try:
        chain.start()
        time.sleep(1)
        mosquitto.stop()  # readings pile up in the agent's spool...
        spooled_readings(tmp_path / "agent" / "spool.db", more_than=30)
        chain.agent.kill9()  # ...and the agent dies with them there
        pending = pending_in_spool(tmp_path / "agent" / "spool.db", tmp_path / "spool-copy")
        assert len(pending) > 30
        mosquitto.start()
        killed_at = time.time()
        chain.start_agent()
        time.sleep(3)
        second_run = chain.stop_agent()
        stored = wait_for_count(
            lambda: stored_in_victoria(victoria_dedup),
            len(pending) + second_run["readings_read"],
        )
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    in_store = {(i, c, ts) for i, c, _, ts in stored.samples}
    missing = pending - in_store
    assert not missing, f"{len(missing)} spooled readings never arrived, e.g. {sorted(missing)[:3]}"
    # The restarted agent delivered everything it read, its backlog first.
    assert second_run["acknowledged"] == second_run["readings_read"] + len(pending)
    assert stored.distinct >= len(pending) + second_run["readings_read"]
    # Before the kill and after the restart, no tick is missing: gaps measured less the steps of
    # the host's clock either run of the agent reported (its log holds both).
    steps = clock_steps(chain.agent.log())
    killed_ms = int(killed_at * 1000)
    for (instrument, channel), interval in INTERVALS_MS.items():
        ts = stored.timestamps(instrument, channel)
        gaps = [(a, b) for a, b, _n in missed_ticks(ts, interval, steps)]
        assert len(gaps) <= 1, f"{instrument}/{channel}: gaps {gaps}"
        assert all(a < killed_ms < b + 2000 for a, b in gaps)
        # The one gap starts at the last reading the dead agent had spooled: nothing before it
        # was lost.
        last_spooled = max(
            (t for i, c, t in pending if (i, c) == (instrument, channel)), default=None
        )
        if gaps and last_spooled is not None:
            assert gaps[0][0] == last_spooled


def test_broker_down_for_10_s(
    tmp_path: Path, mosquitto: Mosquitto, victoria_dedup: VictoriaMetrics
) -> None:
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria_dedup.url, "bucket": "b", "org": "o"},
    )
    try:
        chain.start()
        time.sleep(2)
        mosquitto.stop()
        time.sleep(10)
        mosquitto.start()
        chain.agent.wait_log("mqtt reconnected", timeout_s=15)
        time.sleep(2)
        metrics = chain.stop_agent()
        read = metrics["readings_read"]
        stored = wait_for_count(lambda: stored_in_victoria(victoria_dedup), read)
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    assert metrics["mqtt_reconnects"] >= 1
    assert stored.distinct == read
    assert_no_gaps(stored, metrics, clock_steps(chain.agent.log()))


@pytest.mark.parametrize("kind", ["victoria", "influxd"])
def test_store_down_for_10_s(tmp_path: Path, mosquitto: Mosquitto, kind: str) -> None:
    server: VictoriaMetrics | Influxd
    if kind == "victoria":
        server = VictoriaMetrics(tmp_path / "vm", dedup=True)
        store: dict[str, object] = {"kind": "influxdb_v2", "url": "", "bucket": "b", "org": "o"}
    else:
        server = Influxd(tmp_path / "influxd")
        store = {"kind": "influxdb_v1", "url": "", "database": "lab", "create_database": True}
    server.start(timeout_s=40)
    store["url"] = server.url
    chain = Chain(tmp_path, mosquitto, store)
    try:
        chain.start()
        time.sleep(2)
        server.stop()
        time.sleep(10)
        chain.gateway.wait_log("store unavailable")
        server.start(timeout_s=40)
        chain.gateway.wait_log("store recovered", timeout_s=20)
        time.sleep(1)
        agent = chain.stop_agent()
        read = agent["readings_read"]

        def stored_now() -> Stored:
            if isinstance(server, VictoriaMetrics):
                return stored_in_victoria(server)
            return stored_in_influxd(server, "lab")

        stored = wait_for_count(stored_now, read)
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
        server.stop()
    assert stored.distinct == read
    assert_no_gaps(stored, agent, clock_steps(chain.agent.log()))


def test_gateway_killed_while_store_down_keeps_its_spool(
    tmp_path: Path, mosquitto: Mosquitto, victoria_dedup: VictoriaMetrics
) -> None:
    """Acknowledged to the broker, not yet in the store: only the gateway's spool holds these."""
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "influxdb_v2", "url": victoria_dedup.url, "bucket": "b", "org": "o"},
    )
    try:
        chain.start()
        time.sleep(1)
        victoria_dedup.stop()
        chain.gateway.wait_log("store unavailable")
        time.sleep(3)
        chain.gateway.kill9()
        spool = sqlite3.connect(tmp_path / "gateway" / "spool.db")
        held = spool.execute("SELECT COUNT(*) FROM spool").fetchone()[0]
        spool.close()
        assert held > 5  # messages the broker no longer has
        victoria_dedup.start()
        chain.start_gateway()
        time.sleep(2)
        agent = chain.stop_agent()
        read = agent["readings_read"]
        stored = wait_for_count(lambda: stored_in_victoria(victoria_dedup), read)
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    assert stored.distinct == read
    assert_no_gaps(stored, agent, clock_steps(chain.agent.log()))
