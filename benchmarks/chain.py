"""Throughput of the chain agent → Mosquitto → gateway → VictoriaMetrics, both spools on, against
two raw baselines measured in the same run on the same servers:

- MQTT: a bare paho QoS 1 publisher and subscriber moving the same payloads;
- HTTP: a bare POST of the same line protocol to the same VictoriaMetrics.

The chain is measured by draining a pre-filled agent spool (N readings of 10 instruments × 10
channels, distinct timestamps; an entry per poll of an instrument, as the agent spools them, or
with ``--spooled-per reading`` an entry per reading) through the whole chain, from the agent's
start until VictoriaMetrics has every row; the store is then read back to prove nothing was lost
or doubled. Also measured: CPU of each process per reading, and an agent reading 100 simulated
instruments (1,000 channels at 1 Hz): its CPU share and resident memory.

When each drain ended is taken where it is exact, not from VictoriaMetrics' ``/metrics``, which
serves a copy up to a second old (a second is a third of a 200,000-reading chain, and most of the
HTTP baseline): the HTTP baseline ends when VictoriaMetrics has answered its last POST, the chain
when the gateway's spool is empty for the last time (its writer has had every write answered)
before VictoriaMetrics counts every row; both are then checked against VictoriaMetrics' count.
With ``--rounds`` the HTTP baseline and the chain are measured in turns, each chain against the
baseline measured just before it, and the ratio's median and spread are printed.

    .venv/bin/python -m benchmarks.chain [--readings 500000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.chain import stored_in_victoria, wait_for_count  # noqa: E402
from tests.support.processes import EtalonProcess, child_env, write_yaml  # noqa: E402
from tests.support.services import Mosquitto, VictoriaMetrics  # noqa: E402

from core.spool import Spool, SpoolConfig  # noqa: E402
from drivers.reading import Reading  # noqa: E402
from edge_agent.wire import encode_reading, encode_readings, join_batch  # noqa: E402
from gateway.tsdb.lines import LineBuilder  # noqa: E402
from gateway.tsdb.points import ReadingsBatch  # noqa: E402

SITE, AGENT = "bench", "agent-1"
T0 = 1_790_000_000_000_000_000
BATCH = 500
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def readings(n: int, agent: str = AGENT) -> list[Reading]:
    """n readings over 100 channels, 1 ms apart per channel."""
    return [
        Reading(
            f"dmm-{i % 10}",
            f"ch-{(i // 10) % 10}",
            T0 + (i // 100) * 1_000_000,
            10.0 + i * 1e-9,
            "V",
            u=1e-7,
            tags={"room": "A"},
        )
        for i in range(n)
    ]


def vm_rows(vm: VictoriaMetrics) -> int:
    """Rows VictoriaMetrics has inserted through its Influx endpoints."""
    with OPENER.open(vm.url + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('vm_rows_inserted_total{type="influx"}'):
                return int(float(line.split()[-1]))
    return 0


def wait_rows(vm: VictoriaMetrics, target: int, timeout_s: float = 300) -> float:
    deadline = time.monotonic() + timeout_s
    while vm_rows(vm) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {vm_rows(vm)} of {target} rows arrived")
        time.sleep(0.02)
    return time.monotonic()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def baseline_mqtt(port: int, payloads: list[bytes], per_payload: int) -> float:
    """Readings/s moved by a bare QoS 1 publisher to a bare subscriber."""
    received = threading.Event()
    count = [0]

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        count[0] += 1
        if count[0] == len(payloads):
            received.set()

    sub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bsub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("baseline/data", 1)
    sub.loop_start()
    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bpub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)
    start = time.monotonic()
    infos = [pub.publish("baseline/data", p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    received.wait(120)
    elapsed = time.monotonic() - start
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return len(payloads) * per_payload / elapsed


def baseline_http(vm: VictoriaMetrics, bodies: list[bytes], per_body: int) -> float:
    """Readings/s of bare POSTs of pre-built line protocol to /api/v2/write, until
    VictoriaMetrics has answered the last one (it answers once the rows are in its storage)."""
    before = vm_rows(vm)
    start = time.monotonic()
    for body in bodies:
        request = urllib.request.Request(
            vm.url + "/api/v2/write?precision=ns&bucket=b", data=body, method="POST"
        )
        OPENER.open(request, timeout=30).read()
    end = time.monotonic()
    wait_rows(vm, before + len(bodies) * per_body * 3)  # value, quality, u: 3 rows a reading
    return len(bodies) * per_body / (end - start)


class SpoolWatch:
    """The gateways' spools, read-only: when they were last seen to become empty."""

    def __init__(self, paths: list[Path]) -> None:
        self._dbs = [sqlite3.connect(f"file:{p}?mode=ro", uri=True) for p in paths]
        self.empty_since: float | None = None
        self._last_ids: list[int] = []

    def poll(self) -> None:
        """Note whether every spool is empty now (and since when). An entry that came and went
        between two polls moves the last id: the emptiness then began after this poll's
        predecessor, so it counts from now (a drain never ends early, at worst one poll late)."""
        spooled = sum(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0] for db in self._dbs)
        last_ids = [
            db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'spool'"
            ).fetchone()[0]
            for db in self._dbs
        ]
        moved, self._last_ids = last_ids != self._last_ids, last_ids
        if spooled:
            self.empty_since = None
        elif self.empty_since is None or moved:
            self.empty_since = time.monotonic()

    def close(self) -> None:
        for db in self._dbs:
            db.close()


