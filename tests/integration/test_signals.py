"""SIGINT and SIGTERM stop the real agent and gateway processes promptly in every phase: while the
command line is still importing, while connecting to a broker that is not there, while running,
while draining into a store that is down. The first signal is a clean stop (exit 0, everything
read is in the spool); a second one exits at once (130 for SIGINT, 143 for SIGTERM). Never a
traceback."""

from __future__ import annotations

import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.chain import SITE, sim_instruments
from tests.support.mqtt_client import RawClient
from tests.support.processes import EtalonProcess, child_env, etalon_command, write_yaml
from tests.support.services import Mosquitto, free_port

AGENT_STOP_S = 10.0
"""A clean agent stop: the 3 s drain grace, closing, and a loaded machine's slack."""
GATEWAY_STOP_S = 15.0
"""A clean gateway stop: the 5 s drain grace into a store that is down, closing, slack."""
FORCED_S = 3.0
"""A forced stop: no grace at all."""

SIGNALS = [signal.SIGINT, signal.SIGTERM]
IDS = ["SIGINT", "SIGTERM"]


def handles_sigterm(pid: int) -> bool:
    """Whether the process has taken SIGTERM (core.signals installs before the slow imports)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def agent_process(tmp: Path, broker_port: int) -> EtalonProcess:
    config = write_yaml(
        tmp / "agent.yaml",
        {
            "site": SITE,
            "id": "bench-1",
            "mqtt": {"port": broker_port, "reconnect": {"initial_s": 0.5, "max_s": 1.0}},
            "spool": {"path": str(tmp / "agent-spool.db")},
            "instruments": sim_instruments(),
        },
    )
    return EtalonProcess("agent", config, tmp / "agent.log")


def gateway_process(tmp: Path, broker_port: int, store_port: int) -> EtalonProcess:
    config = write_yaml(
        tmp / "gateway.yaml",
        {
            "site": SITE,
            "mqtt": {"port": broker_port, "reconnect": {"initial_s": 0.5, "max_s": 1.0}},
            "spool": {"path": str(tmp / "gateway-spool.db")},
            "store": {
                "kind": "influxdb_v2",
                "url": f"http://127.0.0.1:{store_port}",
                "bucket": "b",
                "timeout_s": 2,
            },
            "records": {"path": str(tmp / "records.db")},
            "write": {"retry": {"initial_s": 0.2, "max_s": 1.0}},
        },
    )
    return EtalonProcess("gateway", config, tmp / "gateway.log")


def signal_and_wait(process: EtalonProcess, signum: int, bound_s: float) -> tuple[int, float]:
    """Send ``signum``; the exit status and how long the process took to exit."""
    assert process.process is not None
    sent = time.monotonic()
    process.process.send_signal(signum)
    code = process.process.wait(bound_s + 30)  # past the bound it fails below, with figures
    took = time.monotonic() - sent
    process.process = None
    return code, took


def assert_clean(process: EtalonProcess) -> None:
    log = process.log()
    assert "Traceback" not in log, log
    assert "forced stop" not in log, log


def spooled(path: Path) -> int:
    """Items in a spool: an agent's entry holds one poll's readings (its ``n``)."""
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COALESCE(SUM(n), 0) FROM spool").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("signum", SIGNALS, ids=IDS)
@pytest.mark.parametrize("role", ["agent", "gateway"])
def test_a_signal_while_the_command_line_imports_stops_at_once(
    tmp_path: Path, role: str, signum: int
) -> None:
    process = (
        agent_process(tmp_path, free_port())
        if role == "agent"
        else gateway_process(tmp_path, free_port(), free_port())
    )
    try:
        process.start()
        assert process.process is not None
        deadline = time.monotonic() + 20
        while not handles_sigterm(process.process.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        code, took = signal_and_wait(process, signum, FORCED_S)
    finally:
        process.ensure_stopped()
    assert (code, took < FORCED_S) == (0, True), (code, took, process.log())
    assert process.log() == ""  # it stopped before it started anything: nothing to say


def signal_while_importing(args: list[str], signum: int) -> tuple[int, bytes]:
    """``etalon ARGS`` sent ``signum`` as soon as it takes signals (while it imports); its exit
    status and output."""
    child = subprocess.Popen(
        etalon_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not handles_sigterm(child.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        child.send_signal(signum)
        output, _ = child.communicate(timeout=FORCED_S + 20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, output


def test_a_signal_while_agent_once_imports_interrupts_it_with_130(tmp_path: Path) -> None:
    """``agent --once`` reads and ends: a Ctrl-C before it has read is an interruption (130),
    not the clean stop (0) of a running agent, whenever it comes."""
    process = agent_process(tmp_path, free_port())
    code, output = signal_while_importing(
        ["agent", "-c", str(process.config), "--once"], signal.SIGINT
    )
    assert code == 130, output
    assert b"Traceback" not in output


@pytest.mark.parametrize("signum", SIGNALS, ids=IDS)
def test_the_agent_stops_while_connecting_to_a_broker_that_is_not_there(
    tmp_path: Path, signum: int
) -> None:
    agent = agent_process(tmp_path, free_port())
    try:
        agent.start()
        agent.wait_log("mqtt unreachable, will retry", timeout_s=30)
        code, took = signal_and_wait(agent, signum, AGENT_STOP_S)
    finally:
        agent.ensure_stopped()
    assert (code, took < AGENT_STOP_S) == (0, True), (code, took, agent.log())
    assert_clean(agent)
    assert f"stopping signal={signal.Signals(signum).name}" in agent.log()
    assert "agent started" not in agent.log()  # it never went on to read


def read_terminal(fd: int, output: bytearray, until: bytes | None, timeout_s: float) -> bool:
    """Read a pty's output into ``output`` until ``until`` appears (True), the other end closes
    or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while until is None or until not in output:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return False
            if not chunk:
                return False
            output += chunk
    return True


