"""Modbus driver benchmarks against the simulator on loopback, each with its raw baseline.

The simulator runs in its own process (as a device is its own machine), so what is measured is
the client side: the same server answers the driver and the bare client.

1. Throughput: registers/s read through the driver (planning, decoding, Reading objects,
   shared-link locking) vs a bare pymodbus client issuing the same minimal requests to the same
   server, in the same run, interleaved. Aim: the driver keeps ≥ 80 % of the bare rate.
2. Coalescing: requests per poll for a scattered map of 1,000 registers, for several gap
   settings, against the naïve one request per channel; and the time of one poll both ways.

Run:  PYTHONPATH=src python benchmarks/modbus_bench.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from core.clock import SystemClock
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.plan import Limits, Span, plan
from drivers.sim.modbus_server import MapDevice, MapPoint, ModbusSimServer, RegisterMap


def register_map(addresses: list[int], kind: str = "uint16") -> RegisterMap:
    points = [
        MapPoint(name=f"r{a}", address=a, type=kind, value=a % 65536)  # type: ignore[arg-type]
        for a in addresses
    ]
    return RegisterMap(devices=[MapDevice(device_id=1, order="CDAB", points=points)])


def instrument(
    port: int, addresses: list[int], kind: str = "uint16", **extra: Any
) -> ModbusInstrument:
    channels = [{"name": f"r{a}", "address": a, "type": kind, "unit": "1"} for a in addresses]
    return ModbusInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "modbus",
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
            "order": "CDAB",
            "channels": channels,
            **extra,
        }
    )


@contextlib.asynccontextmanager
async def server_process(addresses: list[int], kind: str = "uint16") -> AsyncIterator[int]:
    """A simulator serving these holding registers in a child process; yields its port."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        json.dumps([kind, addresses]),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        yield int(await child.stdout.readline())
    finally:
        child.terminate()
        await child.wait()


async def serve(kind: str, addresses: list[int]) -> None:
    async with ModbusSimServer(register_map(addresses, kind)) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()


async def driver_rate(config: ModbusInstrument, seconds: float) -> float:
    """Registers per second read through the driver, alone."""
    driver = ModbusDriver(config, SystemClock())
    await driver.connect()
    channels = config.channels
    polls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        readings = await driver.read(channels)
        polls += 1
    elapsed = time.perf_counter() - started
    await driver.close()
    assert all(r.value is not None for r in readings)
    return sum(c.width for c in channels) * polls / elapsed


async def throughput(seconds: float, rounds: int, kind: str) -> None:
    """Driver and bare client polls alternate one by one, so a load change on the machine hits
    both alike; each side's time is summed separately."""
    width = 2 if kind == "float32" else 1
    addresses = list(range(0, 1000, width))
    async with server_process(addresses, kind) as port:
        config = instrument(port, addresses, kind)
        spans = [Span("holding", a, a + width) for a in addresses]
        requests = [(r.span.start, r.span.count) for r in plan(spans, Limits())]
        driver = ModbusDriver(config, SystemClock())
        await driver.connect()
        client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
        await client.connect()
        link = driver._link  # the driver's transport path alone: lock, timeout, error mapping
        assert link is not None
        ratios, link_ratios, driver_rates, bare_rates = [], [], [], []
        for _ in range(rounds):
            driver_time = bare_time = link_time = 0.0
            polls = 0
            round_started = time.perf_counter()
            while time.perf_counter() - round_started < seconds:
                t0 = time.perf_counter()
                readings = await driver.read(config.channels)
                t1 = time.perf_counter()
                for start, count in requests:
                    response = await client.read_holding_registers(start, count=count, device_id=1)
                    assert len(response.registers) == count
                t2 = time.perf_counter()
                for start, count in requests:
                    await link.read(3, start, count, 1, 5.0, "bench")
                t3 = time.perf_counter()
                driver_time += t1 - t0
                bare_time += t2 - t1
                link_time += t3 - t2
                polls += 1
            assert all(r.value is not None for r in readings)
            driver_rates.append(polls * 1000 / driver_time)
            bare_rates.append(polls * 1000 / bare_time)
            ratios.append(bare_time / driver_time)
            link_ratios.append(bare_time / link_time)
        client.close()
        await driver.close()
    print(
        f"## Throughput, 1,000 contiguous holding registers as {len(addresses)} {kind} "
        f"channels ({len(requests)} requests per poll)"
    )
    print(f"bare pymodbus client : {statistics.median(bare_rates):>10,.0f} registers/s")
    print(f"etalon driver        : {statistics.median(driver_rates):>10,.0f} registers/s")
    print(
        f"driver / bare        : {statistics.median(ratios):>10.1%}  (rounds: "
        + ", ".join(f"{r:.0%}" for r in ratios)
        + ")"
    )
    print(
        f"transport path / bare: {statistics.median(link_ratios):>10.1%}  (the driver's link "
        "alone: same requests, no decoding, no Reading objects)"
    )


async def coalescing(seconds: float) -> None:
    rng = random.Random(1)
    addresses = sorted(rng.sample(range(10_000), 1000))
    spans = [Span("holding", a, a + 1) for a in addresses]
    print()
    print("## Coalescing, 1,000 registers scattered over addresses 0-9,999 (seed 1)")
    print("naive (one request per channel): 1000 requests/poll")
    for gap in (0, 4, 8, 16, 32, 64, 124):
        count = len(plan(spans, Limits(gap_registers=gap)))
        print(f"max_gap_registers={gap:<3} : {count:>4} requests/poll")
    async with server_process(addresses) as port:
        coalesced = instrument(port, addresses, max_gap_registers=8)
        naive = instrument(port, addresses, max_gap_registers=0, max_registers_per_request=1)
        for name, config in (("coalesced, gap 8", coalesced), ("naive", naive)):
            rate = await driver_rate(config, seconds)
            print(f"poll time, {name:<17}: {1000 / rate * 1000:8.2f} ms  ({rate:,.0f} registers/s)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(*json.loads(args.serve))
        return
    await throughput(args.seconds, args.rounds, "uint16")
    print()
    await throughput(args.seconds, args.rounds, "float32")
    await coalescing(args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
