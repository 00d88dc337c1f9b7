"""``etalon calibrate`` as a user runs it, against ``etalon sim bench`` in a process of its own
(real time, real sockets): a run killed with SIGKILL in the middle of a point resumes at that point,
keeps what was done and ends with the same points as an uninterrupted run; SIGINT and SIGTERM stop
a run with every source in its safe state (checked on the simulator) and the exit status of the
signal; an instrument refusing a set-point aborts with every source safe; list, show, report and
dcc on the runs."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import main
from metrology.certificate.record import load_record
from metrology.dcc import validate
from tests.calibration.conftest import PROCEDURE, write_yaml
from tests.support.processes import REPO, child_env, etalon_command

READY_S = 60.0


def ask(port: int, message: str) -> str:
    """One SCPI exchange on the bench's control channel."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(message.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.decode().strip()


class SimBench:
    """``etalon sim bench`` in its own process, its addresses, and an agent config reaching it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.addresses_file = directory / "bench.json"
        self.process = subprocess.Popen(
            etalon_command(
                "sim", "bench", "--port-base", "0", "--addresses", str(self.addresses_file),
                "--tau", "0.05",
            ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(),
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + READY_S
        while not self.addresses_file.exists():
            assert self.process.poll() is None, "the bench did not start"
            assert time.monotonic() < deadline, "the bench gave no addresses"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written before the first line is printed
        self.addresses: dict[str, Any] = json.loads(self.addresses_file.read_text())

    def agent_config(self) -> Path:
        """The example bench's agent config, pointed at this bench, short timeouts."""
        data = yaml.safe_load((REPO / "config" / "agent-bench.yaml").read_text())
        for instrument in data["instruments"]:
            where = self.addresses.get(instrument["name"])
            if instrument["protocol"] == "visa" and where:
                instrument["resource"] = where["resource"]
                instrument["timeout_s"] = 1.0
            elif instrument["protocol"] == "modbus" and where:
                instrument["transport"]["port"] = where["port"]
        data["mqtt"] = {"port": 1, "connect_timeout_s": 1}
        data["spool"] = {"path": str(self.directory / "agent-spool.db")}
        return write_yaml(self.directory / "agent.yaml", data)

    def state(self) -> dict[str, Any]:
        """Everything the simulator knows, from its control channel."""
        result: dict[str, Any] = json.loads(ask(self.addresses["control"]["port"], "SIM:STATE?"))
        return result

    def fault(self, instrument: str, fault: str, value: str = "ON") -> None:
        """Switch a fault and wait until it is in force."""
        port = self.addresses["control"]["port"]
        reply = ask(port, f"SIM:FAULT {instrument},{fault},{value};*OPC?")
        assert reply == "1"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def sim_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimBench]:
    """One simulated bench for the module (each test clears the faults it switched on)."""
    bench = SimBench(tmp_path_factory.mktemp("sim-bench"))
    yield bench
    bench.stop()


def write_procedure(bench: SimBench, directory: Path) -> Path:
    agent = bench.agent_config()
    shutil.copy(agent, directory / "agent.yaml")
    data = json.loads(json.dumps(PROCEDURE))
    data["points"] = [{"nominal": 2, "range": 10}, {"nominal": -6, "range": 10}]
    data["readings"] = 6
    data["reading_interval_s"] = 0.02
    # real time, real noise: a 1 s window, and limits the source's own noise (1 µV rms on the
    # 10 V range) meets
    data["settling"] = {"interval_s": 0.05, "window_s": 0.8, "max_slope_per_s": 3e-5,
                        "max_std": 5e-6, "timeout_s": 20}  # fmt: skip
    data["publish"] = {"drain_s": 0}
    return write_yaml(directory / "procedure.yaml", data)


class Cli:
    """``etalon calibrate …`` in a process of its own, its output in a file."""

    def __init__(self, directory: Path, *args: str, name: str = "run") -> None:
        self.log = directory / f"{name}.log"
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            etalon_command("calibrate", *args), stdout=handle, stderr=subprocess.STDOUT,
            env=child_env({"ETALON_CALIBRATION_DIR": str(directory / "data")}),
            start_new_session=True,
        )  # fmt: skip
        handle.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = READY_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.text()}"
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r}:\n{self.text()}")

    def wait(self, timeout_s: float = 120) -> int:
        return self.process.wait(timeout_s)

    def run_id(self) -> str:
        return self.wait_for(r"run (\d{8}-\d{6}-[0-9a-f]{4}): ").group(1)


@dataclass
class Ran:
    """What a command printed and its exit status."""

    returncode: int
    stdout: str
    stderr: str


def calibrate(directory: Path, *args: str) -> Ran:
    """``etalon calibrate ACTION …`` in this process (the commands that are not about signals:
    a process each would only add its start-up time)."""
    out, err = io.StringIO(), io.StringIO()
    action, *rest = args
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["calibrate", action, "--data-dir", str(directory / "data"), *rest])
    return Ran(code, out.getvalue(), err.getvalue())


