"""Does the gateway's scheduled analytics delay ingest? The chain's ingest rate with the
standards analytics off and on, measured in the same run on the same servers.

The chain is measured as in benchmarks/chain.py: a pre-filled agent spool (N readings of 100
channels) drains through agent → Mosquitto → gateway → VictoriaMetrics, timed until the store
has every row. S standards are registered, each linked to a channel with a year of history
(H readings) already in VictoriaMetrics:

- ``off``: no ``standards:`` section;
- ``on``: the analytics as shipped (after the first pass each reads only its latest periods),
  every 10 s (60 times more often than the default);
- ``stress``: every second, and every pass reads, parses and aggregates each standard's whole
  year again (``reread_periods: 400``), so the worker and the store's export API are busy all the
  time the chain drains -- far more than a real gateway does.

Each mode starts measuring once the first pass (full reads) is over. The order of the modes
rotates from round to round; medians are reported, with the analytics' own timings.

    .venv/bin/python -m benchmarks.standards [--readings 200000] [--standards 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.processes import EtalonProcess, write_yaml  # noqa: E402
from tests.support.services import Mosquitto, VictoriaMetrics, free_port  # noqa: E402

from app.cli import main as etalon  # noqa: E402
from benchmarks.chain import (  # noqa: E402
    AGENT,
    OPENER,
    SITE,
    cpu_seconds,
    fill_spool,
    readings,
    vm_rows,
)

DAY_NS = 86_400_000_000_000
API_PORT = free_port()


def evaluations() -> int:
    """How many evaluations the running gateway has made (its metrics over the API)."""
    url = f"http://127.0.0.1:{API_PORT}/api/v1/metrics"
    with OPENER.open(url, timeout=10) as response:
        return int(json.loads(response.read())["standards_evaluations"])


def write_history(vm: VictoriaMetrics, standards: int, per_standard: int) -> int:
    """A year of readings of each history channel, straight into VictoriaMetrics."""
    end = (time.time_ns() // DAY_NS - 1) * DAY_NS
    step = 365 * DAY_NS // per_standard
    rows = 0
    for i in range(standards):
        lines = [
            f"reading,agent=history,channel=ch-{i},instrument=zener-{i},site={SITE},unit=V "
            f"value={10.0 + k * 1e-12 + (k % 7) * 1e-8!r},quality=0i,u=5e-07 "
            f"{end - (per_standard - k) * step}"
            for k in range(per_standard)
        ]
        for start in range(0, len(lines), 20_000):
            body = "\n".join(lines[start : start + 20_000]).encode()
            request = urllib.request.Request(
                vm.url + "/api/v2/write?precision=ns&bucket=b", data=body, method="POST"
            )
            OPENER.open(request, timeout=60).read()
        rows += 3 * per_standard
    return rows


def register(config: Path, tmp: Path, standards: int) -> None:
    document = {
        "standards": [
            {
                "id": f"Z-{i:03d}",
                "kind": "dc_voltage",
                "nominal": 10.0,
                "unit": "V",
                "owner_lab": "bench",
                "tolerance": "±5 ppm",
                "channels": [
                    {"agent": "history", "instrument": f"zener-{i}", "channel": f"ch-{i}",
                     "unit": "V"}
                ],
            }
            for i in range(standards)
        ]
    }  # fmt: skip
    path = write_yaml(tmp / "standards.yaml", document)
    assert etalon(["standards", "import", "-c", str(config), str(path)]) == 0


def gateway_config(tmp: Path, broker: Mosquitto, vm: VictoriaMetrics, mode: str) -> Path:
    config: dict[str, Any] = {
        "site": SITE,
        "id": "gw",
        "mqtt": {"port": broker.port, "keepalive_s": 30},
        "spool": {"path": str(tmp / "gw-spool.db")},
        "store": {"kind": "influxdb_v2", "url": vm.url, "bucket": "b", "org": "o"},
        "records": {"path": str(tmp / "records.db")},
        "write": {"batch_max_lines": 10_000, "batch_max_delay_ms": 20},
    }
    if mode == "on":
        config["standards"] = {"analytics_interval_s": 10}
    if mode == "stress":
        config["standards"] = {"analytics_interval_s": 1, "history": {"reread_periods": 400}}
    if mode != "off":
        config["api"] = {"port": API_PORT, "anonymous_read": True}
    return write_yaml(tmp / "gateway.yaml", config)


def drain(
    tmp: Path, broker: Mosquitto, vm: VictoriaMetrics, n: int, mode: str, standards: int
) -> dict[str, float]:
    """Rate of one drain of n pre-spooled readings, and the analytics' figures."""
    asyncio.run(fill_spool(tmp / "agent-spool.db", readings(n)))
    config = gateway_config(tmp, broker, vm, mode)
    agent_cfg = write_yaml(
        tmp / "agent.yaml",
        {
            "site": SITE,
            "id": AGENT,
            "mqtt": {"port": broker.port, "keepalive_s": 30},
            "spool": {"path": str(tmp / "agent-spool.db"), "max_bytes": 2**34},
            "publish": {"batch_max_readings": 500, "batch_max_delay_ms": 20, "window": 64},
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
    gateway = EtalonProcess("gateway", config, tmp / f"gateway-{mode}.log")
    mark = len(gateway.log())  # the log is appended to from round to round
    gateway.start()
    gateway.wait_log("gateway started", timeout_s=60, after=mark)
    if mode != "off":
        # Past the worker's start and the first pass (full reads); the passes keep going.
        gateway.wait_log("api listening", timeout_s=60, after=mark)
        deadline = time.monotonic() + 300
        while evaluations() < standards and time.monotonic() < deadline:
            time.sleep(0.2)
    target = vm_rows(vm) + n * 3
    gateway_cpu0 = cpu_seconds(gateway.process.pid)  # type: ignore[union-attr]
    start = time.monotonic()
    agent = EtalonProcess("agent", agent_cfg, tmp / "agent.log").start()
    while vm_rows(vm) < target and time.monotonic() < start + 600:
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    gateway_cpu = cpu_seconds(gateway.process.pid) - gateway_cpu0  # type: ignore[union-attr]
    agent.stop()
    gateway.stop()
    final = gateway.final_metrics()
    return {
        "rate": n / elapsed,
        "gateway_cpu_share": gateway_cpu / elapsed,
        "evaluations": final.get("standards_evaluations", 0),
        "evaluation_ms": final.get("standards_evaluation_ms", 0),
        "evaluation_ms_max": final.get("standards_evaluation_ms_max", 0),
        "skipped": final.get("standards_evaluations_skipped", 0),
    }


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--standards", type=int, default=20)
    parser.add_argument("--history", type=int, default=20_000, help="readings per standard")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="etalon-bench-std-") as name:
        tmp = Path(name)
        broker, vm = Mosquitto(tmp / "mq"), VictoriaMetrics(tmp / "vm")
        broker.start()
        vm.start()
        try:
            history_rows = write_history(vm, args.standards, args.history)
            register(gateway_config(tmp, broker, vm, "on"), tmp, args.standards)
            runs: dict[str, list[dict[str, float]]] = {"off": [], "on": [], "stress": []}
            modes = list(runs)
            for round_ in range(args.rounds):
                # The store grows with every drain: rotate the order so no mode always goes last.
                for mode in modes[round_ % 3 :] + modes[: round_ % 3]:
                    runs[mode].append(drain(tmp, broker, vm, args.readings, mode, args.standards))
        finally:
            broker.stop()
            vm.stop()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    print(
        f"readings per drain: {args.readings}; standards: {args.standards}, each with "
        f"{args.history} readings of history ({history_rows} rows in VictoriaMetrics)"
    )
    off = median(runs["off"], "rate")
    for mode, results in runs.items():
        line = (
            f"ingest, analytics {mode:6}: {median(results, 'rate'):10,.0f} readings/s "
            f"(gateway {median(results, 'gateway_cpu_share') * 100:.0f} % of a core)"
        )
        if mode != "off":
            line += (
                f", ratio to off {median(results, 'rate') / off:.2f}; per run "
                f"{median(results, 'evaluations'):.0f} evaluations, last "
                f"{median(results, 'evaluation_ms'):.0f} ms, max "
                f"{median(results, 'evaluation_ms_max'):.0f} ms, "
                f"{median(results, 'skipped'):.0f} ticks skipped"
            )
        print(line)
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
