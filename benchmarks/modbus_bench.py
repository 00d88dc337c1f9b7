"""Modbus driver benchmarks against the simulator on loopback, each with its raw baseline.

The simulator runs in its own process (as a device is its own machine), so what is measured is
the client side: the same server answers the driver and the bare client.

1. Throughput: registers/s read through the driver (planning, decoding, Reading objects,
   shared-link locking) vs a bare pymodbus client issuing the same minimal requests to the same
   server, in the same run, interleaved. Aim: the driver keeps ≥ 80 % of the bare rate.
2. CPU per datapoint on the agent benchmark's requests (``benchmarks.modbus_chain``: 50
   devices × 20 float32 on one TCP endpoint, one 40-register request per device), one request
   at a time, back to back: the driver as the agent reads it (``read_rows``, 50 drivers sharing
   one link) against a bare pymodbus client and a raw MBAP loop (an asyncio protocol writing
   frames packed with ``struct``) on the same requests, same simulator process, rounds
   alternated. Process CPU (``time.process_time``), so the wait for the simulator is not
   counted. Aim (issue 17): bare pymodbus CPU / driver CPU ≥ 0.90.
3. Coalescing: requests per poll for a scattered map of 1,000 registers, for several gap
   settings, against the naïve one request per channel; and the time of one poll both ways.

Run:  PYTHONPATH=src python benchmarks/modbus_bench.py [--seconds 3] [--only cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import struct
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
async def server_process(
    addresses: list[int], kind: str = "uint16", devices: int = 1
) -> AsyncIterator[int]:
    """A simulator serving these holding registers (of device ids 1..``devices``) in a child
    process; yields its port."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        json.dumps([kind, addresses, devices]),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        yield int(await child.stdout.readline())
    finally:
        child.terminate()
        await child.wait()


async def serve(kind: str, addresses: list[int], devices: int = 1) -> None:
    register_map = RegisterMap(
        devices=[
            MapDevice(
                device_id=device,
                order="CDAB" if devices == 1 else "ABCD",
                points=[
                    MapPoint(name=f"r{a}", address=a, type=kind, value=a + 100 * (device - 1))  # type: ignore[arg-type]
                    for a in addresses
                ],
            )
            for device in range(1, devices + 1)
        ]
    )
    async with ModbusSimServer(register_map) as server:
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


class RawMbap(asyncio.Protocol):
    """The raw loop's connection: one request at a time, its reply's PDU to a future."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.reply: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if len(buffer) >= 6:
            end = 6 + int.from_bytes(buffer[4:6], "big")
            if len(buffer) >= end and self.reply is not None:
                self.reply.set_result(bytes(buffer[7:end]))
                del buffer[:end]


async def cpu_per_datapoint(seconds: float, rounds: int, devices: int, channels: int) -> None:
    """See the module doc (2.)."""
    addresses = list(range(0, 2 * channels, 2))
    layout = struct.Struct(f">{channels}f")
    loop = asyncio.get_running_loop()
    async with server_process(addresses, "float32", devices) as port:
        drivers = []
        for device in range(1, devices + 1):
            config = instrument(
                port, addresses, "float32", name=f"dev{device}", device_id=device, order="ABCD"
            )
            driver = ModbusDriver(config, SystemClock())
            await driver.connect()
            drivers.append((driver, config.channels))
        client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
        await client.connect()
        _transport, raw = await loop.create_connection(RawMbap, "127.0.0.1", port)
        frame = struct.Struct(">HHHBBHH")

        async def through_driver() -> int:
            values = 0
            for driver, due in drivers:
                stamps, _values, reasons = await driver.read_rows(due)
                values += len(stamps)
            assert reasons.count(None) == len(reasons)
            return values

        async def through_pymodbus() -> int:
            values = 0
            for device in range(1, devices + 1):
                response = await client.read_holding_registers(
                    0, count=2 * channels, device_id=device
                )
                data = struct.pack(f">{2 * channels}H", *response.registers)
                values += len(layout.unpack(data))
            return values

        async def through_raw() -> int:
            values = 0
            assert raw.transport is not None
            for device in range(1, devices + 1):
                raw.reply = loop.create_future()
                raw.transport.write(frame.pack(device, 0, 6, device, 3, 0, 2 * channels))
                pdu = await raw.reply  # no timeout: the floor, not a client
                values += len(layout.unpack_from(pdu, 2))
            return values

        sides = {"driver": through_driver, "pymodbus": through_pymodbus, "raw": through_raw}
        figures: dict[str, list[float]] = {name: [] for name in sides}
        for round_ in range(rounds + 1):  # the first round warms up, not counted
            order = list(sides) if round_ % 2 else list(reversed(sides))
            for name in order:
                values = 0
                cpu0, started = time.process_time(), time.perf_counter()
                while time.perf_counter() - started < seconds:
                    values += await sides[name]()
                if round_:
                    figures[name].append((time.process_time() - cpu0) / values * 1e6)
        client.close()
        for driver, _due in drivers:
            await driver.close()
    median = {name: statistics.median(values) for name, values in figures.items()}
    ratios = [b / d for b, d in zip(figures["pymodbus"], figures["driver"], strict=True)]
    raw_ratios = [r / d for r, d in zip(figures["raw"], figures["driver"], strict=True)]
    print(
        f"## CPU per datapoint, {devices} devices × {channels} float32 on one TCP endpoint, one "
        f"{2 * channels}-register request per device, one at a time ({rounds} rounds of "
        f"{seconds:g} s each, alternated)"
    )
    print(f"raw MBAP loop        : {median['raw']:6.2f} µs/datapoint")
    print(f"bare pymodbus client : {median['pymodbus']:6.2f} µs/datapoint")
    print(f"etalon driver        : {median['driver']:6.2f} µs/datapoint  (read_rows)")
    print(
        f"pymodbus / driver    : {statistics.median(ratios):6.2f}  (rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")  aim ≥ 0.90"
    )
    print(f"raw / driver         : {statistics.median(raw_ratios):6.2f}")


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
    parser.add_argument("--devices", type=int, default=50, help="of the CPU measurement")
    parser.add_argument("--channels", type=int, default=20, help="of the CPU measurement")
    parser.add_argument("--only", choices=("throughput", "cpu", "coalescing"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(*json.loads(args.serve))
        return
    if args.only in (None, "throughput"):
        await throughput(args.seconds, args.rounds, "uint16")
        print()
        await throughput(args.seconds, args.rounds, "float32")
        print()
    if args.only in (None, "cpu"):
        await cpu_per_datapoint(args.seconds, args.rounds, args.devices, args.channels)
    if args.only in (None, "coalescing"):
        await coalescing(args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
