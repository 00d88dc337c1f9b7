"""Ctrl-C on a terminal stops each long-running command cleanly: SIGINT to the whole process
group (as the terminal sends it, so a process-pool worker gets it too), no traceback, the summary
printed once, the documented exit status (docs/errors.md: 0 for a clean stop by a first
signal). ``etalon calibrate run`` has its own in tests/calibration/test_process.py."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chain import SITE, sim_instruments
from tests.support.processes import etalon_command, write_yaml
from tests.support.services import Mosquitto, free_port
from tests.support.terminal import TerminalRun

CLEAN_STOP = 0
"""The documented status of a long-running command stopped by a first Ctrl-C."""


@pytest.fixture
def terminal() -> Iterator[list[TerminalRun]]:
    runs: list[TerminalRun] = []
    yield runs
    for run in runs:
        run.close()


def start(runs: list[TerminalRun], cwd: Path, *args: str) -> TerminalRun:
    run = TerminalRun(etalon_command(*args), cwd=cwd)
    runs.append(run)
    return run


def assert_no_traceback(run: TerminalRun) -> None:
    assert "Traceback" not in run.text, run.text
    assert "KeyboardInterrupt" not in run.text, run.text


def test_ctrl_c_stops_the_demo_with_its_verdict_once_and_no_worker_traceback(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    run = start(terminal, tmp_path, "demo", "--data-dir", str(tmp_path / "demo"))
    run.wait_for(r"read [1-9]\d*\s+published", 180)
    # The standards' analytics run in a process-pool worker, spawned at the first evaluation:
    # wait until it exists, so Ctrl-C reaches it as well (while it imports or waits for work).
    run.wait_for_child("multiprocessing", 120)
    assert run.ctrl_c() == CLEAN_STOP
    assert_no_traceback(run)
    assert run.text.count("demo stopped after") == 1
    assert run.text.count("every reading arrived exactly once") == 1


def test_ctrl_c_while_the_demo_starts_cancels_the_start_up(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    """Ctrl-C once the demo's broker listens, while its simulators and gateway still start
    (seconds): the start-up is cancelled and the demo ends promptly with one line, as the
    agent and the gateway do (docs/errors.md), instead of starting the whole chain first."""
    broker = free_port()
    run = start(
        terminal, tmp_path, "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0",
        "--broker-port", str(broker),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not listening(broker):
        assert time.monotonic() < deadline and run.process.poll() is None, run.text
        run.idle(0.05)
    started = time.monotonic()
    assert run.ctrl_c() == CLEAN_STOP
    took = time.monotonic() - started
    assert_no_traceback(run)
    assert run.text.count("demo stopped while it was starting: nothing was read") == 1, run.text
    assert "demo stopped after" not in run.text
    assert took < 15, took


def listening(port: int) -> bool:
    """Whether a socket listens on TCP ``port`` (from /proc/net/tcp: a connection to the
    broker that sends nothing would be logged by it as an error)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return True
    return False


