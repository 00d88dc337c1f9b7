"""Several processes on one broker: gateways sharing the load, agents dying, self-metrics,
retained status."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import yaml

from edge_agent import __version__
from tests.support.chain import AGENT, SITE, Chain, stored_in_victoria, wait_for_count
from tests.support.processes import EtalonProcess, write_yaml
from tests.support.services import Mosquitto, VictoriaMetrics


def test_two_gateways_in_a_shared_subscription_split_the_data_exactly_once(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    store = {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    chain = Chain(
        tmp_path,
        mosquitto,
        store,
        agent_extra={"publish": {"batch_max_readings": 5, "batch_max_delay_ms": 0}},
    )
    config = yaml.safe_load(chain.gateway_config.read_text())
    config["mqtt"]["version"] = "5"
    config["ingest"] = {"shared_group": "etalon-gateways"}
    gateways = []
    for name in ("gw-1", "gw-2"):
        own = dict(
            config,
            id=name,
            spool={"path": str(tmp_path / name / "spool.db")},
            records={"path": str(tmp_path / name / "records.db")},
        )
        path = write_yaml(tmp_path / f"{name}.yaml", own)
        gateways.append(EtalonProcess("gateway", path, tmp_path / f"{name}.log"))
    try:
        for gateway in gateways:
            gateway.start().wait_log("gateway started")
        chain.start_agent()
        time.sleep(5)
        read = chain.stop_agent()["readings_read"]
        stored = wait_for_count(lambda: stored_in_victoria(victoria), read)
        received = []
        for gateway in gateways:
            assert gateway.stop() == 0
            received.append(gateway.final_metrics()["readings_received"])
    finally:
        for gateway in gateways:
            gateway.ensure_stopped()
        chain.close()
    assert stored.count == stored.distinct == read
    assert sum(received) == read
    assert min(received) > read * 0.2, received  # both did a real share of the work


def test_an_agent_killed_is_marked_offline_by_its_will_and_audited(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    chain = Chain(
        tmp_path,
        mosquitto,
        {"kind": "sqlite", "path": str(tmp_path / "r.db")},
        agent_extra={"mqtt": {"port": mosquitto.port, "keepalive_s": 5}},
    )
    try:
        chain.start()
        chain.gateway.wait_log("agent online")
        mark = len(chain.gateway.log())
        killed = time.monotonic()
        chain.agent.kill9()
        chain.gateway.wait_log("agent offline", timeout_s=5 * 1.5 + 2, after=mark)
        assert time.monotonic() - killed <= 5 * 1.5 + 1
        assert 'reason="connection lost"' in chain.gateway.log()[mark:]
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    db = sqlite3.connect(tmp_path / "gateway" / "records.db")
    state, reason = db.execute(
        "SELECT state, reason FROM agents WHERE agent=?", (AGENT,)
    ).fetchone()
    actions = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE subject=? ORDER BY id", (f"{SITE}/{AGENT}",)
        )
    ]
    channels = db.execute("SELECT COUNT(*) FROM channels WHERE agent=?", (AGENT,)).fetchone()[0]
    db.close()
    assert (state, reason) == ("offline", "connection lost")
    assert actions == ["agent online", "agent offline"]
    assert channels == 6  # the catalogue from the birth message


def test_self_metrics_of_both_processes_reach_the_store(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    chain = Chain(
        tmp_path, mosquitto, {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    )
    try:
        chain.start()
        time.sleep(5)  # metrics every 2 s
        read = chain.stop_agent()["readings_read"]
        wait_for_count(lambda: stored_in_victoria(victoria), read)
        assert chain.gateway.stop() == 0
        assert chain.gateway.final_metrics()["drained"] == 1
    finally:
        chain.close()

    def latest(match: str) -> float:
        series = victoria.export(match)
        return max(series[0]["values"]) if series else -1

    # The final samples, sent at each clean stop, carry the totals. (VictoriaMetrics can take a
    # moment to make the newest rows searchable on a loaded machine: poll, as for readings.)
    agent_match = f'{{__name__="etalon_agent_readings_read",agent="{AGENT}"}}'
    gateway_match = '{__name__="etalon_gateway_readings_written",gateway="gw-1"}'
    deadline = time.monotonic() + 10
    while (latest(agent_match) < read or latest(gateway_match) < read) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.3)
    assert latest(agent_match) == read
    assert latest(gateway_match) >= read
    names = {s["metric"]["__name__"] for s in victoria.export('{__name__=~"etalon_agent_.*"}')}
    assert {
        "etalon_agent_spool_depth",
        "etalon_agent_overruns",
        "etalon_agent_acknowledged",
    } <= names


def retained(broker: Mosquitto) -> dict[str, dict[str, object]]:
    """Every retained message under etalon/v1, as a fresh subscriber (a dashboard) sees it."""
    out = subprocess.run(
        [
            *("mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "etalon/v1/#"),
            *("-v", "--retained-only", "-W", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    messages = {}
    for line in out.splitlines():
        topic, _, payload = line.partition(" ")
        messages[topic] = json.loads(payload)
    return messages


def test_status_and_metrics_are_retained_for_whoever_subscribes_later(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    chain = Chain(tmp_path, mosquitto, {"kind": "sqlite", "path": str(tmp_path / "r.db")})
    root = f"etalon/v1/{SITE}"
    try:
        chain.start()
        time.sleep(3)  # a metrics sample from each (every 2 s)
        running = retained(mosquitto)
        assert chain.stop_agent()["readings_read"] > 0
        assert chain.gateway.stop() == 0
    finally:
        chain.close()
    stopped = retained(mosquitto)
    agent, gateway = running[f"{root}/{AGENT}/status"], running[f"{root}/gateways/gw-1/status"]
    # The birth messages: who, which version, and (the agent) its channel catalogue.
    assert agent["state"] == "online" and agent["version"] == __version__
    assert sum(len(i["channels"]) for i in agent["instruments"]) == 6  # type: ignore[attr-defined]
    assert gateway["state"] == "online" and gateway["version"] == __version__
    agent_metrics = running[f"{root}/{AGENT}/metrics"]["metrics"]
    gateway_metrics = running[f"{root}/gateways/gw-1/metrics"]["metrics"]
    assert agent_metrics["readings_read"] > 0  # type: ignore[index]
    assert gateway_metrics["readings_written"] > 0  # type: ignore[index]
    # A clean stop leaves "offline" behind, with the reason, for the next subscriber.
    assert stopped[f"{root}/{AGENT}/status"]["state"] == "offline"
    assert stopped[f"{root}/gateways/gw-1/status"]["state"] == "offline"