def show(directory: Path, run: str) -> dict[str, Any]:
    shown = calibrate(directory, "show", run, "--json")
    assert shown.returncode == 0, shown.stderr
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def test_a_run_killed_mid_point_resumes_there_and_ends_like_an_uninterrupted_run(
    sim_bench: SimBench, tmp_path: Path
) -> None:
    procedure = write_procedure(sim_bench, tmp_path)
    killed = Cli(tmp_path, "run", str(procedure), "--uut", "serial=MY12345", name="killed")
    run = killed.run_id()
    killed.wait_for(r"point 2 of 2")
    time.sleep(0.3)  # in the middle of the second point: it takes more than a second to settle
    os.killpg(killed.process.pid, signal.SIGKILL)
    killed.wait(30)
    before = show(tmp_path, run)
    assert before["status"] == "running"  # it never knew it died
    assert [p["index"] for p in before["points_done"]] == [0]

    resumed = Cli(tmp_path, "resume", run, name="resumed")
    assert resumed.wait() == 0, resumed.text()
    assert "resumed at point 2 of 2 (1 kept)" in resumed.text()
    assert sim_bench.state()["calibrator"]["output"] is False
    record = load_record(json.dumps(show(tmp_path, run)))
    assert record.points[0].model_dump(mode="json") == before["points_done"][0]  # kept as it was

    whole = Cli(tmp_path, "run", str(procedure), "--uut", "serial=MY12345", name="whole")
    assert whole.wait() == 0, whole.text()
    other = load_record(json.dumps(show(tmp_path, whole.run_id())))
    assert [(p.index, p.nominal, p.range, p.unit, p.status) for p in record.points] == [
        (p.index, p.nominal, p.range, p.unit, p.status) for p in other.points
    ]
    for mine, theirs in zip(record.points, other.points, strict=True):
        assert mine.status == "ok" and mine.budget is not None and theirs.budget is not None
        assert mine.error is not None and theirs.error is not None
        both = math.hypot(mine.budget.expanded_uncertainty, theirs.budget.expanded_uncertainty)
        assert abs(mine.error - theirs.error) <= both, (mine.nominal, mine.error, theirs.error)
    # the resumed record's writes: both attempts' set-points and safe states are in the audit
    assert sum(1 for w in record.writes if w.purpose == "safe_state") >= 2


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_with_every_source_in_its_safe_state(
    sim_bench: SimBench, tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    procedure = write_procedure(sim_bench, tmp_path)
    cli = Cli(tmp_path, "run", str(procedure), "--uut", "serial=MY12345")
    run = cli.run_id()
    cli.wait_for(r"point 1 of 2[^\n]*\n[^\n]*settl")
    assert sim_bench.state()["calibrator"]["output"] is True
    cli.process.send_signal(sig)
    assert cli.wait(60) == status, cli.text()
    assert sim_bench.state()["calibrator"]["output"] is False
    assert f"run {run} interrupted; resume it with: etalon calibrate resume {run}" in cli.text()
    assert show(tmp_path, run)["status"] == "interrupted"


def test_a_refused_set_point_aborts_with_every_source_in_its_safe_state(
    sim_bench: SimBench, tmp_path: Path
) -> None:
    procedure = write_procedure(sim_bench, tmp_path)
    cli = Cli(tmp_path, "run", str(procedure), "--uut", "serial=MY12345")
    run = cli.run_id()
    cli.wait_for(r"point 1 of 2")
    # refused now: a set-point of the first point, or of the second (whichever comes next)
    sim_bench.fault("calibrator", "REFUSE")
    assert cli.wait(60) == 6, cli.text()
    assert sim_bench.state()["calibrator"]["output"] is False
    assert "Settings conflict" in cli.text() and f"etalon calibrate resume {run}" in cli.text()
    shown = show(tmp_path, run)
    assert shown["status"] == "aborted" and "Settings conflict" in shown["reason"]

    # fixed: resumed to the end; then the outputs of a completed run
    sim_bench.fault("calibrator", "REFUSE", "OFF")
    resumed = Cli(tmp_path, "resume", run, name="resumed")
    assert resumed.wait() == 0, resumed.text()
    listed = calibrate(tmp_path, "list")
    assert run in listed.stdout and "completed" in listed.stdout
    report = tmp_path / "out" / "report.vi.html"
    made = calibrate(tmp_path, "report", run, "--html", str(report), "--report-lang", "vi")
    assert made.returncode == 0, made.stderr
    assert "Báo cáo hiệu chuẩn" in report.read_text(encoding="utf-8")
    document = tmp_path / "out" / "run.dcc.xml"
    exported = calibrate(tmp_path, "dcc", run, "--out", str(document))
    assert exported.returncode == 0, exported.stderr
    validate(document.read_bytes())
    again = calibrate(tmp_path, "resume", run)
    assert again.returncode == 0 and "is complete" in again.stdout
    missing = calibrate(tmp_path, "report", "20000101-000000-0000", "--html", str(report))
    assert missing.returncode == 1 and "no run 20000101-000000-0000" in missing.stderr
    shutil.rmtree(tmp_path / "out")
