"""Chaos soak (``-m slow``): a seeded random schedule of faults over the real chain — the agent and
the gateway killed with SIGKILL or frozen with SIGSTOP/SIGCONT, Mosquitto stopped and restarted,
VictoriaMetrics stopped and restarted, the agent killed while the broker is down (its readings
only in its spool), the gateway killed while the store is down (readings only in its spool) —
then an exact count.

The ground truth is what the broker accepted from the agent: an observer with a persistent session
(QoS 1, kept across broker restarts by Mosquitto's persistence) records every batch. At the end:

- every reading the broker accepted is in the store, and the store holds nothing else;
- every reading that was in the agent's spool when the agent was killed is in the store;
- the store (a VictoriaMetrics that keeps duplicates) holds a reading more than once only as a
  redelivery: the copies are the same reading (same series, timestamp and value), which InfluxDB
  and a deduplicating VictoriaMetrics absorb;
- the last agent run spooled everything it read and the broker took it all; nobody printed a
  traceback.

The seed is random unless ``ETALON_SOAK_SEED`` is set; the seed and the schedule are printed (and
shown on failure), so ``ETALON_SOAK_SEED=N pytest -m slow tests/integration/test_chaos_soak.py``
replays a run. ``ETALON_SOAK_EVENTS`` changes the number of events (default 22).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.chain import (
    AGENT,
    SITE,
    Chain,
    Stored,
    pending_in_spool,
    stored_in_victoria,
    wait_for_count,
)
from tests.support.mqtt_client import RawClient
from tests.support.processes import EtalonProcess
from tests.support.services import Mosquitto, VictoriaMetrics

KINDS = (
    "kill_agent",
    "kill_gateway",
    "freeze_agent",
    "freeze_gateway",
    "restart_broker",
    "restart_store",
    "kill_agent_broker_down",
    "kill_gateway_store_down",
)
Key = tuple[str, str, str, int]
"""(instrument, channel, unit, ts_ms): one reading as the store keys it."""


@dataclass(frozen=True)
class Event:
    """One fault: what, for how long, and how long the chain runs before the next one."""

    kind: str
    duration_s: float
    pause_s: float


def make_schedule(seed: int, count: int) -> list[Event]:
    """``count`` events from ``seed``: every kind at least twice, the rest drawn at random."""
    rnd = random.Random(seed)
    kinds = [*KINDS, *KINDS]
    kinds += [rnd.choice(KINDS) for _ in range(max(0, count - len(kinds)))]
    rnd.shuffle(kinds)
    return [
        Event(kind, round(rnd.uniform(0.5, 4.0), 1), round(rnd.uniform(0.3, 1.5), 1))
        for kind in kinds
    ]


class Observer:
    """Every batch the broker accepted on the agent's data topic (persistent session)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = RawClient(broker.port, "soak-observer", keep_session=True)
        self.client.subscribe(f"etalon/v1/{SITE}/{AGENT}/data")

    def readings(self) -> Counter[Key]:
        """How many times the broker passed on each reading."""
        seen: Counter[Key] = Counter()
        for _, payload in list(self.client.messages):
            for r in json.loads(payload)["readings"]:
                seen[(r["instrument"], r["channel"], r["unit"], r["ts"] // 1_000_000)] += 1
        return seen

    def settle(self, quiet_s: float = 2.0, timeout_s: float = 60.0) -> None:
        """Wait until connected and nothing new arrived for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.client.messages)
            if now != count:
                count, since = now, time.monotonic()
            elif self.client.online and time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)
        raise AssertionError("the observer never settled")


class Soak:
    """Runs a schedule against the chain and keeps a journal of what it did when."""

    def __init__(self, tmp: Path, chain: Chain, broker: Mosquitto, store: VictoriaMetrics) -> None:
        self.tmp = tmp
        self.chain = chain
        self.broker = broker
        self.store = store
        self.t0 = time.monotonic()
        self.journal: list[str] = []
        self.in_killed_spools: set[tuple[str, str, int]] = set()
        self.kills = 0
        self.started_after: dict[str, int] = {"agent": 0, "gateway": 0}
        """Where each process's log stood when it was last started."""

    def note(self, text: str) -> None:
        self.journal.append(f"{time.monotonic() - self.t0:7.1f} s  {text}")

    def run(self, schedule: list[Event]) -> None:
        for number, event in enumerate(schedule, 1):
            self.note(f"#{number} {event.kind} for {event.duration_s} s")
            getattr(self, event.kind)(event.duration_s)
            time.sleep(event.pause_s)
        self.note("schedule done")

    def kill_agent(self, duration_s: float) -> None:
        self.chain.agent.kill9()
        self.kills += 1
        spool = self.tmp / "agent" / "spool.db"
        self.in_killed_spools |= pending_in_spool(spool, self.tmp / f"spool-at-kill-{self.kills}")
        time.sleep(duration_s)
        self._restart(self.chain.agent)

    def _restart(self, process: EtalonProcess) -> None:
        self.started_after[process.role] = len(process.log())
        process.start()

    def wait_running(self) -> None:
        """Both processes run (each started since its last restart)."""
        for process in (self.chain.gateway, self.chain.agent):
            after = self.started_after[process.role]
            process.wait_log(f"{process.role} started", timeout_s=60, after=after)

    def kill_gateway(self, duration_s: float) -> None:
        self.chain.gateway.kill9()
        time.sleep(duration_s)
        self._restart(self.chain.gateway)

    @staticmethod
    def _freeze(process: EtalonProcess, duration_s: float) -> None:
        assert process.process is not None
        os.killpg(process.process.pid, signal.SIGSTOP)
        try:
            time.sleep(duration_s)
        finally:
            os.killpg(process.process.pid, signal.SIGCONT)

    def freeze_agent(self, duration_s: float) -> None:
        self._freeze(self.chain.agent, duration_s)

    def freeze_gateway(self, duration_s: float) -> None:
        self._freeze(self.chain.gateway, duration_s)

    def restart_broker(self, duration_s: float) -> None:
        self.broker.stop()
        time.sleep(duration_s)
        self.broker.start()

    def restart_store(self, duration_s: float) -> None:
        self.store.stop()
        time.sleep(duration_s)
        self.store.start()

    def kill_agent_broker_down(self, duration_s: float) -> None:
        """The agent dies with readings only in its spool (the broker cannot take them)."""
        self.broker.stop()
        time.sleep(duration_s / 2)
        self.kill_agent(duration_s / 2)  # restarts the agent while the broker is still down
        self.broker.start()

    def kill_gateway_store_down(self, duration_s: float) -> None:
        """The gateway dies holding readings the broker no longer has and the store never got."""
        self.store.stop()
        time.sleep(duration_s / 2)
        self.kill_gateway(duration_s / 2)
        self.store.start()


def values_of_duplicates(store: VictoriaMetrics, keys: set[Key]) -> dict[Key, set[float]]:
    """The values stored under each duplicated key."""
    values: dict[Key, set[float]] = {key: set() for key in keys}
    for series in store.export(f'{{__name__="reading_value",agent="{AGENT}"}}'):
        labels = series["metric"]
        for ts, value in zip(series["timestamps"], series["values"], strict=True):
            key = (labels["instrument"], labels["channel"], labels["unit"], ts)
            if key in values:
                values[key].add(value)
    return values


@pytest.fixture
def seed() -> int:
    chosen = int(os.environ.get("ETALON_SOAK_SEED") or random.SystemRandom().randrange(10**6))
    print(f"chaos soak seed {chosen} (replay: ETALON_SOAK_SEED={chosen})")
    return chosen


@pytest.mark.slow
def test_a_random_schedule_of_faults_loses_nothing_and_doubles_only_redeliveries(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics, seed: int
) -> None:
    schedule = make_schedule(seed, int(os.environ.get("ETALON_SOAK_EVENTS", "22")))
    print("schedule:", *(f"  {e}" for e in schedule), sep="\n")
    chain = Chain(
        tmp_path, mosquitto, {"kind": "influxdb_v2", "url": victoria.url, "bucket": "b", "org": "o"}
    )
    observer = Observer(mosquitto)
    soak = Soak(tmp_path, chain, mosquitto, victoria)
    try:
        chain.start()
        soak.note("chain started")
        soak.run(schedule)
        # Everything back up, then a clean stop that must drain.
        soak.wait_running()
        time.sleep(2)
        last_run = chain.stop_agent()
        soak.note(f"agent stopped cleanly: {last_run}")
        observer.settle()
        observed = observer.readings()
        stored = wait_for_count(lambda: stored_in_victoria(victoria), len(observed), 90)
        assert chain.gateway.stop() == 0
        soak.note("gateway stopped cleanly")
        logs = chain.agent.log() + chain.gateway.log()
    finally:
        print("journal:", *soak.journal, sep="\n")
        observer.client.close()
        chain.close()

    report = report_of(seed, schedule, observed, stored, soak)
    print(report)
    missing = set(observed) - set(stored.samples)
    extra = set(stored.samples) - set(observed)
    assert not missing, f"{len(missing)} accepted readings never stored, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} stored readings nobody published, e.g. {sorted(extra)[:3]}"
    lost_from_spool = soak.in_killed_spools - {(i, c, ts) for i, c, _, ts in stored.samples}
    assert not lost_from_spool, f"spooled at a kill, never stored: {sorted(lost_from_spool)[:3]}"
    duplicates = set(stored.duplicates())
    different = {k: v for k, v in values_of_duplicates(victoria, duplicates).items() if len(v) != 1}
    assert not different, f"stored twice with different values: {different}"
    assert "Traceback" not in logs
    assert len(observed) > 100


def report_of(
    seed: int, schedule: list[Event], observed: Counter[Key], stored: Stored, soak: Soak
) -> str:
    kinds = Counter(e.kind for e in schedule)
    return (
        f"chaos soak: seed {seed}, {len(schedule)} events "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
        f"{len(observed)} readings accepted by the broker "
        f"({sum(observed.values()) - len(observed)} delivered again after a restart), "
        f"{stored.distinct} distinct in the store, {stored.count - stored.distinct} duplicate "
        f"samples (redeliveries), {len(soak.in_killed_spools)} readings in the agent's spool at "
        f"its {soak.kills} kills"
    )
