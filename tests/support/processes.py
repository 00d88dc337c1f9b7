"""Agent and gateway as separate processes, as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write a config file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def etalon_command(*args: str) -> list[str]:
    """The ``etalon`` command line, run by this interpreter (so a worktree's sources are used).

    With ETALON_PROFILE_DIR set, each process writes a cProfile file there (for benchmarks)."""
    profile_dir = os.environ.get("ETALON_PROFILE_DIR")
    if profile_dir:
        out = Path(profile_dir) / f"{args[0]}-{time.monotonic_ns()}.prof"
        return [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "app.launch", *args]
    return [sys.executable, "-m", "app.launch", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an etalon child process."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


class EtalonProcess:
    """``etalon agent -c`` or ``etalon gateway -c`` in its own process, its log in a file."""

    def __init__(
        self, role: str, config: Path, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.role = role
        self.config = config
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> EtalonProcess:
        """Start (logs appended across restarts)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            etalon_command(self.role, "-c", str(self.config)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(self.env),
            start_new_session=True,
        )
        log.close()
        return self

    def wait_log(self, pattern: str, timeout_s: float = 20.0, after: int = 0) -> re.Match[str]:
        """Wait for a log line matching ``pattern`` (searching from byte ``after``)."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.log()[after:])
            if match:
                return match
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.role} exited ({self.process.returncode}):\n{self.log()}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"{self.role}: no {pattern!r} within {timeout_s} s:\n{self.log()[-4000:]}"
        )

    def log(self) -> str:
        """The whole log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait: a clean stop. Returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self.process = None
        return code

    def kill9(self) -> None:
        """SIGKILL: no cleanup at all."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def final_metrics(self) -> dict[str, int]:
        """Counters from the last ``... stopped`` line of the log."""
        lines = [line for line in self.log().splitlines() if f"{self.role} stopped" in line]
        assert lines, f"{self.role} never stopped cleanly:\n{self.log()[-3000:]}"
        values = {"True": 1, "False": 0}
        return {
            k: values[v] if v in values else int(float(v))
            for k, v in re.findall(r"(\w+)=(-?[\d.]+|True|False)\b", lines[-1])
        }

    def ensure_stopped(self) -> None:
        """Kill if still running (test teardown)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
