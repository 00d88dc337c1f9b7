"""The agent on a many-device Modbus simulator: CPU per datapoint, overruns and latency to the
broker, next to bare loops issuing the same requests to the same simulator.

Setup (all on 127.0.0.1): the simulator in its own process serves D devices (device ids 1..D)
of R float32 holding registers each on one TCP endpoint; the agent (``etalon agent``, its own
process) polls every device every ``--interval`` seconds and publishes to Mosquitto; this
process subscribes and counts readings at the broker, and the delay from each reading's
timestamp to its arrival. Then two bare loops (each its own process) read the same requests (one
read of 2R holding registers per device per interval) and decode them with ``struct``: a bare
pymodbus client (one request at a time), and a raw one (an asyncio protocol writing MBAP frames
packed with ``struct``, at most ``--transactions`` requests outstanding as the agent): the floor
of what any Modbus client in Python pays.

Figures (steady state, after ``--warmup``):

- datapoints/s at the broker against the expected D·R/interval;
- agent CPU, % of a core and µs per datapoint; each bare loop's µs per datapoint; the ratios
  (bare / agent: 1.0 means the agent costs no more than the bare loop);
- overruns (ticks skipped because a poll ran late) and readings skipped;
- reading-to-broker delay, median and 99th percentile.

    .venv/bin/python -m benchmarks.modbus_chain [--devices 50 --channels 20 --interval 0.1]
        [--transactions 16] [--seconds 30] [--json out.json]

``--transactions`` is the endpoint's ``max_transactions`` (requests outstanding at once; the
simulator, like a Modbus TCP gateway, takes several); 1 polls the devices one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.processes import EtalonProcess, child_env, write_yaml  # noqa: E402
from tests.support.services import Mosquitto  # noqa: E402

SITE, AGENT = "bench", "modbus-1"


# -- child processes ---------------------------------------------------------------------------


async def serve(devices: int, channels: int) -> None:
    """The simulator: prints its port, serves until killed."""
    from drivers.sim.modbus_server import MapDevice, MapPoint, ModbusSimServer, RegisterMap

    register_map = RegisterMap(
        devices=[
            MapDevice(
                device_id=d,
                points=[
                    MapPoint(
                        name=f"ch{c:02d}",
                        address=2 * c,
                        type="float32",
                        value=d * 100 + c + 0.25,
                    )
                    for c in range(channels)
                ],
            )
            for d in range(1, devices + 1)
        ]
    )
    async with ModbusSimServer(register_map) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


async def next_tick(
    loop: asyncio.AbstractEventLoop, tick: float, interval: float
) -> tuple[float, int]:
    """Sleep until the tick after ``tick``; returns it and how many ticks were missed (a loop
    late by more than an interval skips them, as the agent's scheduler does)."""
    tick += interval
    delay = tick - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
        return tick, 0
    missed = int(-delay // interval) + 1
    return tick + missed * interval, missed


def print_figures(values: int, cpu0: float, t0: float, overruns: int) -> None:
    """A bare loop's JSON figures, measured from ``cpu0``/``t0`` (process CPU, monotonic)."""
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    figures = {
        "dp_s": values / elapsed,
        "cpu_share": cpu / elapsed,
        "us_per_dp": cpu / values * 1e6,
        "overruns": overruns,
    }
    print(json.dumps(figures), flush=True)


async def bare(port: int, devices: int, channels: int, interval: float, seconds: float) -> None:
    """The bare loop: the same requests on the same schedule; prints its JSON figures."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    await client.connect()
    layout = struct.Struct(f">{channels}f")
    loop = asyncio.get_running_loop()
    tick = loop.time()
    polls = overruns = values = 0
    warm = 2.0
    cpu0 = t0 = None
    while True:
        now = loop.time()
        if cpu0 is None and now - tick >= 0 and polls * interval >= warm:
            cpu0, t0, values = time.process_time(), time.monotonic(), 0
        if t0 is not None and time.monotonic() - t0 >= seconds:
            break
        for device in range(1, devices + 1):
            response = await client.read_holding_registers(0, count=2 * channels, device_id=device)
            raw = struct.pack(f">{2 * channels}H", *response.registers)
            values += len(layout.unpack(raw))
        polls += 1
        tick, missed = await next_tick(loop, tick, interval)
        overruns += missed
    assert cpu0 is not None and t0 is not None
    client.close()
    print_figures(values, cpu0, t0, overruns)


class RawMbap(asyncio.Protocol):
    """The raw loop's connection: complete MBAP frames as they arrive, and a future to wait on."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.frames: list[bytes] = []
        self.arrived: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 6:
            end = 6 + int.from_bytes(buffer[4:6], "big")
            if len(buffer) < end:
                break
            self.frames.append(bytes(buffer[:end]))
            del buffer[:end]
        if self.frames and self.arrived is not None and not self.arrived.done():
            self.arrived.set_result(None)


async def bare_raw(
    port: int, devices: int, channels: int, interval: float, seconds: float, window: int
) -> None:
    """The raw loop: MBAP frames over an asyncio protocol, at most ``window`` outstanding, the
    same requests on the same schedule; prints its JSON figures."""
    loop = asyncio.get_running_loop()
    _transport, connection = await loop.create_connection(RawMbap, "127.0.0.1", port)
    request = struct.Struct(">HHHBBHH")
    layout = struct.Struct(f">{channels}f")
    tick = loop.time()
    polls = overruns = values = 0
    warm = 2.0
    cpu0 = t0 = None
    while True:
        if cpu0 is None and polls * interval >= warm:
            cpu0, t0, values = time.process_time(), time.monotonic(), 0
        if t0 is not None and time.monotonic() - t0 >= seconds:
            break
        sent = answered = 0
        while answered < devices:
            while sent < devices and sent - answered < window:
                sent += 1  # the transaction id is the device id
                assert connection.transport is not None
                connection.transport.write(request.pack(sent, 0, 6, sent, 3, 0, 2 * channels))
            connection.arrived = loop.create_future()
            if not connection.frames:
                await asyncio.wait_for(connection.arrived, 5.0)
            frames, connection.frames = connection.frames, []
            for frame in frames:
                values += len(layout.unpack_from(frame, 9))
            answered += len(frames)
        polls += 1
        tick, missed = await next_tick(loop, tick, interval)
        overruns += missed
    assert cpu0 is not None and t0 is not None
    print_figures(values, cpu0, t0, overruns)


async def poll_path(port: int, args: argparse.Namespace) -> dict[str, Any]:
    """The agent's polling path alone, in this process: one InstrumentRunner per device (the
    scheduler, the Modbus driver, the RowEncoder) against the simulator, polls counted at the
    encoded sink; no spool, no MQTT. Its figure is the event loop's CPU per poll, free of the
    other processes' share: a quick, steadier A/B of the polling path on a busy machine."""
    from core.clock import SystemClock
    from drivers.modbus.config import ModbusInstrument
    from drivers.registry import create_driver
    from edge_agent.metrics import AgentMetrics
    from edge_agent.scheduler import InstrumentRunner

    clock = SystemClock()
    metrics = AgentMetrics()
    polls = [0]

    def sink(*_: object) -> None:
        polls[0] += 1

    runners = []
    for config in agent_config_instruments(port, args):
        instrument = ModbusInstrument.model_validate(config)
        driver = create_driver(instrument, clock)
        runner = InstrumentRunner(
            instrument, driver, clock, sink, metrics, lambda *_: None, encoded_sink=sink
        )
        runners.append(runner)
    tasks = [asyncio.create_task(r.run()) for r in runners]
    await asyncio.sleep(args.warmup)
    polls0, cpu0, t0 = polls[0], time.thread_time(), time.monotonic()
    await asyncio.sleep(args.seconds)
    count, cpu, elapsed = polls[0] - polls0, time.thread_time() - cpu0, time.monotonic() - t0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "polls_s": count / elapsed,
        "us_per_poll": cpu / count * 1e6 if count else float("nan"),
        "us_per_dp": cpu / count / args.channels * 1e6 if count else float("nan"),
        "overruns": metrics.overruns,
    }


# -- the run -----------------------------------------------------------------------------------


class Counter:
    """Counts readings at the broker, and each reading's delay from its timestamp."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.readings = 0
        self.messages = 0
        self.delays_ms: list[float] = []
        self.recording = False
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="cnt")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"etalon/v1/{SITE}/{AGENT}/data", 1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        now = time.time_ns()
        readings = orjson.loads(message.payload)["readings"]
        with self.lock:
            self.readings += len(readings)
            self.messages += 1
            if self.recording:
                step = max(1, len(readings) // 20)
                self.delays_ms.extend((now - r["ts"]) / 1e6 for r in readings[::step])

    def snapshot(self) -> int:
        with self.lock:
            return self.readings

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process, by thread id (the main thread's is the pid)."""
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def agent_config_instruments(sim: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The benchmark's instruments: one per simulated device."""
    return [
        {
            "name": f"dev{d}",
            "protocol": "modbus",
            "transport": {
                "kind": "tcp",
                "host": "127.0.0.1",
                "port": sim,
                "max_transactions": args.transactions,
            },
            "device_id": d,
            "order": "ABCD",
            "channels": [
                {
                    "name": f"ch{c:02d}",
                    "table": "holding",
                    "address": 2 * c,
                    "type": "float32",
                    "unit": "1",
                    "interval_s": args.interval,
                }
                for c in range(args.channels)
            ],
        }
        for d in range(1, args.devices + 1)
    ]


def agent_config(tmp: Path, broker: int, sim: int, args: argparse.Namespace) -> Path:
    return write_yaml(
        tmp / "agent.yaml",
        {
            "site": SITE,
            "id": AGENT,
            "mqtt": {"port": broker},
            "spool": {"path": str(tmp / "agent-spool.db")},
            "instruments": agent_config_instruments(sim, args),
        },
    )


def run_agent(tmp: Path, broker: Mosquitto, sim: int, args: argparse.Namespace) -> dict[str, Any]:
    counter = Counter(broker.port)
    agent = EtalonProcess("agent", agent_config(tmp, broker.port, sim, args), tmp / "agent.log")
    agent.start()
    try:
        event_loop = agent.wait_log(r"agent started.* event_loop=(\w+)", timeout_s=60)[1]
        time.sleep(args.warmup)
        pid = agent.process.pid  # type: ignore[union-attr]
        with counter.lock:
            counter.recording = True
        threads0 = thread_cpu(pid)
        n0, cpu0, t0 = counter.snapshot(), cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        n1, cpu1, t1 = counter.snapshot(), cpu_seconds(pid), time.monotonic()
        threads1 = thread_cpu(pid)
        with counter.lock:
            counter.recording = False
            delays = sorted(counter.delays_ms)
        rss = psutil.Process(pid).memory_info().rss / 2**20
        agent.stop()
        metrics = agent.final_metrics()
    except BaseException:
        print(agent.log()[-3000:], file=sys.stderr)
        raise
    finally:
        agent.ensure_stopped()
        counter.stop()
    elapsed = t1 - t0
    dp_s = (n1 - n0) / elapsed
    main_thread = (threads1.get(pid, 0.0) - threads0.get(pid, 0.0)) / elapsed
    cpu = (cpu1 - cpu0) / elapsed
    return {
        "event_loop": event_loop,
        "dp_s": dp_s,
        "cpu_share": cpu,
        "us_per_dp": cpu / dp_s * 1e6 if dp_s else float("nan"),
        "rss_mb": rss,
        "main_thread_share": main_thread,
        "overruns": metrics.get("overruns", -1),
        "skipped": metrics.get("readings_skipped", -1),
        "readings_per_message": metrics.get("published", 0)
        / max(1, metrics.get("publish_batches", 0)),
        "latency_ms_p50": statistics.median(delays) if delays else float("nan"),
        "latency_ms_p99": delays[int(len(delays) * 0.99)] if delays else float("nan"),
    }


def run_bare(sim: int, args: argparse.Namespace, raw: bool = False) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.modbus_chain",
            "--raw" if raw else "--bare",
            str(sim),
            "--transactions",
            str(args.transactions),
            "--devices",
            str(args.devices),
            "--channels",
            str(args.channels),
            "--interval",
            str(args.interval),
            "--seconds",
            str(min(args.seconds, 15.0)),
        ],
        capture_output=True,
        check=True,
        cwd=REPO,
        env=child_env(),
        timeout=args.seconds + 120,
    )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="etalon-modbus-chain-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "mq")
        broker.start()
        sim_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.modbus_chain",
                "--serve",
                "--devices",
                str(args.devices),
                "--channels",
                str(args.channels),
            ],
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=child_env(),
        )
        try:
            assert sim_proc.stdout is not None
            sim = int(sim_proc.stdout.readline())
            sim_cpu0 = cpu_seconds(sim_proc.pid)
            agent = run_agent(tmp, broker, sim, args)
            agent["sim_cpu_share"] = (cpu_seconds(sim_proc.pid) - sim_cpu0) / (
                args.seconds + args.warmup
            )
            base = run_bare(sim, args)
            raw = run_bare(sim, args, raw=True)
        finally:
            sim_proc.terminate()
            sim_proc.wait(10)
            broker.stop()
    expected = args.devices * args.channels / args.interval
    return {
        # Figures of a shared machine: when, and how busy it was (1-minute load average).
        "measured": started,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "config": f"{args.devices} x {args.channels} float32 @ {args.interval * 1000:g} ms",
        "expected_dp_s": expected,
        "agent": agent,
        "transactions": args.transactions,
        "bare": base,
        "raw": raw,
        "ratio_bare_over_agent_cpu": base["us_per_dp"] / agent["us_per_dp"],
        "ratio_raw_over_agent_cpu": raw["us_per_dp"] / agent["us_per_dp"],
    }


