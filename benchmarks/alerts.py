"""Cost of alert evaluation at the gateway against the bare ingest of the same readings.

10,000 channels (10 agents × 10 instruments × 100 channels), 5 rules on every channel: limits at
two levels (the calibration-room preset), a second limits rule, rate of change over 15 min,
stale data, bad quality. Both sides are measured in the same run on the same readings:

- ingest: what the gateway does per MQTT data message before anyone else sees it — validation
  (``decode_batch``), the spool transaction, the hand-over to the event hub (``Ingest`` with its
  real spool; the MQTT link is a stand-in that acknowledges nothing);
- evaluation: the alert engine's work for the same readings (hub → queue → every check →
  the record store, when alerts change).

Both are measured in CPU time of the process (all its threads: SQLite runs on its own), so the
load of other processes on the machine does not skew the ratio; rates are readings per CPU
second, best of ``--repeat`` alternating runs.

Scenarios: all channels quiet (inside their limits), and a storm (10 % of channels out of their
limits, raising and writing alerts). The aim: evaluation under 20 % of ingest throughput.

    PYTHONPATH=src python benchmarks/alerts.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from core.mqtt import Message  # noqa: E402
from core.spool import Spool  # noqa: E402
from gateway.alerts.engine import AlertEngine  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402
from gateway.ingest.events import EventHub  # noqa: E402
from gateway.ingest.ingest import Ingest  # noqa: E402
from gateway.metrics import GatewayMetrics  # noqa: E402
from gateway.records.store import RecordStore  # noqa: E402

SITE = "bench"
AGENTS, INSTRUMENTS, CHANNELS = 10, 10, 100
BATCH = 500
T0 = 1_790_000_000_000_000_000


class NullLink:
    """Stands in for the MQTT link: ingest acknowledges into the void."""

    on_message: Any = None

    def ack(self, _message: Message) -> None:
        """Nothing to acknowledge."""

    def publish(self, *_args: Any, **_kwargs: Any) -> int:
        """Nothing to publish."""
        return 0


def config(tmp: Path) -> GatewayConfig:
    channels = [f"{SITE}/*/*/*"]
    return GatewayConfig.model_validate(
        {
            "site": SITE,
            "spool": {"path": str(tmp / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp / "readings.db")},
            "records": {"path": str(tmp / "records.db")},
            "alerts": {
                "mqtt": {"enabled": False},
                "rules": [
                    {
                        "id": "room",
                        "kind": "limits",
                        "preset": "calibration-room-temperature",
                        "channels": channels,
                    },
                    {
                        "id": "absolute",
                        "kind": "limits",
                        "channels": channels,
                        "levels": [
                            {"severity": "critical", "low": 15, "high": 30, "deadband": 0.5}
                        ],
                    },
                    {
                        "id": "ramp",
                        "kind": "rate",
                        "channels": channels,
                        "max_change": 0.5,
                        "window_s": 900,
                    },
                    {"id": "silent", "kind": "stale", "channels": channels, "max_age_s": 3600},
                    {"id": "bad", "kind": "bad_quality", "channels": channels, "count": 5},
                ],
            },
        }
    )


def payloads(rounds: int, out_of_band: float, onset: int = 0) -> list[tuple[str, bytes]]:
    """Data messages: each round is one reading of every channel, 1 s apart; the
    ``out_of_band`` share of channels jumps 2 K out of band at round ``onset`` (all at once)."""
    rng = random.Random(1)
    hot = {
        (a, i, c)
        for a in range(AGENTS)
        for i in range(INSTRUMENTS)
        for c in range(CHANNELS)
        if rng.random() < out_of_band
    }
    out: list[tuple[str, bytes]] = []
    for r in range(rounds):
        ts = T0 + r * 1_000_000_000
        for a in range(AGENTS):
            readings = [
                {
                    "instrument": f"i{i}",
                    "channel": f"c{c}",
                    "ts": ts,
                    "value": (25.0 if r >= onset and (a, i, c) in hot else 23.0)
                    + rng.gauss(0, 0.02),
                    "unit": "°C",
                    "quality": "good",
                }
                for i in range(INSTRUMENTS)
                for c in range(CHANNELS)
            ]
            for start in range(0, len(readings), BATCH):
                body = {
                    "schema": 1,
                    "site": SITE,
                    "agent": f"a{a}",
                    "seq": len(out),
                    "readings": readings[start : start + BATCH],
                }
                out.append((f"etalon/v1/{SITE}/a{a}/data", orjson.dumps(body)))
    return out


async def ingest_rate(tmp: Path, messages: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Readings/s through Ingest (validation, spool commit, hub hand-over), nobody listening."""
    cfg = config(tmp)
    spool = Spool(cfg.spool, "gateway")
    records = RecordStore(tmp / "ingest-records.db")
    await spool.open()
    await records.open()
    link = NullLink()
    ingest = Ingest(cfg, link, spool, records, GatewayMetrics(), EventHub())  # type: ignore[arg-type]
    task = asyncio.create_task(ingest.run())
    start = time.process_time()
    for index, (topic, payload) in enumerate(messages):
        ingest.on_message(Message(topic, payload, index + 1, 1, False, 0))
        if index % 4 == 3:
            await asyncio.sleep(0)  # let the spool task take what arrived, as paho's pace would
    while ingest.metrics.spooled < len(messages):  # noqa: ASYNC110 - polling a counter
        await asyncio.sleep(0.001)
    elapsed = time.process_time() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    readings = ingest.metrics.readings_received
    await spool.close()
    await records.close()
    return readings / elapsed, readings


