"""SCPI queries per second: the VISA driver, both ways, against bare pyvisa, same simulator, same
run.

The simulator runs in its own process (so it does not share the measured process's GIL). Every
side talks to the same simulated instrument, over each transport in turn — a raw socket
(``TCPIP::127.0.0.1::PORT::SOCKET``), HiSLIP (``TCPIP::127.0.0.1::hislip0,PORT::INSTR``),
VXI-11 (``TCPIP::127.0.0.1::INSTR``, the simulator's portmapper on port 111 when that is free, as
bare pyvisa-py asks there; else on another port, given to pyvisa-py by patching its constant
``pyvisa_py.protocols.rpc.PMAP_PORT`` in this process, which the output says) and a serial port
(the simulator's pseudo-terminal, ``ASRL/dev/pts/N::INSTR``, 9600 Bd 8N1 as pyvisa sets it; a pty
moves bytes at memory speed whatever the baud rate) — with ``\n`` terminations, no query delay,
ASCII, and sends the same queries:

- bare: pyvisa-py, ``instrument.query`` in a loop on the calling thread;
- driver: ``VisaDriver.read`` of the case's channels as the agent awaits it each tick, the
  resource on etalon's own asyncio link (``socket_io: auto``; no thread);
- driver, pyvisa: the same with ``socket_io: pyvisa`` — pyvisa-py on the session's worker thread,
  one hop per read (the way every other resource kind goes);
- bare link: etalon's asyncio link alone (``SocketLink.query``, ``HislipLink.query``,
  ``Vxi11Link.query`` or ``SerialLink.query`` in a loop), so the asyncio driver is also shown
  against its own transport: what the driver costs, apart from the transport being cheaper than
  pyvisa-py's.

Usage:

    PYTHONPATH=src python benchmarks/bench_visa.py [--rounds 60] [--seconds 0.075]
        [--reply-delay-ms 0] [--transports socket hislip vxi11 serial]

``--reply-delay-ms`` makes the simulated instrument take that long to answer each query (a real
instrument's measuring time; by default it answers at once, the hardest case for the driver's
own costs).

On a serial port only one side may hold the port at a time (two readers of one tty would take
each other's bytes, and the asyncio side's reader is watched by the event loop even while another
side runs): there each side opens the port at the start of its round and closes it at the end,
the opening (and the driver's connect: ``*IDN?``, the error queue, the init sequence) outside the
timed round.

The sides alternate in short rounds (their order rotates from round to round), so a busy
machine (other processes on the same cores) slows them alike; on a shared 2-core machine the
load changes within a second, so the rounds are short (60 × 0.075 s each by default). Prints
per case, transport and driver way (against bare pyvisa), and for the asyncio driver against its
bare link:

- both rates and the throughput ratio driver/bare over all the rounds (queries over wall time),
  with the middle half of the rounds' own ratios — the aim (≥ 90 %) is judged by this one;
- the ratio of the two sides' median time per exchange (a read, or the same queries sent bare):
  the round trips without the stalls other processes add at random;
- the CPU time per query of each side (the whole process: event loop and worker thread) and
  their ratio bare/driver;
- the waits per query of each side: the times a thread of the process went to sleep for
  something (a reply, a job, a result), each a wake-up to pay for. Bare pyvisa waits once per
  query (its reply); the pyvisa way waits for each reply too, and twice more per read (the worker
  thread for its job, the event loop for the result): what the hop costs, in wake-ups.

The load average is printed with the figures: quote it with them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyvisa

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from core.clock import SystemClock
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.driver import VisaDriver
from drivers.visa.hislip_link import HislipLink
from drivers.visa.link import Link
from drivers.visa.serial_link import SerialLink
from drivers.visa.socket_link import SocketLink
from drivers.visa.vxi11_link import Vxi11Link

TRANSPORTS = ("socket", "hislip", "vxi11", "serial")

PORTMAPPER_PORT = 111
"""Where bare pyvisa-py asks for a VXI-11 instrument's core channel."""


