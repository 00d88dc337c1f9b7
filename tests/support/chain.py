"""The chain as a user runs it: a gateway and an agent process, a real broker and store."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.clock_steps import intervals
from tests.support.processes import EtalonProcess, write_yaml
from tests.support.services import Influxd, Mosquitto, VictoriaMetrics

SITE = "lab-1"
AGENT = "bench-1"


def sim_instruments(fast: bool = True) -> list[dict[str, Any]]:
    """Three simulated instruments with channels at different intervals."""
    k = 1 if fast else 5
    return [
        {
            "name": "zener-10v",
            "protocol": "sim",
            "model": {"kind": "zener"},
            "channels": [
                {
                    "name": "voltage",
                    "quantity": "voltage",
                    "unit": "V",
                    "interval_s": 0.2 * k,
                    "uncertainty": {"absolute": 5e-7},
                    "tags": {"standard": "Z10-01"},
                },
                {
                    "name": "temperature",
                    "quantity": "temperature",
                    "unit": "°C",
                    "interval_s": 1.0 * k,
                },
            ],
        },
        {
            "name": "room-a",
            "protocol": "sim",
            "model": {"kind": "room"},
            "channels": [
                {"name": n, "quantity": n, "unit": u, "interval_s": 0.5 * k, "tags": {"room": "A"}}
                for n, u in (("temperature", "°C"), ("humidity", "%rh"), ("pressure", "hPa"))
            ],
        },
        {
            "name": "resistor-10k",
            "protocol": "sim",
            "model": {"kind": "resistor"},
            "channels": [
                {"name": "resistance", "quantity": "resistance", "unit": "Ω", "interval_s": 1.0 * k}
            ],
        },
    ]


UNITS = {
    ("zener-10v", "voltage"): "V",
    ("zener-10v", "temperature"): "°C",
    ("room-a", "temperature"): "°C",
    ("room-a", "humidity"): "%rh",
    ("room-a", "pressure"): "hPa",
    ("resistor-10k", "resistance"): "Ω",
}


@dataclass
class Stored:
    """What a store holds: (instrument, channel, unit, ts_ms) → how many samples, qualities."""

    samples: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    qualities: Counter[int] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        """All samples, duplicates included."""
        return sum(self.samples.values())

    @property
    def distinct(self) -> int:
        """Distinct (series, timestamp)."""
        return len(self.samples)

    def duplicates(self) -> list[tuple[str, str, str, int]]:
        """Keys stored more than once."""
        return [k for k, n in self.samples.items() if n > 1]

    def timestamps(self, instrument: str, channel: str) -> list[int]:
        """Sorted ms timestamps of one channel."""
        return sorted(k[3] for k in self.samples if k[0] == instrument and k[1] == channel)


def stored_in_victoria(vm: VictoriaMetrics, agent: str = AGENT) -> Stored:
    """Readings in VictoriaMetrics, by their ``reading_quality`` samples (every reading has one)."""
    out = Stored()
    for series in vm.export(f'{{__name__="reading_quality",agent="{agent}"}}'):
        labels = series["metric"]
        for ts, value in zip(series["timestamps"], series["values"], strict=True):
            out.samples[(labels["instrument"], labels["channel"], labels["unit"], ts)] += 1
            out.qualities[int(value)] += 1
    return out


def stored_in_influxd(server: Influxd, db: str, agent: str = AGENT) -> Stored:
    """Readings in influxd 1.x (which keeps one point per series and timestamp)."""
    out = Stored()
    answer = server.query(f"SELECT quality FROM reading WHERE agent='{agent}' GROUP BY *", db)
    for series in answer["results"][0].get("series", []):
        tags = series["tags"]
        for ts, quality in series["values"]:
            key = (tags["instrument"], tags["channel"], tags["unit"], int(ts) // 1_000_000)
            out.samples[key] += 1
            out.qualities[int(quality)] += 1
    return out


class Chain:
    """Config files and processes for one agent and one gateway."""

    def __init__(
        self,
        tmp: Path,
        broker: Mosquitto,
        store: dict[str, Any],
        instruments: list[dict[str, Any]] | None = None,
        agent_extra: dict[str, Any] | None = None,
        gateway_extra: dict[str, Any] | None = None,
    ) -> None:
        self.tmp = tmp
        self.broker = broker
        mqtt = {
            "host": "127.0.0.1",
            "port": broker.port,
            "keepalive_s": 5,
            "reconnect": {"initial_s": 0.5, "max_s": 2.0},
        }
        agent = {
            "site": SITE,
            "id": AGENT,
            "mqtt": mqtt,
            "spool": {"path": str(tmp / "agent" / "spool.db")},
            "publish": {"batch_max_readings": 100, "batch_max_delay_ms": 50},
            "metrics_interval_s": 2,
            "instruments": instruments or sim_instruments(),
        }
        gateway = {
            "site": SITE,
            "id": "gw-1",
            "mqtt": mqtt,
            "spool": {"path": str(tmp / "gateway" / "spool.db")},
            "store": store,
            "records": {"path": str(tmp / "gateway" / "records.db")},
            "write": {
                "batch_max_lines": 2000,
                "batch_max_delay_ms": 100,
                "retry": {"initial_s": 0.2, "max_s": 1.0},
            },
            "metrics_interval_s": 2,
        }
        agent.update(agent_extra or {})
        gateway.update(gateway_extra or {})
        self.agent_config = write_yaml(tmp / "agent.yaml", agent)
        self.gateway_config = write_yaml(tmp / "gateway.yaml", gateway)
        self.agent = EtalonProcess("agent", self.agent_config, tmp / "agent.log")
        self.gateway = EtalonProcess("gateway", self.gateway_config, tmp / "gateway.log")

    def start(self) -> None:
        """Gateway first (it must be subscribed), then the agent."""
        self.start_gateway()
        self.start_agent()

    def start_gateway(self) -> None:
        """Start the gateway and wait until it runs."""
        mark = len(self.gateway.log())
        self.gateway.start()
        self.gateway.wait_log("gateway started", after=mark)

    def start_agent(self) -> None:
        """Start the agent and wait until it runs."""
        mark = len(self.agent.log())
        self.agent.start()
        self.agent.wait_log("agent started", after=mark)

    def stop_agent(self) -> dict[str, int]:
        """Stop the agent cleanly; check it spooled all it read and the broker took it all."""
        assert self.agent.stop() == 0
        metrics = self.agent.final_metrics()
        assert metrics["spooled"] == metrics["readings_read"], metrics
        assert metrics["spool_depth"] == 0, metrics
        assert metrics["drained"] == 1, metrics
        return metrics

    def close(self) -> None:
        """Teardown: kill whatever still runs."""
        self.agent.ensure_stopped()
        self.gateway.ensure_stopped()


def wait_for_count(read: Any, expected: int, timeout_s: float = 30.0) -> Stored:
    """Poll the store until it holds ``expected`` distinct readings (or time runs out)."""
    deadline = time.monotonic() + timeout_s
    stored = read()
    while stored.distinct < expected and time.monotonic() < deadline:
        time.sleep(0.3)
        stored = read()
    return stored


def clock_steps(agent_log: str) -> list[tuple[int, int]]:
    """The steps of the host's clock an agent's log reports: (wall time after it, size), in ms.
    An agent restarted in a test appends to the same log: each run's steps are in it."""
    found = re.findall(r"clock stepped at_ms=(\d+) by_ms=(-?\d+)", agent_log)
    return [(int(at), int(by)) for at, by in found]


