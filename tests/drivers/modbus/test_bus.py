"""Fault isolation and recovery with the agent's scheduler: devices on one line, one sick.

Each test runs the agent's InstrumentRunner for real instruments on simulated lines, with the
bus locks the agent would create, and checks the sick device's readings and state while the
healthy one keeps its schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.clock import SystemClock
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.reading import Quality, Reading
from drivers.sim.modbus_server import ModbusSimServer, load_register_map
from edge_agent.metrics import AgentMetrics
from edge_agent.scheduler import InstrumentRunner
from tests.support.clock_steps import StepLog, missed_ticks
from tests.support.waiting import until

LAB_BUS = load_register_map("lab-bus")
INTERVAL_S = 0.2


class Bench:
    """Instruments run by the agent's scheduler; readings and state changes recorded."""

    def __init__(self, configs: Sequence[ModbusInstrument]) -> None:
        self.configs = list(configs)
        self.readings: dict[str, list[Reading]] = defaultdict(list)
        self.states: dict[str, list[tuple[float, str, str | None]]] = defaultdict(list)
        self.metrics = {c.name: AgentMetrics() for c in configs}
        self.steps = StepLog()  # of the host's clock (a paused virtual machine)

    def good_after(self, name: str, t0_ns: int) -> list[Reading]:
        return [r for r in self.readings[name] if r.ts_ns >= t0_ns and r.quality is Quality.GOOD]

    def unavailable(self, name: str) -> bool:
        return any(state == "unavailable" for _, state, _ in self.states[name])

    async def until_all(self, check: Callable[[str], object], what: str) -> None:
        """Wait until ``check(name)`` holds for every instrument: for a state change, not a
        fixed sleep sized on an idle machine."""
        await until(lambda: all(check(c.name) for c in self.configs), what)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Bench]:
        clock = SystemClock(on_step=self.steps)
        locks: dict[str, asyncio.Lock] = {}
        tasks = []
        for config in self.configs:
            runner = InstrumentRunner(
                config,
                ModbusDriver(config, clock),
                clock,
                self.readings[config.name].extend,
                self.metrics[config.name],
                lambda name, state, reason: self.states[name].append(
                    (time.monotonic(), state, reason)
                ),
                locks.setdefault(config.bus, asyncio.Lock()) if config.bus else None,
            )
            tasks.append(asyncio.create_task(runner.run(), name=f"runner-{config.name}"))
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def device_config(
    server: ModbusSimServer,
    device_id: int,
    channel: dict[str, Any],
    interval_s: float = INTERVAL_S,
    request_timeout_s: float = 0.12,
) -> ModbusInstrument:
    if server.medium == "pty":
        transport: dict[str, Any] = {"kind": "rtu", "port": str(server.link), "parity": "N"}
    else:
        transport = {"kind": "tcp", "host": server.host, "port": server.port}
    return ModbusInstrument.model_validate(
        {
            "name": f"device-{device_id}",
            "protocol": "modbus",
            "transport": transport,
            "device_id": device_id,
            "order": LAB_BUS.devices[device_id - 1].order,
            "timeout_s": 0.5,
            "request_timeout_s": request_timeout_s,
            "connect_timeout_s": 1,
            "reconnect": {"initial_s": 0.1, "max_s": 0.4},
            "channels": [channel | {"interval_s": interval_s}],
        }
    )


TEMPERATURE = {"name": "temperature", "table": "input", "address": 10, "type": "float32",
               "unit": "°C"}  # fmt: skip
VOLTAGE = {"name": "voltage", "table": "input", "address": 0, "type": "float64", "unit": "V"}


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[ModbusSimServer]:
    """One RS-485 line on a pty (reached through a stable symlink) with devices 1, 2, 3."""
    server = ModbusSimServer(LAB_BUS, medium="pty", framing="rtu", link=tmp_path / "ttyRS485")
    async with server:
        yield server


FAULTS = {
    "silent device id": ({"silent_device_ids": [3]}, "no reply within"),
    "no reply": ({"hang": True, "only_device_ids": [3]}, "no reply within"),
    "exception": (
        {"exception_at": [{"table": "input", "address": 0, "code": 2}]},
        r"ILLEGAL DATA ADDRESS \(Modbus exception 2\) at FC4 0\+4",
    ),
    "slow reply": ({"delay_s": 0.3, "only_device_ids": [3]}, "no reply within"),
    "wrong CRC": ({"bad_crc": True, "only_device_ids": [3]}, "reply failed its CRC check"),
    "garbage": (
        {"garbage_rate": 1.0, "only_device_ids": [3]},
        r"reply failed its CRC check|unusable reply",
    ),
}


SICK_REQUEST_TIMEOUT_S = 0.12
"""What one read of the sick device may hold the line for: its one request's timeout."""
SHARED_INTERVAL_S = 0.4
"""The schedule both devices keep: a tick holds the sick device's request timeout and then the
healthy device's exchange, which on a loaded machine (CI beside other suites) takes tens of ms
of waiting for the CPU; the rest of the interval is that margin."""


