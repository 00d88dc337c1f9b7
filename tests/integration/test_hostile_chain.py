"""Each hostile class against a real Mosquitto and a real gateway process: the gateway stays up,
the bad message is dead-lettered with a reason, and valid readings published afterwards are
stored — also after a restart of the gateway with the hostile retained messages still on the
broker (they are delivered to it again, and refused again)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.gateway.ingest.harness import (
    AGENT,
    ROOT,
    SITE,
    TS0,
    agent_metrics,
    batch,
    instrument_state,
    reading,
    status,
)
from tests.support.chain import Chain, stored_in_victoria, wait_for_count
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto, VictoriaMetrics

DEADLETTER = f"etalon/v1/{SITE}/deadletter"


class Scenario:
    """A gateway process (SQLite store unless given one), a publisher and a dead-letter watcher."""

    def __init__(self, tmp: Path, broker: Mosquitto, store: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.store_path = tmp / "gateway" / "readings.db"
        self.chain = Chain(tmp, broker, store or {"kind": "sqlite", "path": str(self.store_path)})
        self.records = tmp / "gateway" / "records.db"
        self.client = RawClient(broker.port, "hostile-publisher")
        self.client.subscribe(DEADLETTER)
        self.next_ts = 0

    def letters(self) -> list[dict[str, Any]]:
        """Dead letters seen on MQTT so far."""
        return [json.loads(p) for t, p in list(self.client.messages) if t == DEADLETTER]

    def wait_letters(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait for ``count`` dead letters in all."""
        deadline = time.monotonic() + timeout_s
        while len(self.letters()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        letters = self.letters()
        assert len(letters) >= count, (letters, self.chain.gateway.log()[-3000:])
        return letters

    def publish_valid(self, n: int = 3) -> set[int]:
        """A valid batch of ``n`` readings; returns their timestamps."""
        stamps = [TS0 + (self.next_ts + i) * 10**9 for i in range(n)]
        self.next_ts += n
        payload = batch(*[reading(ts=ts) for ts in stamps])
        self.client.publish(f"{ROOT}/data", payload)
        return set(stamps)

    def stored(self) -> set[int]:
        """Timestamps in the SQLite store."""
        if not self.store_path.exists():
            return set()
        with contextlib.closing(sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)) as db:
            try:
                return {ts for (ts,) in db.execute("SELECT ts FROM readings")}
            except sqlite3.OperationalError:  # not created yet
                return set()

    def wait_stored(self, stamps: set[int], timeout_s: float = 30.0) -> None:
        """Wait until the store holds every one of ``stamps``."""
        deadline = time.monotonic() + timeout_s
        while not stamps <= self.stored() and time.monotonic() < deadline:
            assert self.chain.gateway.process is not None
            assert self.chain.gateway.process.poll() is None, self.chain.gateway.log()[-3000:]
            time.sleep(0.1)
        assert stamps <= self.stored(), self.chain.gateway.log()[-3000:]

    def deadletter_rows(self) -> list[dict[str, Any]]:
        """Dead letters in the record store."""
        with contextlib.closing(sqlite3.connect(f"file:{self.records}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT topic, reason FROM deadletters")]

    def restart(self) -> None:
        """A clean stop and a start: the broker delivers the retained messages again."""
        assert self.chain.gateway.stop() == 0, self.chain.gateway.log()[-3000:]
        self.chain.start_gateway()

    def close(self) -> dict[str, int]:
        """Stop the gateway (it must stop cleanly) and return its final counters."""
        try:
            assert self.chain.gateway.stop() == 0, self.chain.gateway.log()[-3000:]
            return self.chain.gateway.final_metrics()
        finally:
            self.client.close()
            self.chain.close()


@contextlib.contextmanager
def scenario(
    tmp: Path, broker: Mosquitto, store: dict[str, Any] | None = None
) -> Iterator[Scenario]:
    """A started gateway, torn down at the end."""
    running = Scenario(tmp, broker, store)
    running.chain.start_gateway()
    try:
        yield running
    finally:
        running.client.close()
        running.chain.close()


def refused_again_after_restart(run: Scenario, retained: int, topics: set[str]) -> None:
    """Restart: the retained hostile messages come back, are refused again, and valid readings
    still arrive; the gateway stops cleanly."""
    before = len(run.letters())
    run.restart()
    letters = run.wait_letters(before + retained)
    assert {letter["topic"] for letter in letters[before:]} >= topics
    run.wait_stored(run.publish_valid())


