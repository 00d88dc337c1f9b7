"""OPC UA values per second with 1,000 monitored items: the driver against bare asyncua.

The simulated server (1,000 Bulk/ItemNNNN variables, all rewritten every --update-s) runs in
its own process. Two cases, each alternating bare and driver rounds on the same server:

- polling: batched reads of the 1,000 nodes (bare: ``client.read_values``; driver: ``read``);
- subscriptions: 1,000 monitored items (bare: asyncua's subscription iterator; driver:
  ``stream()`` — readings built, stamped, de-duplicated).

The ratio is the median of the per-round ratios; the aim is ≥ 80 %. Usage:

    PYTHONPATH=src python benchmarks/bench_opcua.py [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
from typing import Any

from asyncua import Client
from asyncua.common.subscription import DataChangeEvent

from core.clock import SystemClock
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver

ITEMS = 1000


def _serve(update_s: float, endpoints: multiprocessing.Queue[str], stop: Any) -> None:
    from drivers.sim.opcua_server import OpcUaSimConfig, OpcUaSimulator

    async def main() -> None:
        config = OpcUaSimConfig(
            bulk_items=ITEMS, bulk_update_interval_s=update_s, update_interval_s=update_s
        )
        async with OpcUaSimulator(config) as simulator:
            endpoints.put(simulator.endpoint)
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def _config(endpoint: str, mode: str) -> OpcUaInstrument:
    channels = [
        {
            "name": f"item{i:04d}",
            "node": f"ns=2;s=Bulk.Item{i:04d}",
            "mode": mode,
            "interval_s": 0.05,
        }
        for i in range(ITEMS)
    ]
    return OpcUaInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "opcua",
            "endpoint": endpoint,
            "timeout_s": 10,
            "connect_timeout_s": 30,
            "channels": channels,
        }
    )


async def _timed(seconds: float, body: Any) -> float:
    """Values/s of a coroutine function that counts into a list, run for ``seconds``."""
    counter = [0]
    task = asyncio.create_task(body(counter))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(seconds)
    elapsed = loop.time() - start
    seen = counter[0]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return seen / elapsed


async def polling(endpoint: str, rounds: int, seconds: float) -> tuple[float, float, float]:
    """Batched reads of 1,000 nodes: bare asyncua against the driver."""
    client = Client(endpoint, timeout=10)
    await client.connect()
    nodes = [client.get_node(f"ns=2;s=Bulk.Item{i:04d}") for i in range(ITEMS)]
    config = _config(endpoint, "poll")
    driver = OpcUaDriver(config, SystemClock())
    await driver.connect()
    channels = list(config.channels)

    async def bare(counter: list[int]) -> None:
        while True:
            counter[0] += len(await client.read_values(nodes))

    async def driven(counter: list[int]) -> None:
        while True:
            counter[0] += len(await driver.read(channels))

    bare_rates, driver_rates = [], []
    try:
        for _ in range(rounds):
            bare_rates.append(await _timed(seconds, bare))
            driver_rates.append(await _timed(seconds, driven))
    finally:
        await driver.close()
        await client.disconnect()
    return _summary(bare_rates, driver_rates)


async def subscriptions(endpoint: str, rounds: int, seconds: float) -> tuple[float, float, float]:
    """1,000 monitored items: bare asyncua's iterator against the driver's stream."""
    bare_rates, driver_rates = [], []
    for _ in range(rounds):
        client = Client(endpoint, timeout=10)
        await client.connect()
        subscription = await client.create_subscription(50, None, queue_maxsize=100_000)
        nodes = [client.get_node(f"ns=2;s=Bulk.Item{i:04d}") for i in range(ITEMS)]
        await subscription.subscribe_data_change(nodes, sampling_interval=50)

        async def bare(counter: list[int], subscription: Any = subscription) -> None:
            async for event in subscription:
                if isinstance(event, DataChangeEvent):
                    counter[0] += 1

        await asyncio.sleep(0.5)  # past the initial values
        bare_rates.append(await _timed(seconds, bare))
        await client.disconnect()

        driver = OpcUaDriver(_config(endpoint, "subscribe"), SystemClock())
        await driver.connect()

        async def driven(counter: list[int], driver: OpcUaDriver = driver) -> None:
            async for readings in driver.stream():
                counter[0] += len(readings)

        await asyncio.sleep(0.5)
        driver_rates.append(await _timed(seconds, driven))
        await driver.close()
    return _summary(bare_rates, driver_rates)


def _summary(bare: list[float], driven: list[float]) -> tuple[float, float, float]:
    ratios = [d / b for d, b in zip(driven, bare, strict=True)]
    return statistics.median(bare), statistics.median(driven), statistics.median(ratios)


def main() -> None:
    """Run both cases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--update-s", type=float, default=0.05, help="server update period")
    args = parser.parse_args()
    endpoints: multiprocessing.Queue[str] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(
        target=_serve, args=(args.update_s, endpoints, stop), daemon=True
    )
    server.start()
    try:
        endpoint = endpoints.get(timeout=120)
        for label, case in (("polling, batched reads", polling), ("subscriptions", subscriptions)):
            bare, driven, ratio = asyncio.run(case(endpoint, args.rounds, args.seconds))
            print(
                f"{label:<24} {ITEMS} items  bare asyncua {bare:9,.0f} values/s  "
                f"driver {driven:9,.0f} values/s  {ratio:6.1%}"
            )
    finally:
        stop.set()
        server.join(10)


if __name__ == "__main__":
    main()