@pytest.mark.parametrize("fault", FAULTS)
async def test_sick_device_does_not_cost_the_others_their_schedule(
    line: ModbusSimServer, fault: str
) -> None:
    settings, reason = FAULTS[fault]
    for key, value in settings.items():
        setattr(line.faults, key, value)
    # The healthy device's own request timeout is not under test: generous, so that its reply
    # coming late from a busy machine is no BAD reading (yet short of the interval).
    healthy = device_config(line, 1, TEMPERATURE, SHARED_INTERVAL_S, request_timeout_s=0.25)
    sick = device_config(line, 3, VOLTAGE, SHARED_INTERVAL_S, SICK_REQUEST_TIMEOUT_S)
    assert healthy.bus == sick.bus  # one line: the agent queues them behind one lock
    bench = Bench([healthy, sick])
    async with bench.running():
        # Ticks enough for the sick device to fail three reads in a row and re-open its
        # session on the shared line, more than once, while the healthy one reads.
        await until(
            lambda: len(bench.readings[healthy.name]) >= 8 and len(bench.readings[sick.name]) >= 7,
            "eight healthy readings and seven sick ones",
        )

    good = [r for r in bench.readings[healthy.name] if r.quality is Quality.GOOD]
    assert len(good) == len(bench.readings[healthy.name])  # nothing bad on the healthy device
    # Every tick from the first reading to the last has its reading (a reading late on its tick
    # is that tick's), and the agent skipped none for an overrun.
    interval_ns = round(SHARED_INTERVAL_S * 1e9)
    stamps = [r.ts_ns for r in good]
    assert missed_ticks(stamps, interval_ns, bench.steps.steps, tolerance=1_000_000) == []
    assert bench.metrics[healthy.name].overruns == 0

    sick_readings = bench.readings[sick.name]
    assert all(r.quality is Quality.BAD for r in sick_readings)
    reasons = {r.reason for r in sick_readings}
    assert all(r and re.match(reason, r) for r in reasons), reasons


async def test_line_recovers_when_the_fault_clears(line: ModbusSimServer) -> None:
    line.faults.silent_device_ids = [3]
    sick = device_config(line, 3, VOLTAGE)
    bench = Bench([device_config(line, 1, TEMPERATURE), sick])
    async with bench.running():
        await until(lambda: bench.unavailable(sick.name), "the silent device unavailable")
        line.faults.silent_device_ids = []
        cleared = time.time_ns()
        await until(lambda: bench.good_after(sick.name, cleared), "a good reading again")


async def test_pty_simulator_restarted_is_reopened(line: ModbusSimServer) -> None:
    configs = [device_config(line, 1, TEMPERATURE), device_config(line, 3, VOLTAGE)]
    bench = Bench(configs)
    async with bench.running():
        await bench.until_all(lambda n: bench.good_after(n, 0), "readings from each")
        await line.stop()  # the converter unplugged: the line is gone
        await bench.until_all(bench.unavailable, "each device unavailable")
        await line.start()  # a new pty behind the same symlink
        restarted = time.time_ns()
        await bench.until_all(lambda n: bench.good_after(n, restarted), "each reading again")
    for config in configs:
        states = [state for _, state, _ in bench.states[config.name]]
        assert "unavailable" in states, states
        back = bench.good_after(config.name, restarted)
        assert back, f"{config.name} did not read again"
        # Backoff is capped at 0.4 s: back within the cap, a tick and a request.
        assert (back[0].ts_ns - restarted) / 1e9 < 0.4 + INTERVAL_S + 0.5


async def test_tcp_simulator_restarted_mid_run_is_reconnected() -> None:
    server = ModbusSimServer(LAB_BUS)
    await server.start()
    configs = [device_config(server, 2, {"name": "supply", "address": 0, "type": "float32",
                                         "unit": "°C"}),
               device_config(server, 3, VOLTAGE)]  # fmt: skip
    bench = Bench(configs)
    try:
        async with bench.running():
            await bench.until_all(lambda n: bench.good_after(n, 0), "readings from each")
            await server.stop()
            await bench.until_all(bench.unavailable, "each device unavailable")
            await server.start()  # same port
            restarted = time.time_ns()
            await bench.until_all(lambda n: bench.good_after(n, restarted), "each reading again")
    finally:
        await server.stop()
    for config in configs:
        states = [state for _, state, _ in bench.states[config.name]]
        assert states[0] == "connected"
        assert "unavailable" in states
        back = bench.good_after(config.name, restarted)
        assert back, f"{config.name} did not read again"
        assert (back[0].ts_ns - restarted) / 1e9 < 0.4 + INTERVAL_S + 0.5


async def test_dropped_connection_makes_both_devices_unavailable_then_back() -> None:
    async with ModbusSimServer(LAB_BUS) as server:
        configs = [device_config(server, 1, TEMPERATURE), device_config(server, 3, VOLTAGE)]
        bench = Bench(configs)
        async with bench.running():
            await bench.until_all(lambda n: bench.good_after(n, 0), "readings from each")
            server.faults.disconnected = True
            server.drop_connections()
            await bench.until_all(bench.unavailable, "each device unavailable")
            server.faults.disconnected = False
            cleared = time.time_ns()
            await bench.until_all(lambda n: bench.good_after(n, cleared), "each reading again")
    for config in configs:
        reasons = [reason for _, state, reason in bench.states[config.name]
                   if state == "unavailable"]  # fmt: skip
        assert reasons, bench.states[config.name]
        assert bench.good_after(config.name, cleared)
