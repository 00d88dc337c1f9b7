"""Modbus driver benchmarks against the simulator on loopback, each with its raw baseline.

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
import random
import statistics
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from drivers.clock import SystemClock
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.modbus.plan import Limits, Span, plan
from drivers.sim.modbus_server import MapDevice, MapPoint, ModbusSimServer, RegisterMap


def register_map(addresses: list[int]) -> RegisterMap:
    points = [MapPoint(name=f"r{a}", address=a, value=a % 65536) for a in addresses]
    return RegisterMap(devices=[MapDevice(device_id=1, points=points)])


def instrument(port: int, addresses: list[int], **extra: Any) -> ModbusInstrument:
    return ModbusInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "modbus",
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
            "channels": [{"name": f"r{a}", "address": a, "unit": "1"} for a in addresses],
            **extra,
        }
    )


async def driver_rate(config: ModbusInstrument, seconds: float) -> float:
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
    return polls * len(channels) / elapsed


async def bare_rate(port: int, requests: list[tuple[int, int]], seconds: float) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    await client.connect()
    registers_per_poll = sum(count for _, count in requests)
    polls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for start, count in requests:
            response = await client.read_holding_registers(start, count=count, device_id=1)
            assert len(response.registers) == count
        polls += 1
    elapsed = time.perf_counter() - started
    client.close()
    return polls * registers_per_poll / elapsed


async def throughput(seconds: float, rounds: int) -> None:
    addresses = list(range(1000))
    async with ModbusSimServer(register_map(addresses)) as server:
        config = instrument(server.port, addresses)
        spans = [Span("holding", a, a + 1) for a in addresses]
        requests = [(r.span.start, r.span.count) for r in plan(spans, Limits())]
        ratios, driver_rates, bare_rates = [], [], []
        for _ in range(rounds):
            bare = await bare_rate(server.port, requests, seconds)
            ours = await driver_rate(config, seconds)
            bare_rates.append(bare)
            driver_rates.append(ours)
            ratios.append(ours / bare)
    print("## Throughput, 1,000 contiguous holding registers (8 requests of ≤125 per poll)")
    print(f"bare pymodbus client : {statistics.median(bare_rates):>10,.0f} registers/s")
    print(f"etalon driver        : {statistics.median(driver_rates):>10,.0f} registers/s")
    print(f"driver / bare        : {statistics.median(ratios):>10.1%}  (rounds: "
          + ", ".join(f"{r:.0%}" for r in ratios) + ")")


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
    async with ModbusSimServer(register_map(addresses)) as server:
        coalesced = instrument(server.port, addresses, max_gap_registers=8)
        naive = instrument(server.port, addresses, max_gap_registers=0, max_registers_per_request=1)
        for name, config in (("coalesced, gap 8", coalesced), ("naive", naive)):
            rate = await driver_rate(config, seconds)
            print(f"poll time, {name:<17}: {1000 / rate * 1000:8.2f} ms  ({rate:,.0f} registers/s)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    await throughput(args.seconds, args.rounds)
    await coalescing(args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