def test_retained_oversize_integers_of_each_kind(tmp_path: Path, mosquitto: Mosquitto) -> None:
    hostile = {
        f"{ROOT}/instruments/dmm-1": instrument_state(since=99999999999999999999),
        f"{ROOT}/status": status(ts=99999999999999999999),
        f"{ROOT}/metrics": agent_metrics(ts=2**64, metrics={"readings_read": 2**80}),
        f"{ROOT}/data": batch(reading(0), seq=99999999999999999999),
    }
    with scenario(tmp_path, mosquitto) as run:
        for topic, payload in hostile.items():
            run.client.publish(topic, payload, retain=True)
        run.wait_stored(run.publish_valid())
        letters = run.wait_letters(len(hostile))
        assert {letter["topic"] for letter in letters} == set(hostile)
        reasons = {letter["topic"]: letter["reason"] for letter in letters}
        assert (
            "since: Input should be less than or equal to" in reasons[f"{ROOT}/instruments/dmm-1"]
        )
        assert "ts: Input should be less than or equal to" in reasons[f"{ROOT}/status"]
        assert "ts: Input should be less than or equal to" in reasons[f"{ROOT}/metrics"]
        assert "seq: Input should be less than or equal to" in reasons[f"{ROOT}/data"]
        refused_again_after_restart(run, len(hostile), set(hostile))
        metrics = run.close()
    assert metrics["payloads_deadlettered"] == len(hostile)  # the restarted gateway's count
    rows = run.deadletter_rows()
    assert len(rows) == 2 * len(hostile)


def test_a_flood_of_nested_json_beyond_the_in_flight_window(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    flood = 150  # the test broker's max_inflight_messages is 100
    nested = b"[" * 10_000 + b"]" * 10_000
    with scenario(tmp_path, mosquitto) as run:
        run.client.publish(f"{ROOT}/status", b"[" * 100_000 + b"]" * 100_000, retain=True)
        for _ in range(flood):
            run.client.publish(f"{ROOT}/data", nested)
        run.wait_stored(run.publish_valid())
        letters = run.wait_letters(flood + 1)
        assert all("recursion limit exceeded" in letter["reason"] for letter in letters)
        refused_again_after_restart(run, 1, {f"{ROOT}/status"})
        metrics = run.close()
    assert metrics["ingest_errors"] == 0  # refused as invalid JSON, not by accident


def test_a_control_character_in_each_string_field_refuses_only_its_reading(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics
) -> None:
    hostile = [
        {"reason": "no reply\r\n"},
        {"value": "OVLD\r\n", "quality": "bad"},
        {"unit": "V\n"},
        {"tags": {"room": "A\r\nB"}},
        {"channel": "volt\nage"},
    ]
    store = {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    with scenario(tmp_path, mosquitto, store) as run:
        for number, override in enumerate(hostile):
            readings = [reading(number * 1000 + i) for i in range(500)]
            readings[123] = reading(number * 1000 + 123, **override)
            run.client.publish(f"{ROOT}/data", batch(*readings))
        letters = run.wait_letters(len(hostile))
        stored = wait_for_count(lambda: stored_in_victoria(victoria, AGENT), 499 * len(hostile))
        metrics = run.close()
    assert stored.distinct == stored.count == 499 * len(hostile)
    assert [letter["reason"] for letter in letters] == ["1 of 500 readings refused"] * 5
    fields = [letter["rejected"][0]["reason"].split(":")[0] for letter in letters]
    assert fields == ["reason", "value", "unit", "tags.room", "channel"]
    assert metrics["readings_rejected"] == len(hostile)
    assert metrics["write_rejected"] == 0  # nothing reached the store that it had to refuse


def test_a_spoofed_status_is_refused(tmp_path: Path, mosquitto: Mosquitto) -> None:
    spoofed = {
        f"etalon/v1/{SITE}/rogue/status": status(),  # speaks as bench-1 from rogue's topic
        f"{ROOT}/status": status(agent="rogue"),
        f"{ROOT}/metrics": agent_metrics(agent="rogue"),
    }
    with scenario(tmp_path, mosquitto) as run:
        for topic, payload in spoofed.items():
            run.client.publish(topic, payload, retain=True)
        letters = run.wait_letters(len(spoofed))
        assert all("but was published on" in letter["reason"] for letter in letters)
        run.wait_stored(run.publish_valid())
        refused_again_after_restart(run, len(spoofed), set(spoofed))
        metrics = run.close()
    assert metrics["payloads_spoofed"] == len(spoofed)
    with contextlib.closing(sqlite3.connect(run.records)) as db:
        assert db.execute("SELECT site, agent FROM agents").fetchall() == []