def test_ctrl_c_in_a_terminal_stops_the_installed_etalon_agent_while_it_waits_for_the_broker(
    tmp_path: Path,
) -> None:
    """Finding 6 of issue 12 as a user meets it: the console script that pyproject installs
    (``etalon`` → ``app.launch:main``), in a terminal, waiting for a broker that is not there;
    Ctrl-C (the terminal's SIGINT to the foreground group) ends it promptly and cleanly."""
    script = Path(sys.executable).with_name("etalon")
    assert script.is_file(), f"{script}: reinstall the project (uv pip install -e .)"
    config = agent_process(tmp_path, free_port()).config
    env = child_env({"ETALON_LANG": "en", "TERM": "dumb"})
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own, the pty its controlling terminal
        try:
            os.execve(script, [str(script), "agent", "-c", str(config)], env)
        finally:
            os._exit(127)
    output = bytearray()
    status: int | None = None
    try:
        waiting = read_terminal(fd, output, b"mqtt unreachable, will retry", 60)
        assert waiting, output.decode(errors="replace")
        sent = time.monotonic()
        os.write(fd, b"\x03")  # Ctrl-C
        deadline = sent + AGENT_STOP_S + 30
        while status is None and time.monotonic() < deadline:
            read_terminal(fd, output, None, 0.1)
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
        took = time.monotonic() - sent
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert (status, took < AGENT_STOP_S) == (0, True), (status, took, text)
    assert "stopping signal=SIGINT" in text, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "agent started" not in text  # it never went on to read


@pytest.mark.parametrize("signum", SIGNALS, ids=IDS)
def test_the_agent_stops_while_running_and_keeps_what_it_read(tmp_path: Path, signum: int) -> None:
    agent = agent_process(tmp_path, free_port())  # no broker: everything stays in the spool
    try:
        agent.start()
        agent.wait_log("agent started", timeout_s=60)
        time.sleep(1.5)
        code, took = signal_and_wait(agent, signum, AGENT_STOP_S)
    finally:
        agent.ensure_stopped()
    assert (code, took < AGENT_STOP_S) == (0, True), (code, took, agent.log())
    assert_clean(agent)
    metrics = agent.final_metrics()
    assert metrics["readings_read"] > 0
    assert spooled(tmp_path / "agent-spool.db") == metrics["spooled"] == metrics["readings_read"]


