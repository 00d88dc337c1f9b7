"""SCPI queries per second: the VISA driver against bare pyvisa, same simulator, same run.

The simulator runs in its own process (so it does not share the measured process's GIL);
both sides talk to it over pyvisa-py on a loopback TCP socket. Usage:

    PYTHONPATH=src python benchmarks/bench_visa.py [--seconds 3]

Bare and driver runs alternate in short rounds and the ratio is the median of the rounds', so a
busy machine (other processes on the same cores) slows both sides alike. Prints one line per
case with both rates and the ratio driver/bare; the aim is ≥ 90 %.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import pyvisa

from core.clock import SystemClock
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.driver import VisaDriver


def _serve(personality: str, ports: multiprocessing.Queue[int], stop: Any) -> None:
    from drivers.sim.scpi import ScpiSimConfig, ScpiSimulator

    async def main() -> None:
        async with ScpiSimulator(ScpiSimConfig(personality=personality)) as simulator:
            ports.put(simulator.port)
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def _bare(instrument: Any, queries: list[str], seconds: float) -> float:
    """Queries/s of a plain pyvisa loop sending the same queries."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for query in queries:
            instrument.query(query)
        count += len(queries)
    return count / (time.perf_counter() - start)


async def _driven(
    driver: VisaDriver, channels: list[VisaChannel], seconds: float, queries_per_read: int
) -> float:
    """Queries/s through VisaDriver.read (one worker-thread hop per read of all channels)."""
    count = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds
    while loop.time() < deadline:
        readings = await driver.read(channels)
        assert readings[0].value is not None, readings[0].reason
        count += queries_per_read
    return count / (loop.time() - start)


async def _compare(
    config: VisaInstrument, queries: list[str], rounds: int, seconds: float
) -> tuple[float, float, float]:
    """Median bare rate, median driver rate, median of the per-round ratios."""
    manager = pyvisa.ResourceManager("@py")
    bare_instrument = manager.open_resource(
        config.resource, read_termination="\n", write_termination="\n"
    )
    driver = VisaDriver(config, SystemClock())
    await driver.connect()
    channels: list[VisaChannel] = list(config.channels)
    bare_rates, driver_rates = [], []
    try:
        for _ in range(rounds):
            bare_rates.append(_bare(bare_instrument, queries, seconds))
            driver_rates.append(await _driven(driver, channels, seconds, len(queries)))
    finally:
        await driver.close()
        bare_instrument.close()
    ratios = [d / b for d, b in zip(driver_rates, bare_rates, strict=True)]
    return statistics.median(bare_rates), statistics.median(driver_rates), statistics.median(ratios)


def _config(port: int, profile: str, channels: list[dict[str, Any]], check: str) -> VisaInstrument:
    return VisaInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "visa",
            "resource": f"TCPIP::127.0.0.1::{port}::SOCKET",
            "backend": "@py",
            "profile": profile,
            "errors": {"check": check, "interval_s": 3600},
            "channels": channels,
        }
    )


def main() -> None:
    """Run the cases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round")
    args = parser.parse_args()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    cases: list[tuple[str, str, list[dict[str, Any]], str, list[str]]] = [
        (
            "1 query/read (DMM READ?)",
            "longscale-dmm",
            [{"name": "v", "measurement": "voltage_dc"}],
            "periodic",
            ["READ?"],
        ),
        (
            "1 query/read + SYST:ERR? every read",
            "longscale-dmm",
            [{"name": "v", "measurement": "voltage_dc"}],
            "after_each_read",
            ["READ?", "SYST:ERR?"],
        ),
        (
            "4 queries/read (thermometer)",
            "thermometer-readout",
            [
                {"name": "t1", "measurement": "temperature_ch1"},
                {"name": "t2", "measurement": "temperature_ch2"},
                {"name": "r1", "measurement": "resistance_ch1"},
                {"name": "r2", "measurement": "resistance_ch2"},
            ],
            "periodic",
            ["MEAS:TEMP? (@1)", "MEAS:TEMP? (@2)", "MEAS:FRES? (@1)", "MEAS:FRES? (@2)"],
        ),
    ]
    results: list[tuple[str, float, float, float]] = []
    for label, profile, channels, check, queries in cases:
        server = multiprocessing.Process(target=_serve, args=(profile, ports, stop), daemon=True)
        stop.clear()
        server.start()
        port = ports.get(timeout=30)
        try:
            config = _config(port, profile, channels, check)
            bare, driven, ratio = asyncio.run(_compare(config, queries, args.rounds, args.seconds))
        finally:
            stop.set()
            server.join(10)
        results.append((label, bare, driven, ratio))
    width = max(len(label) for label, *_ in results)
    show: Callable[[float], str] = lambda rate: f"{rate:8,.0f} q/s"  # noqa: E731
    for label, bare, driven, ratio in results:
        print(f"{label:<{width}}  bare pyvisa {show(bare)}  driver {show(driven)}  {ratio:6.1%}")


if __name__ == "__main__":
    main()
