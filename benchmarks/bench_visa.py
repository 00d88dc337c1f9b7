"""SCPI queries per second: the VISA driver against bare pyvisa, same simulator, same run.

The simulator runs in its own process (so it does not share the measured process's GIL). Both
sides open the same kind of session — pyvisa-py, ``TCPIP::127.0.0.1::PORT::SOCKET``, ``\n``
terminations — to the same simulated instrument and send the same queries: the bare side calls
``instrument.query`` in a loop on the calling thread; the driver side awaits ``VisaDriver.read``
of the case's channels (one hop to the session's worker thread per read, as the agent does each
tick). Usage:

    PYTHONPATH=src python benchmarks/bench_visa.py [--rounds 15] [--seconds 0.3]

Bare and driver runs alternate in short rounds (which goes first alternates too) and each ratio
is the median of the rounds', so a busy machine (other processes on the same cores) slows both
sides alike. Prints per case both rates, the throughput ratio driver/bare with the spread of the
middle half of the rounds, and the CPU time per query of each side (the whole process: event loop
and worker thread) with their ratio bare/driver. The aim is ≥ 90 %. The load average is printed
with the figures: quote it with them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
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


Rate = tuple[float, float]
"""Queries per second, and CPU seconds per query (the whole process)."""


def _bare(instrument: Any, queries: list[str], seconds: float) -> Rate:
    """A plain pyvisa loop sending the same queries."""
    count = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for query in queries:
            instrument.query(query)
        count += len(queries)
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count


async def _driven(
    driver: VisaDriver, channels: list[VisaChannel], seconds: float, queries_per_read: int
) -> Rate:
    """VisaDriver.read of all the channels, read after read."""
    count = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        readings = await driver.read(channels)
        assert readings[0].value is not None, readings[0].reason
        count += queries_per_read
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count


@dataclass
class Result:
    """One case's rounds."""

    bare: list[Rate]
    driver: list[Rate]

    def ratios(self) -> list[float]:
        """Driver/bare throughput of each round."""
        return [d[0] / b[0] for d, b in zip(self.driver, self.bare, strict=True)]

    def cpu_ratio(self) -> float:
        """Bare/driver CPU per query, medians of the rounds."""
        return statistics.median(b[1] for b in self.bare) / statistics.median(
            d[1] for d in self.driver
        )


async def _compare(
    config: VisaInstrument, queries: list[str], rounds: int, seconds: float
) -> Result:
    """Alternate bare and driver rounds on one simulator."""
    manager = pyvisa.ResourceManager("@py")
    bare_instrument = manager.open_resource(
        config.resource, read_termination="\n", write_termination="\n"
    )
    driver = VisaDriver(config, SystemClock())
    await driver.connect()
    channels: list[VisaChannel] = list(config.channels)
    result = Result([], [])
    try:
        for round_ in range(rounds):
            if round_ % 2:
                result.driver.append(await _driven(driver, channels, seconds, len(queries)))
                result.bare.append(_bare(bare_instrument, queries, seconds))
            else:
                result.bare.append(_bare(bare_instrument, queries, seconds))
                result.driver.append(await _driven(driver, channels, seconds, len(queries)))
    finally:
        await driver.close()
        bare_instrument.close()
    return result


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
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one round")
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
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    width = max(len(label) for label, *_ in cases)
    for label, profile, channels, check, queries in cases:
        server = multiprocessing.Process(target=_serve, args=(profile, ports, stop), daemon=True)
        stop.clear()
        server.start()
        port = ports.get(timeout=30)
        try:
            config = _config(port, profile, channels, check)
            result = asyncio.run(_compare(config, queries, args.rounds, args.seconds))
        finally:
            stop.set()
            server.join(10)
        q1, median, q3 = statistics.quantiles(result.ratios(), n=4)
        bare_rate = statistics.median(b[0] for b in result.bare)
        driver_rate = statistics.median(d[0] for d in result.driver)
        bare_cpu = statistics.median(b[1] for b in result.bare) * 1e6
        driver_cpu = statistics.median(d[1] for d in result.driver) * 1e6
        print(
            f"{label:<{width}}  bare pyvisa {bare_rate:7,.0f} q/s  driver {driver_rate:7,.0f} q/s"
            f"  {median:6.1%} ({q1:.0%}–{q3:.0%})  CPU/query bare {bare_cpu:5.0f} µs"
            f"  driver {driver_cpu:5.0f} µs  {result.cpu_ratio():6.1%}",
            flush=True,
        )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