def test_a_second_signal_forces_the_agent_out_and_loses_nothing(tmp_path: Path) -> None:
    agent = agent_process(tmp_path, free_port())
    try:
        agent.start()
        agent.wait_log("agent started", timeout_s=60)
        time.sleep(1.5)
        assert agent.process is not None
        agent.process.send_signal(signal.SIGTERM)
        agent.wait_log("stopping signal=SIGTERM")  # draining: the broker cannot take the spool
        code, took = signal_and_wait(agent, signal.SIGINT, FORCED_S)
    finally:
        agent.ensure_stopped()
    assert (code, took < FORCED_S) == (130, True), (code, took, agent.log())
    log = agent.log()
    assert "etalon: forced stop (SIGINT again)" in log
    assert "Traceback" not in log
    assert spooled(tmp_path / "agent-spool.db") > 0  # what was read is still there


@pytest.mark.parametrize("signum", SIGNALS, ids=IDS)
def test_the_gateway_stops_while_connecting_with_its_store_down(
    tmp_path: Path, signum: int
) -> None:
    gateway = gateway_process(tmp_path, free_port(), free_port())
    try:
        gateway.start()
        gateway.wait_log("mqtt unreachable, will retry", timeout_s=60)
        code, took = signal_and_wait(gateway, signum, GATEWAY_STOP_S)
    finally:
        gateway.ensure_stopped()
    assert (code, took < GATEWAY_STOP_S) == (0, True), (code, took, gateway.log())
    assert_clean(gateway)
    assert "gateway started" not in gateway.log()


def spool_some_readings(gateway: EtalonProcess, broker: Mosquitto) -> None:
    """Readings the gateway acknowledges and holds, its store being down."""
    client = RawClient(broker.port)
    try:
        body = (
            b'{"schema":1,"site":"lab-1","agent":"bench-1","seq":0,"readings":[{"instrument":'
            b'"z","channel":"v","ts":1790000000000000000,"value":1.0,"unit":"V","quality":'
            b'"good"}]}'
        )
        client.publish(f"etalon/v1/{SITE}/bench-1/data", body)
    finally:
        client.close()
    gateway.wait_log("store unavailable", timeout_s=30)


def test_the_gateway_drains_into_a_store_that_is_down_then_stops(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gateway = gateway_process(tmp_path, mosquitto.port, free_port())
    try:
        gateway.start()
        gateway.wait_log("gateway started", timeout_s=60)
        spool_some_readings(gateway, mosquitto)
        code, took = signal_and_wait(gateway, signal.SIGTERM, GATEWAY_STOP_S)
    finally:
        gateway.ensure_stopped()
    assert (code, took < GATEWAY_STOP_S) == (0, True), (code, took, gateway.log())
    assert_clean(gateway)
    assert gateway.final_metrics()["drained"] == 0
    assert spooled(tmp_path / "gateway-spool.db") >= 1  # kept for the next run


def test_a_second_signal_while_the_gateway_drains_forces_it_out(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gateway = gateway_process(tmp_path, mosquitto.port, free_port())
    try:
        gateway.start()
        gateway.wait_log("gateway started", timeout_s=60)
        spool_some_readings(gateway, mosquitto)
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGINT)
        gateway.wait_log("stopping signal=SIGINT")
        code, took = signal_and_wait(gateway, signal.SIGTERM, FORCED_S)
    finally:
        gateway.ensure_stopped()
    assert (code, took < FORCED_S) == (143, True), (code, took, gateway.log())
    log = gateway.log()
    assert "etalon: forced stop (SIGTERM again)" in log
    assert "Traceback" not in log
    assert spooled(tmp_path / "gateway-spool.db") >= 1


@pytest.mark.parametrize("signum", SIGNALS, ids=IDS)
@pytest.mark.parametrize(
    ("action", "status"),
    [([], 0), (["labs"], None)],
    ids=["server", "labs"],
)
def test_a_signal_while_the_hub_imports(
    tmp_path: Path, signum: int, action: list[str], status: int | None
) -> None:
    """``etalon hub -c FILE`` is the hub's server, a long-running command: a signal before it
    has started anything is a clean stop (0), as for the agent and the gateway, not the 130 of
    a short command; ``etalon hub labs`` is a short one (128 + the signal)."""
    config = write_yaml(
        tmp_path / "hub.yaml",
        {
            "id": "hub-1",
            "name": "hub",
            "database": {"url": f"host=127.0.0.1 port={free_port()} dbname=hub user=hub"},
            "key_file": str(tmp_path / "hub.key"),
        },
    )
    code, output = signal_while_importing(["hub", "-c", str(config), *action], signum)
    assert code == (128 + signum if status is None else status), output
    assert output == b""  # it stopped before it started anything: nothing to say