def gaps_ms(
    stored: Stored, instrument: str, channel: str, steps: Sequence[tuple[int, int]] = ()
) -> list[int]:
    """The intervals between consecutive readings of a channel, each less the forward steps of
    the host's clock the agent reported inside it (see :func:`clock_steps`, and
    tests.support.clock_steps for why)."""
    return intervals(stored.timestamps(instrument, channel), steps)


def max_gap_ms(
    stored: Stored, instrument: str, channel: str, steps: Sequence[tuple[int, int]] = ()
) -> int:
    """The longest interval between consecutive readings of a channel (see :func:`gaps_ms`)."""
    return max(gaps_ms(stored, instrument, channel, steps), default=0)


def pending_in_spool(spool: Path, copy_dir: Path) -> set[tuple[str, str, int]]:
    """Readings still in a (copied) agent spool: (instrument, channel, ts_ms)."""
    copy_dir.mkdir()
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(spool) + suffix)
        if source.exists():
            shutil.copy(source, copy_dir / (spool.name + suffix))
    db = sqlite3.connect(copy_dir / spool.name)
    try:
        # An entry holds one poll's readings, comma-joined JSON objects.
        rows = [
            r
            for (entry,) in db.execute("SELECT entry FROM spool")
            for r in json.loads(b"[" + bytes(entry) + b"]")
        ]
    finally:
        db.close()
    return {(r["instrument"], r["channel"], r["ts"] // 1_000_000) for r in rows}