def compile_bytecode() -> None:
    """Give the agent and the gateway the bytecode an installed etalon has.

    pip and uv compile every module they install, and so does scripts/install for the demo;
    the test install does not, and where PYTHONDONTWRITEBYTECODE is set (as on the reference
    machine) every process started would compile etalon and its dependencies again: a third of
    the agent's start-up CPU, which is inside the chain's figure. One child imports what the
    agent and the gateway import, writing the .pyc files; the processes started later may write
    what it missed."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    modules = "app.cli, app.process, edge_agent.agent, edge_agent.config, gateway.service"
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=child_env(), check=True)


def spool_entries(items: list[Reading], per: str) -> list[bytes | tuple[bytes, int]]:
    """The agent spool's entries for ``items``: ``poll``, as the agent writes them, an entry per
    poll of an instrument (its channels at one timestamp, one fragment of
    :func:`encode_readings`); ``reading``, an entry per reading, as agents before per-poll
    spooling wrote them."""
    if per == "reading":
        return [encode_reading(r) for r in items]
    polls: dict[tuple[str, int], list[Reading]] = {}
    for r in items:  # dict order: first seen first, so timestamps stay in order
        polls.setdefault((r.instrument, r.ts_ns), []).append(r)
    return [(encode_readings(poll), len(poll)) for poll in polls.values()]


async def fill_spool(path: Path, items: list[Reading], per: str = "poll") -> None:
    spool = Spool(SpoolConfig(path=path, max_bytes=2**34), "bench")
    await spool.open()
    entries = spool_entries(items, per)
    for i in range(0, len(entries), 1_000):
        await spool.append(entries[i : i + 1_000])  # type: ignore[arg-type]
    await spool.close()


def chain(
    tmp: Path,
    broker: Mosquitto,
    vm: VictoriaMetrics,
    n: int,
    synchronous: str = "full",
    batch: int = BATCH,
    gateways: int = 1,
    agent_id: str = AGENT,
    spooled_per: str = "poll",
) -> dict[str, float]:
    """Drain n pre-spooled readings through the chain; rate and CPU per process."""
    asyncio.run(fill_spool(tmp / "agent-spool.db", readings(n), spooled_per))
    mqtt = {"port": broker.port, "keepalive_s": 30}
    gateway_cfgs = []
    for number in range(gateways):
        config: dict[str, Any] = {
            "site": SITE,
            "id": f"gw-{number}",
            "mqtt": mqtt,
            "spool": {"path": str(tmp / f"gw-{number}-spool.db"), "synchronous": synchronous},
            "store": {"kind": "influxdb_v2", "url": vm.url, "bucket": "b", "org": "o"},
            "records": {"path": str(tmp / f"gw-{number}-records.db")},
            "write": {"batch_max_lines": 10_000, "batch_max_delay_ms": 20},
        }
        if gateways > 1:  # MQTT 5 shared subscription: the broker spreads messages over them
            config["mqtt"] = {**mqtt, "version": "5"}
            config["ingest"] = {"shared_group": "bench"}
        gateway_cfgs.append(write_yaml(tmp / f"gateway-{number}.yaml", config))
    agent_cfg = write_yaml(
        tmp / "agent.yaml",
        {
            "site": SITE,
            "id": agent_id,
            "mqtt": mqtt,
            "spool": {
                "path": str(tmp / "agent-spool.db"),
                "max_bytes": 2**34,
                "synchronous": synchronous,
            },
            "publish": {"batch_max_readings": batch, "batch_max_delay_ms": 20, "window": 64},
            "instruments": [
                {
                    "name": "idle",
                    "protocol": "sim",
                    "model": {"kind": "room"},
                    "channels": [
                        {"name": "t", "quantity": "temperature", "unit": "°C", "interval_s": 3600}
                    ],
                }
            ],
        },
    )
    procs = [EtalonProcess("gateway", c, c.with_suffix(".log")).start() for c in gateway_cfgs]
    for gateway in procs:
        gateway.wait_log("gateway started", timeout_s=180)
    pids = [g.process.pid for g in procs]  # type: ignore[union-attr]
    before = vm_rows(vm)
    target = before + n * 3  # value, quality, u
    gw_cpu0 = sum(cpu_seconds(pid) for pid in pids)
    mq_cpu0, vm_cpu0 = cpu_seconds(broker.process.pid), cpu_seconds(vm.process.pid)  # type: ignore[union-attr]
    start = time.monotonic()
    agent = EtalonProcess("agent", agent_cfg, tmp / "agent.log").start()
    agent_pid = agent.process.pid  # type: ignore[union-attr]
    agent_cpu = 0.0
    deadline = start + 600
    watch = SpoolWatch([tmp / f"gw-{number}-spool.db" for number in range(gateways)])
    # The agent's start-up (imports, config) is inside the figures; when it ended is noted, to
    # tell it from the cost per reading.
    started_at = started_cpu = None
    polled = 0.0
    while time.monotonic() < deadline:
        watch.poll()
        if time.monotonic() - polled > 0.05:
            polled = time.monotonic()
            agent_cpu = cpu_seconds(agent_pid)
            if started_at is None and "agent started" in agent.log():
                started_at, started_cpu = time.monotonic(), agent_cpu
            # VictoriaMetrics has every row (its count lags up to a second) and the gateways
            # have nothing left: the drain ended when their spools last became empty.
            if watch.empty_since is not None and vm_rows(vm) >= target:
                break
        time.sleep(0.005)
    watch.close()
    end = watch.empty_since or time.monotonic()
    if vm_rows(vm) < target:
        raise TimeoutError(f"only {vm_rows(vm) - before} of {n * 3} rows arrived")
    rate = n / (end - start)
    if started_at is None:
        started_at, started_cpu = start, 0.0
    cpu = {
        "agent": agent_cpu,
        "gateway": sum(cpu_seconds(pid) for pid in pids) - gw_cpu0,
        "mosquitto": cpu_seconds(broker.process.pid) - mq_cpu0,  # type: ignore[union-attr]
        "victoria-metrics": cpu_seconds(vm.process.pid) - vm_cpu0,
    }  # type: ignore[union-attr]
    try:
        agent.stop()
        for gateway in procs:
            gateway.stop()
    finally:  # one that does not stop in time must not outlive the benchmark
        for process in (agent, *procs):
            process.ensure_stopped()
    # VictoriaMetrics makes a new series searchable a moment after it took its rows (its index
    # is flushed apart from the data): an export right after the drain can miss whole series
    # that a later one finds (seen: 48 of 100). Wait for every reading as the chain tests do; a
    # sample too many is a double write and never goes away.
    stored = wait_for_count(lambda: stored_in_victoria(vm, agent_id), n)
    exported = stored.count
    per_1000 = {k: v / (end - start) / (rate / 1000) for k, v in cpu.items()}
    return {
        "rate": rate,
        "seconds": end - start,
        "agent_startup_s": started_at - start,
        "agent_startup_cpu_s": started_cpu,
        "rate_after_startup": n / (end - started_at),
        "agent_us_per_reading_after_startup": (agent_cpu - started_cpu) / n * 1e6,
        "exported": exported,
        "exactly_once": exported == stored.distinct == n,
        **{f"cpu_per_1000_{k}": v for k, v in per_1000.items()},
    }


def agent_footprint(tmp: Path, broker: Mosquitto, seconds: float = 30) -> dict[str, float]:
    """An agent reading 100 simulated instruments, 10 channels each, at 1 Hz."""
    instruments = [
        {
            "name": f"room-{i:03d}",
            "protocol": "sim",
            "model": {"kind": "room"},
            "channels": [
                {"name": f"t{j}", "quantity": "temperature", "unit": "°C", "interval_s": 1}
                for j in range(10)
            ],
        }
        for i in range(100)
    ]
    config = write_yaml(
        tmp / "agent-100.yaml",
        {
            "site": SITE,
            "id": "agent-100",
            "mqtt": {"port": broker.port},
            "spool": {"path": str(tmp / "agent-100.db")},
            "instruments": instruments,
        },
    )
    agent = EtalonProcess("agent", config, tmp / "agent-100.log").start()
    agent.wait_log("agent started", timeout_s=180)
    time.sleep(5)  # past start-up (imports, config)
    process = psutil.Process(agent.process.pid)  # type: ignore[union-attr]
    cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(seconds)
    cpu_share = (cpu_seconds(process.pid) - cpu0) / (time.monotonic() - t0)
    rss = process.memory_info().rss / 2**20
    agent.stop()
    metrics = agent.final_metrics()
    return {
        "cpu_share": cpu_share,
        "rss_mb": rss,
        "read": metrics["readings_read"],
        "overruns": metrics["overruns"],
    }


def http_bodies(encoded: list[bytes], agent: str) -> list[bytes]:
    """The readings as line protocol, 10,000 a body, as the gateway would write them."""
    builder = LineBuilder()
    return [
        "\n".join(
            builder.lines(
                ReadingsBatch(SITE, agent, [json.loads(e) for e in encoded[i : i + 10_000]])
            )
        ).encode()
        for i in range(0, len(encoded), 10_000)
    ]


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """``median (min–max)`` of a figure over the rounds."""
    if len(values) == 1:
        return format(values[0], fmt)
    low, high = min(values), max(values)
    return f"{statistics.median(values):{fmt}} ({low:{fmt}}–{high:{fmt}})"


def main() -> None:
    # `timeout` and Ctrl-C must still stop the servers this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=500_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="HTTP baseline and chain measured in turns this many times (median and spread)",
    )
    parser.add_argument(
        "--synchronous",
        choices=["full", "normal"],
        default="full",
        help="both spools' SQLite synchronous mode",
    )
    parser.add_argument("--batch", type=int, default=BATCH, help="readings per MQTT message")
    parser.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="gateways sharing the data (MQTT 5 shared subscription)",
    )
    parser.add_argument(
        "--spooled-per",
        choices=["poll", "reading"],
        default="poll",
        help="the pre-filled agent spool's entries: one per poll of an instrument (10 readings), "
        "as the agent writes them, or one per reading",
    )
    parser.add_argument(
        "--no-footprint", action="store_true", help="skip the agent with 1,000 channels"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    n = args.readings
    compile_bytecode()
    rounds: list[dict[str, Any]] = []
    footprint: dict[str, float] | None = None
    with tempfile.TemporaryDirectory(prefix="etalon-bench-") as tmp_name:
        tmp = Path(tmp_name)
        broker, vm = Mosquitto(tmp / "mq"), VictoriaMetrics(tmp / "vm")
        broker.start()
        vm.start()
        try:
            encoded = [encode_reading(r) for r in readings(n)]
            payloads = [
                join_batch(SITE, "baseline", k // BATCH, encoded[k : k + BATCH])
                for k in range(0, n, BATCH)
            ]
            mqtt_rate = baseline_mqtt(broker.port, payloads, BATCH)
            # A fresh VictoriaMetrics took the first round's POSTs at about half the rate of the
            # next rounds' (its buffers and caches grow on first use), which made the first ratio
            # look twice as good: one warm-up round, not counted, on series of its own.
            baseline_http(vm, http_bodies(encoded[: min(n, 100_000)], "http-warm-up"), 10_000)
            for number in range(1, args.rounds + 1):
                # Each round its own series, so none is a duplicate of an earlier round's.
                http_rate = baseline_http(vm, http_bodies(encoded, f"http-{number}"), 10_000)
                work = tmp / f"round-{number}"
                work.mkdir()
                agent_id = AGENT if args.rounds == 1 else f"{AGENT}-{number}"
                result = chain(
                    work,
                    broker,
                    vm,
                    n,
                    args.synchronous,
                    args.batch,
                    args.gateways,
                    agent_id,
                    args.spooled_per,
                )
                ratio = result["rate"] / http_rate
                rounds.append({"http_rate": http_rate, "ratio_to_http": ratio, "chain": result})
                print(
                    f"round {number}: bare HTTP {http_rate:,.0f}/s, chain {result['rate']:,.0f}/s"
                    f" ({result['seconds']:.1f} s), ratio {ratio:.2f}, gateway "
                    f"{result['cpu_per_1000_gateway'] * 1000:.2f} µs/reading, exactly once: "
                    f"{'yes' if result['exactly_once'] else 'NO'}; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            if not args.no_footprint:
                footprint = agent_footprint(tmp, broker)
        finally:
            broker.stop()
            vm.stop()
    # The round with the median ratio stands for the run (its own figures, not a mixture).
    ordered = sorted(rounds, key=lambda r: r["ratio_to_http"])
    middle = ordered[(len(ordered) - 1) // 2]
    result, http_rate = middle["chain"], middle["http_rate"]
    exactly_once = all(r["chain"]["exactly_once"] for r in rounds)
    print(
        f"readings: {n}, {args.gateways} gateway(s), chain batches of {args.batch}, "
        f"baselines batches of {BATCH}, spools synchronous={args.synchronous}, agent spool "
        f"entries per {args.spooled_per}, "
        f"{len(rounds)} round(s): median (min–max)"
    )
    print(f"baseline bare paho QoS 1 pub→sub:      {mqtt_rate:10,.0f} readings/s")
    print(f"baseline bare HTTP POST to VM:          {spread([r['http_rate'] for r in rounds])}")
    print(
        "chain agent→mosquitto→gateway→VM:       "
        f"{spread([r['chain']['rate'] for r in rounds])} readings/s"
    )
    print(
        f"  ratio to MQTT baseline: {result['rate'] / mqtt_rate:.2f}; to HTTP baseline "
        f"(each round's chain / its baseline): "
        f"{spread([r['ratio_to_http'] for r in rounds], '.2f')}"
    )
    print(
        f"  in the store: {[r['chain']['exported'] for r in rounds]} of {n} each "
        f"(exactly once: {'yes' if exactly_once else 'NO'})"
    )
    print(
        f"  agent start-up (counted above): {result['agent_startup_s']:.1f} s, "
        f"{result['agent_startup_cpu_s']:.2f} s of CPU; after it: "
        f"{result['rate_after_startup']:,.0f} readings/s, agent "
        f"{result['agent_us_per_reading_after_startup']:.1f} µs of CPU per reading"
    )
    for key in ("agent", "gateway", "mosquitto", "victoria-metrics"):
        per_reading = [r["chain"][f"cpu_per_1000_{key}"] * 1000 for r in rounds]
        print(f"  CPU µs per reading, {key:17}: {spread(per_reading, '.2f')}")
    if footprint is not None:
        print(
            f"agent with 100 simulated instruments, 1,000 channels at 1 Hz: "
            f"{footprint['cpu_share'] * 100:.1f} % of a core, {footprint['rss_mb']:.0f} MB "
            f"resident, {footprint['read']} readings, {footprint['overruns']} overruns"
        )
    if args.json:
        figures = {
            "mqtt_rate": mqtt_rate,
            "http_rate": http_rate,
            "chain": result,
            "ratio_to_http": middle["ratio_to_http"],
            "ratio_to_mqtt": result["rate"] / mqtt_rate,
            "exactly_once": exactly_once,
            "footprint": footprint,
            "rounds": rounds,
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