def _serve(
    personality: str, ports: multiprocessing.Queue[dict[str, str]], stop: Any, delay_s: float = 0.0
) -> None:

    async def main() -> None:
        try:  # the portmapper where instruments have it, when it is free (root may bind it)
            async with _simulator(personality, delay_s, PORTMAPPER_PORT) as simulator:
                await _announce(simulator, ports, stop)
        except OSError:
            async with _simulator(personality, delay_s, 0) as simulator:
                await _announce(simulator, ports, stop)

    asyncio.run(main())


def _simulator(personality: str, delay_s: float, portmapper_port: int) -> Any:
    from drivers.sim.scpi import ScpiSimConfig, ScpiSimulator

    config = ScpiSimConfig(
        personality=personality,
        hislip=True,
        vxi11=True,
        vxi11_port=portmapper_port,
        pty=True,
        faults={"delay_s": delay_s},
    )
    return ScpiSimulator(config)


async def _announce(
    simulator: Any, ports: multiprocessing.Queue[dict[str, str]], stop: Any
) -> None:
    """The simulator's resources to the benchmark, then serve until told to stop."""
    ports.put(
        {
            "socket": simulator.tcp_resource,
            "hislip": simulator.hislip_resource,
            "vxi11": simulator.vxi11.portmapper_resource(),
            "serial": simulator.asrl_resource,
            "portmapper": str(simulator.vxi11.portmapper_port),
        }
    )
    await asyncio.to_thread(stop.wait)


Rate = tuple[int, float, float, list[float], int]
"""One round: queries, wall seconds, CPU seconds (the whole process), the wall seconds of each
exchange (a set of queries, or one read), and the process's waits (see :func:`_waits`)."""


def _waits() -> int:
    """The times a thread of this process has gone to sleep waiting (voluntary context switches,
    every thread; 0 where the OS does not count them): each is a wake-up to pay for, which on a
    busy machine also means waiting for a core."""
    if resource is None:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def _bare(instrument: Any, queries: list[str], seconds: float) -> Rate:
    """A plain pyvisa loop sending the same queries."""
    count = 0
    each: list[float] = []
    waits, cpu = _waits(), time.process_time()
    start = now = time.perf_counter()
    deadline = start + seconds
    while now < deadline:
        for query in queries:
            instrument.query(query)
        count += len(queries)
        then, now = now, time.perf_counter()
        each.append(now - then)
    return count, now - start, time.process_time() - cpu, each, _waits() - waits


async def _timed(
    exchange: Callable[[], Awaitable[None]], per_exchange: int, seconds: float
) -> Rate:
    """``exchange`` after ``exchange`` (each ``per_exchange`` queries) for ``seconds``."""
    count = 0
    each: list[float] = []
    waits, cpu = _waits(), time.process_time()
    start = now = time.perf_counter()
    deadline = start + seconds
    while now < deadline:
        await exchange()
        count += per_exchange
        then, now = now, time.perf_counter()
        each.append(now - then)
    return count, now - start, time.process_time() - cpu, each, _waits() - waits


async def _link(link: Link, queries: list[str], seconds: float) -> Rate:
    """etalon's asyncio link alone (no driver) sending the same queries."""

    async def exchange() -> None:
        for query in queries:
            await link.query(query)

    return await _timed(exchange, len(queries), seconds)


async def _driven(
    driver: VisaDriver, channels: list[VisaChannel], seconds: float, queries_per_read: int
) -> Rate:
    """VisaDriver.read of all the channels, read after read."""

    async def exchange() -> None:
        readings = await driver.read(channels)
        assert readings[0].value is not None, readings[0].reason

    return await _timed(exchange, queries_per_read, seconds)


def _rate(rounds: list[Rate]) -> float:
    """Queries per second over all the rounds."""
    return sum(r[0] for r in rounds) / sum(r[1] for r in rounds)


def _cpu(rounds: list[Rate]) -> float:
    """CPU seconds per query over all the rounds."""
    return sum(r[2] for r in rounds) / sum(r[0] for r in rounds)


def _waits_per_query(rounds: list[Rate]) -> float:
    """Waits (see :func:`_waits`) per query over all the rounds."""
    return sum(r[4] for r in rounds) / sum(r[0] for r in rounds)