async def evaluation_rate(
    tmp: Path, messages: list[tuple[str, bytes]]
) -> tuple[float, dict[str, Any]]:
    """Readings/s through the alert engine (hub → queue → checks → record store)."""
    from edge_agent.wire_batches import decode_batch
    from gateway.ingest.events import ReadingsArrived

    cfg = config(tmp)
    records = RecordStore(cfg.records.path)
    await records.open()
    hub = EventHub()
    engine = AlertEngine(cfg, records, hub)
    await engine.open()
    events = []
    for topic, payload in messages:
        agent = topic.split("/")[3]
        good, _, _ = decode_batch(payload, SITE, agent)
        events.append(ReadingsArrived(SITE, agent, good))
    # Warm-up: the first round builds the watches (one-time work per channel).
    first_round = AGENTS * (INSTRUMENTS * CHANNELS // BATCH)
    for event in events[:first_round]:
        hub.publish(event)
    engine._process()
    await engine._flush()
    start = time.process_time()
    for index, event in enumerate(events[first_round:]):
        hub.publish(event)
        if index % 4 == 3:
            engine._process()
            await engine._flush()
        if index == first_round - 1:  # the second round: a storm's onset, when there is one
            engine._process()
            await engine._flush()
            onset = time.process_time() - start
    engine._process()
    await engine._flush()
    elapsed = time.process_time() - start
    readings = sum(len(e.readings) for e in events[first_round:])
    stats = engine.snapshot_stats() | {"second_round_s": onset}
    await engine.close()
    await records.close()
    return readings / elapsed, stats


async def main() -> None:
    """Run the scenarios and print the figures."""
    logging.disable(logging.WARNING)  # "many alerts changed at once" is the point here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs of each side")
    args = parser.parse_args()
    channels = AGENTS * INSTRUMENTS * CHANNELS
    print(
        f"{channels:,} channels, 5 rules each, {args.rounds} readings per channel, "
        f"batches of {BATCH}; best of {args.repeat} alternating runs of each side"
    )
    results: dict[str, Any] = {}
    scenarios = (
        ("quiet: every channel inside its limits", 0.0, 0),
        ("storm, steady: 10 % of channels out of band (alerts already raised)", 0.10, 0),
        ("storm onset: 10 % of channels leave their band at once", 0.10, 1),
    )
    for name, share, onset in scenarios:
        messages = payloads(args.rounds, share, onset)
        ingest_runs, eval_runs, onsets = [], [], []
        stats: dict[str, Any] = {}
        for _ in range(args.repeat):  # alternate, so both sides see the same machine load
            with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
                ingest_runs.append((await ingest_rate(Path(one), messages))[0])
                evaluated, stats = await evaluation_rate(Path(two), messages)
                eval_runs.append(evaluated)
                onsets.append(stats["second_round_s"])
        ingest, evaluated = max(ingest_runs), max(eval_runs)
        ratio = ingest / evaluated
        print(f"\n{name}")
        print(f"  bare ingest (validate, spool, hand over): {ingest:12,.0f} readings/s")
        print(
            f"  alert evaluation:                         {evaluated:12,.0f} readings/s "
            f"= {evaluated * 5:,.0f} rule evaluations/s"
        )
        print(f"  evaluation cost / ingest cost:            {ratio * 100:11.1f} %   (aim < 20 %)")
        if onset:
            print(
                f"  the onset round ({channels:,} readings, {stats['changes']:,} alert changes "
                f"evaluated, audited and committed): {min(onsets) * 1000:.0f} ms"
            )
        results[name.split(":")[0]] = {
            "ingest": round(ingest),
            "evaluation": round(evaluated),
            "ratio": round(ratio, 3),
            "changes": stats["changes"],
        }
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