def print_poll_path(args: argparse.Namespace) -> None:
    """Run :func:`poll_path` on the agent's event loop against a simulator of its own."""
    from app.process import loop_factory

    sim_proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.modbus_chain", "--serve", "--devices",
         str(args.devices), "--channels", str(args.channels)],
        stdout=subprocess.PIPE, cwd=REPO, env=child_env(),
    )  # fmt: skip
    try:
        assert sim_proc.stdout is not None
        port = int(sim_proc.stdout.readline())
        load = os.getloadavg()[0]
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            figures = runner.run(poll_path(port, args))
    finally:
        sim_proc.terminate()
        sim_proc.wait(10)
    print(
        f"polling path, {args.devices} x {args.channels} float32 @ {args.interval * 1000:g} ms "
        f"(max_transactions {args.transactions}), load {load:.1f}–{os.getloadavg()[0]:.1f}: "
        f"{figures['polls_s']:.0f} polls/s, event loop {figures['us_per_poll']:.1f} µs per poll "
        f"= {figures['us_per_dp']:.2f} µs/datapoint, {figures['overruns']} overruns"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--transactions", type=int, default=16, help="requests outstanding at once (see the doc)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--poll-path",
        action="store_true",
        help="measure only the polling path, in this process (see poll_path)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.devices, args.channels))
        return
    if args.bare:
        asyncio.run(bare(args.bare, args.devices, args.channels, args.interval, args.seconds))
        return
    if args.raw:
        asyncio.run(
            bare_raw(
                args.raw,
                args.devices,
                args.channels,
                args.interval,
                args.seconds,
                args.transactions,
            )
        )
        return
    if args.poll_path:
        print_poll_path(args)
        return
    result = measure(args)
    a, b, r = result["agent"], result["bare"], result["raw"]
    print(
        f"modbus chain, {result['config']} on one TCP endpoint "
        f"(max_transactions {args.transactions}), {args.seconds:g} s steady; "
        f"{result['measured']}, load average {result['load_average'][0]}–"
        f"{result['load_average'][1]}"
    )
    print(
        f"agent:  {a['dp_s']:8,.0f} datapoints/s at the broker of {result['expected_dp_s']:,.0f}; "
        f"{a['cpu_share'] * 100:5.1f} % of a core = {a['us_per_dp']:5.1f} µs/datapoint; "
        f"{a['overruns']} overruns, {a['skipped']} readings skipped; {a['rss_mb']:.0f} MB; "
        f"on {a['event_loop']}"
    )
    print(
        f"        of which the event loop's thread {a['main_thread_share'] * 100:.1f} % of a core"
    )
    print(
        f"        reading→broker delay median {a['latency_ms_p50']:.0f} ms, "
        f"p99 {a['latency_ms_p99']:.0f} ms, {a['readings_per_message']:.0f} readings/message; "
        f"simulator {a['sim_cpu_share'] * 100:.0f} % of a core"
    )
    print(
        f"bare pymodbus loop, same requests: {b['dp_s']:8,.0f} datapoints/s, "
        f"{b['cpu_share'] * 100:5.1f} % of a core = {b['us_per_dp']:5.1f} µs/datapoint, "
        f"{b['overruns']} overruns"
    )
    print(
        f"raw MBAP loop, same requests:      {r['dp_s']:8,.0f} datapoints/s, "
        f"{r['cpu_share'] * 100:5.1f} % of a core = {r['us_per_dp']:5.1f} µs/datapoint, "
        f"{r['overruns']} overruns"
    )
    print(
        f"ratio bare/agent CPU per datapoint: pymodbus {result['ratio_bare_over_agent_cpu']:.2f}, "
        f"raw {result['ratio_raw_over_agent_cpu']:.2f} "
        "(1.0 = the agent costs what the bare loop costs)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