def _median_s(rounds: list[Rate]) -> float:
    """The median wall time of one exchange over all the rounds."""
    return statistics.median(t for r in rounds for t in r[3])


@dataclass
class Result:
    """One case's rounds of bare pyvisa and of one way of the driver."""

    bare: list[Rate]
    driver: list[Rate]

    def ratio(self) -> float:
        """Driver/bare throughput over all the rounds."""
        return _rate(self.driver) / _rate(self.bare)

    def ratios(self) -> list[float]:
        """Driver/bare throughput of each pair of rounds."""
        return [d[0] / d[1] / (b[0] / b[1]) for d, b in zip(self.driver, self.bare, strict=True)]

    def median_ratio(self) -> float:
        """Bare/driver median time of one exchange (the same queries): what a round trip costs
        without the stalls other processes cause, which land on either side at random."""
        return _median_s(self.bare) / _median_s(self.driver)

    def cpu_ratio(self) -> float:
        """Bare/driver CPU per query over all the rounds."""
        return _cpu(self.bare) / _cpu(self.driver)


WAYS = ("asyncio", "pyvisa")
"""The driver's ways to a SOCKET, HiSLIP, VXI-11 or serial resource (``socket_io``: auto,
pyvisa)."""

OWN = "asyncio / bare link"
"""The asyncio driver against its own link alone: what the driver costs over its transport."""


async def _compare(
    config: VisaInstrument, queries: list[str], rounds: int, seconds: float
) -> dict[str, Result]:
    """Alternate bare pyvisa, bare link and driver rounds (both ways) on one simulator."""
    manager = pyvisa.ResourceManager("@py")
    bare_instrument = manager.open_resource(
        config.resource, read_termination="\n", write_termination="\n"
    )
    drivers = {
        "asyncio": VisaDriver(config, SystemClock()),
        "pyvisa": VisaDriver(config.model_copy(update={"socket_io": "pyvisa"}), SystemClock()),
    }
    for driver in drivers.values():
        await driver.connect()
    assert drivers["asyncio"]._session is not None and drivers["asyncio"]._session.on_loop
    link: Link
    if (address := config.socket_address()) is not None:
        link = await SocketLink.open(config, address, 10.0)
    elif (vxi11 := config.vxi11_address()) is not None:
        link = await Vxi11Link.open(config, vxi11, 10.0)
    else:
        hislip = config.hislip_address()
        assert hislip is not None
        link = await HislipLink.open(config, hislip, 10.0)
    channels: list[VisaChannel] = list(config.channels)
    bare: list[Rate] = []
    own: list[Rate] = []
    driven: dict[str, list[Rate]] = {way: [] for way in WAYS}
    sides = ("bare", "link", *WAYS)
    try:
        for round_ in range(rounds):
            shift = round_ % len(sides)
            for side in sides[shift:] + sides[:shift]:
                if side == "bare":
                    bare.append(_bare(bare_instrument, queries, seconds))
                elif side == "link":
                    own.append(await _link(link, queries, seconds))
                else:
                    rate = await _driven(drivers[side], channels, seconds, len(queries))
                    driven[side].append(rate)
    finally:
        for driver in drivers.values():
            await driver.close()
        bare_instrument.close()
        link.close()
    results = {way: Result(bare, driven[way]) for way in WAYS}
    return results | {OWN: Result(own, driven["asyncio"])}