def test_a_second_ctrl_c_forces_the_demo_out_and_leaves_no_process_behind(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    """The second Ctrl-C ends the demo at once (130): its analytics worker, which ignores
    Ctrl-C and waited for the gateway to stop it, ends with it, instead of staying on as an
    orphan that holds the terminal and the store; and multiprocessing's resource tracker finds
    nothing leaked to warn about."""
    run = start(terminal, tmp_path, "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0")
    run.wait_for(r"read [1-9]\d*\s+published", 180)
    run.wait_for_child("multiprocessing", 120)
    assert run.ctrl_c(again_after_s=0.2) == 130
    assert_no_traceback(run)
    assert run.text.count("forced stop (SIGINT again)") == 1
    assert "leaked" not in run.text and "Warning" not in run.text, run.text
    assert run.group() == []


def test_sigterm_to_the_demo_s_group_stops_it_cleanly_with_its_worker(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    """SIGTERM to the whole process group, as systemd stops a service (KillMode=control-group)
    or ``kill -TERM -PGID``: the worker leaves it to the gateway, as it does Ctrl-C, so the
    gateway does not find its worker dead, warn and start another while it stops."""
    run = start(terminal, tmp_path, "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0")
    run.wait_for(r"read [1-9]\d*\s+published", 180)
    run.wait_for_child("multiprocessing", 120)
    assert run.signal_group(signal.SIGTERM) == CLEAN_STOP
    assert_no_traceback(run)
    assert "worker died" not in run.text and "WARNING" not in run.text, run.text
    assert run.text.count("demo stopped after") == 1
    assert run.text.count("every reading arrived exactly once") == 1


def test_ctrl_c_stops_an_agent(
    terminal: list[TerminalRun], tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_yaml(
        tmp_path / "agent.yaml",
        {
            "site": SITE,
            "id": "bench-1",
            "mqtt": {"port": mosquitto.port},
            "spool": {"path": str(tmp_path / "agent-spool.db")},
            "instruments": sim_instruments(),
        },
    )
    run = start(terminal, tmp_path, "agent", "-c", str(config))
    run.wait_for(r"agent started", 60)
    assert run.ctrl_c() == CLEAN_STOP
    assert_no_traceback(run)
    assert run.text.count("agent stopped") == 1


def test_ctrl_c_stops_a_gateway(
    terminal: list[TerminalRun], tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {
            "site": SITE,
            "mqtt": {"port": mosquitto.port},
            "spool": {"path": str(tmp_path / "gateway-spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
        },
    )
    run = start(terminal, tmp_path, "gateway", "-c", str(config))
    run.wait_for(r"gateway started", 60)
    assert run.ctrl_c() == CLEAN_STOP
    assert_no_traceback(run)
    assert run.text.count("gateway stopped") == 1


SIMULATORS = [
    ("modbus-tcp", ["--map", "lab-bus", "--port", "PORT"], r"modbus simulator listening"),
    ("modbus-rtu-over-tcp", ["--map", "lab-bus", "--port", "PORT"], r"serving lab-bus on"),
    ("modbus-rtu", ["--map", "lab-bus", "--link", "LINK"], r"linked as"),
    # The commands config/serial-ascii-*.yaml give: the simulator's own --kind option.
    ("serial-ascii", ["--kind", "thp", "--link", "LINK"], r"\(thp\) on /dev/"),
    ("serial-ascii", ["--kind", "stream", "--tcp-port", "PORT"], r"\(stream\) on 127"),
    ("scpi", ["--personality", "generic-dmm", "--port", "PORT", "--pty"], r"ASRL/dev/"),
    ("opcua", ["--port", "PORT"], r"opcua: opc\.tcp://"),
    ("bench", ["--port-base", "0"], r"control"),
]
"""Each ``etalon sim KIND`` (drivers/sim/catalog.py): its options and what it prints once it
serves."""

SLOW_STARTS = {"opcua"}
"""The simulators whose start-up takes seconds (asyncua's init), long enough for a signal sent
as it begins to land in it every time; the others serve within milliseconds."""


@pytest.mark.parametrize(("kind", "args", "ready"), SIMULATORS)
def test_ctrl_c_stops_a_simulator(
    terminal: list[TerminalRun], tmp_path: Path, kind: str, args: list[str], ready: str
) -> None:
    where = {"PORT": str(free_port()), "LINK": str(tmp_path / "device")}
    run = start(terminal, tmp_path, "sim", kind, *(where.get(a, a) for a in args))
    run.wait_for(ready, 60)
    assert run.ctrl_c() == CLEAN_STOP
    assert_no_traceback(run)
    assert not (tmp_path / "device").is_symlink()


@pytest.mark.parametrize(("kind", "args", "ready"), SIMULATORS)
def test_ctrl_c_while_a_simulator_starts_cancels_the_start_up(
    terminal: list[TerminalRun], tmp_path: Path, kind: str, args: list[str], ready: str
) -> None:
    """Ctrl-C as soon as the simulator begins its start-up (after the imports, when it logs
    'simulator starting'): the start-up is cancelled, what it opened is closed (its pty's link
    too) and it ends with status 0, one line and no traceback, without serving first; within a
    generous bound of a start-up and a stop (measured first, in the same test)."""
    command = ["sim", kind]
    where = {"PORT": str(free_port()), "LINK": str(tmp_path / "device")}
    run = start(terminal, tmp_path, *command, *(where.get(a, a) for a in args))
    run.wait_for(STARTING, 60)
    began = time.monotonic()
    run.wait_for(ready, 60)
    assert run.ctrl_c() == CLEAN_STOP
    served = time.monotonic() - began

    where = {"PORT": str(free_port()), "LINK": str(tmp_path / "device-2")}
    run = start(terminal, tmp_path, *command, *(where.get(a, a) for a in args))
    run.wait_for(STARTING, 60)
    signalled = time.monotonic()
    assert run.ctrl_c() == CLEAN_STOP
    took = time.monotonic() - signalled
    assert_no_traceback(run)
    assert not (tmp_path / "device-2").is_symlink()
    cancelled = run.text.count("simulator stopped while it was starting: it served nothing")
    if kind in SLOW_STARTS:
        assert cancelled == 1, run.text
        assert re.search(ready, run.text) is None, run.text
        # Generous (the machine may be loaded): the crisp check is that it never served.
        assert took < 2 * served + 5, (took, served)
    else:  # the signal may come after the start-up: a stop as usual, or before: cancelled
        assert cancelled + len(re.findall(ready, run.text)) >= 1, run.text
        assert cancelled <= 1, run.text


STARTING = r"simulator starting"
"""What a simulator logs when its start-up begins (after the imports)."""


def test_ctrl_c_ends_agent_once_with_130_and_no_table(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    config = write_yaml(
        tmp_path / "agent.yaml",
        {
            "site": SITE,
            "id": "bench-1",
            "mqtt": {"port": free_port()},
            "spool": {"path": str(tmp_path / "agent-spool.db")},
            "instruments": sim_instruments(),
        },
    )
    run = start(terminal, tmp_path, "agent", "-c", str(config), "--once", "--count", "1000")
    run.wait_for(r"reading 3 instrument\(s\), 1000 tick\(s\)", 60)
    assert run.ctrl_c() == 130
    assert_no_traceback(run)
    assert "interrupted (Ctrl-C)" in run.text
    assert "instrument  channel" not in run.text
    assert not (tmp_path / "agent-spool.db").exists()


class Silent:
    """A TCP listener that takes connections and never answers: a database that does not."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port: int = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.accepted.append(self.socket.accept()[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for each in [*self.accepted, self.socket]:
            each.close()


def test_ctrl_c_while_the_hub_connects_to_its_database_cancels_the_start_up(
    terminal: list[TerminalRun], tmp_path: Path
) -> None:
    """``etalon hub -c FILE`` whose database does not answer waits up to its connect timeout: a
    Ctrl-C meanwhile cancels the start-up (status 0, docs/errors.md) instead of waiting for the
    timeout and failing with it (5). Against a start-up left alone, measured first."""
    database = Silent()
    try:
        config = write_yaml(
            tmp_path / "hub.yaml",
            {
                "id": "hub-1",
                "name": "hub",
                "database": {
                    "url": f"host=127.0.0.1 port={database.port} dbname=hub user=hub",
                    "connect_timeout_s": 8,
                },
                "key_file": str(tmp_path / "hub.key"),
            },
        )
        run = start(terminal, tmp_path, "hub", "-c", str(config))
        connecting = wait_for_connection(run, database, 1)
        assert run.process.wait(60) == 5, run.text  # EXIT_OTHER: it could not connect
        left_alone = time.monotonic() - connecting

        run = start(terminal, tmp_path, "hub", "-c", str(config))
        wait_for_connection(run, database, len(database.accepted) + 1)
        signalled = time.monotonic()
        assert run.ctrl_c() == CLEAN_STOP, run.text
        took = time.monotonic() - signalled
    finally:
        database.close()
    assert_no_traceback(run)
    assert "cannot connect" not in run.text, run.text
    assert took < left_alone, (took, left_alone)


def wait_for_connection(run: TerminalRun, database: Silent, count: int) -> float:
    """When ``database`` has taken ``count`` connections (the hub is starting)."""
    deadline = time.monotonic() + 120
    while len(database.accepted) < count:
        assert time.monotonic() < deadline and run.process.poll() is None, run.text
        run.idle(0.05)
    return time.monotonic()