async def _compare_serial(
    config: VisaInstrument, queries: list[str], rounds: int, seconds: float
) -> dict[str, Result]:
    """:func:`_compare` on a serial port: each side opens the port for its round alone (see the
    module doc)."""
    manager = pyvisa.ResourceManager("@py")
    configs = {"asyncio": config, "pyvisa": config.model_copy(update={"socket_io": "pyvisa"})}
    port = config.serial_port()
    assert port is not None
    channels: list[VisaChannel] = list(config.channels)
    bare: list[Rate] = []
    own: list[Rate] = []
    driven: dict[str, list[Rate]] = {way: [] for way in WAYS}
    sides = ("bare", "link", *WAYS)
    for round_ in range(rounds):
        shift = round_ % len(sides)
        for side in sides[shift:] + sides[:shift]:
            if side == "bare":
                instrument = manager.open_resource(
                    config.resource, read_termination="\n", write_termination="\n"
                )
                try:
                    bare.append(_bare(instrument, queries, seconds))
                finally:
                    instrument.close()
            elif side == "link":
                link = await SerialLink.open(config, port)
                try:
                    own.append(await _link(link, queries, seconds))
                finally:
                    link.close()
            else:
                driver = VisaDriver(configs[side], SystemClock())
                await driver.connect()
                try:
                    assert driver._session is not None
                    assert driver._session.on_loop is (side == "asyncio")
                    driven[side].append(await _driven(driver, channels, seconds, len(queries)))
                finally:
                    await driver.close()
    results = {way: Result(bare, driven[way]) for way in WAYS}
    return results | {OWN: Result(own, driven["asyncio"])}


def _config(
    resource: str, profile: str, channels: list[dict[str, Any]], check: str, portmapper: int
) -> VisaInstrument:
    return VisaInstrument.model_validate(
        {
            "name": "bench",
            "protocol": "visa",
            "resource": resource,
            "backend": "@py",
            "profile": profile,
            "errors": {"check": check, "interval_s": 3600},
            "vxi11_portmapper_port": portmapper,
            "channels": channels,
        }
    )


def _portmapper_for_pyvisa_py(port: int) -> None:
    """Bare pyvisa-py (and the pyvisa way) ask the portmapper on ``port``: pyvisa-py's own
    constant, patched in this process when the simulator could not have port 111."""
    from pyvisa_py.protocols import rpc

    if port != rpc.PMAP_PORT:
        print(f"(port 111 taken: pyvisa-py's rpc.PMAP_PORT patched to {port} in this process)")
        rpc.PMAP_PORT = port


def main() -> None:
    """Run the cases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=0.075, help="length of one round")
    parser.add_argument(
        "--reply-delay-ms",
        type=float,
        default=0.0,
        help="the simulated instrument answers each query this much later (its measuring time)",
    )
    parser.add_argument(
        "--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS), metavar="KIND"
    )
    args = parser.parse_args()
    ports: multiprocessing.Queue[dict[str, str]] = multiprocessing.Queue()
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
    width = max(len(label) for label, *_ in cases) + len(" (serial)")
    portmapper_told = False
    for (label, profile, channels, check, queries), transport in (
        (case, transport) for case in cases for transport in args.transports
    ):
        server = multiprocessing.Process(
            target=_serve, args=(profile, ports, stop, args.reply_delay_ms / 1000), daemon=True
        )
        stop.clear()
        server.start()
        resources = ports.get(timeout=30)
        portmapper = int(resources["portmapper"])
        if transport == "vxi11" and not portmapper_told:
            _portmapper_for_pyvisa_py(portmapper)
            portmapper_told = True
        try:
            config = _config(resources[transport], profile, channels, check, portmapper)
            compare = _compare_serial if transport == "serial" else _compare
            results = asyncio.run(compare(config, queries, args.rounds, args.seconds))
        finally:
            stop.set()
            server.join(10)
        for way, result in results.items():
            q1, _, q3 = statistics.quantiles(result.ratios(), n=4)
            bare_cpu, driver_cpu = _cpu(result.bare) * 1e6, _cpu(result.driver) * 1e6
            bare_waits, driver_waits = (
                _waits_per_query(result.bare),
                _waits_per_query(result.driver),
            )
            baseline = "link" if way == OWN else "pyvisa"
            case = f"{label} ({transport})"
            print(
                f"{case:<{width}}  {way:<19}  bare {baseline} {_rate(result.bare):7,.0f} q/s"
                f"  driver {_rate(result.driver):7,.0f} q/s  {result.ratio():6.1%}"
                f" ({q1:.0%}–{q3:.0%})  median exchange {result.median_ratio():6.1%}"
                f"  CPU/query bare {bare_cpu:5.0f} µs  driver {driver_cpu:5.0f} µs"
                f"  {result.cpu_ratio():6.1%}  waits/query bare {bare_waits:4.2f}"
                f"  driver {driver_waits:4.2f}",
                flush=True,
            )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
