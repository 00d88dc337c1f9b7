"""A command run on a pseudo-terminal, as a user runs it, and stopped with Ctrl-C.

The terminal's Ctrl-C sends SIGINT to the whole foreground process group — the command and every
process it started (a process-pool worker too). :meth:`TerminalRun.ctrl_c` does the same: the
command runs in its own session and SIGINT goes to its process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.processes import child_env


class TerminalRun:
    """``command`` with stdin, stdout and stderr on one pseudo-terminal; its output collected."""

    def __init__(
        self, command: Sequence[str], cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        master, slave = os.openpty()
        self._master = master
        self.output = b""
        self.process = subprocess.Popen(
            list(command),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=child_env({"COLUMNS": "200", "LINES": "50", **(env or {})}),
            start_new_session=True,
        )
        os.close(slave)

    def _pump(self, timeout_s: float) -> bool:
        """Read what the terminal has within ``timeout_s``; False once it is closed."""
        ready, _, _ = select.select([self._master], [], [], timeout_s)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        if not chunk:
            return False
        self.output += chunk
        return True

    @property
    def text(self) -> str:
        """Everything the command wrote so far."""
        return self.output.decode("utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> None:
        """Wait until the output matches ``pattern``; fails with the output if it never does."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while not regex.search(self.text):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self._pump(0.2)
                if regex.search(self.text):
                    return
                raise AssertionError(f"never printed {pattern!r}:\n{self.text}")
            self._pump(0.2)

    def idle(self, seconds: float) -> None:
        """Collect the output for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._pump(max(0.0, deadline - time.monotonic())):
            pass

    def children(self) -> list[str]:
        """The command lines of the command's child processes (from /proc)."""
        return [line for _, parent, _, line in _processes() if parent == self.process.pid]

    def wait_for_child(self, needle: str, timeout_s: float = 60.0) -> None:
        """Wait until the command has a child process whose command line has ``needle``."""
        deadline = time.monotonic() + timeout_s
        while not any(needle in line for line in self.children()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no child with {needle!r} in {self.children()}:\n{self.text}")
            self._pump(0.1)

    def ctrl_c(self, timeout_s: float = 60.0, again_after_s: float | None = None) -> int:
        """SIGINT to the command's process group, as the terminal sends it (and once more
        ``again_after_s`` later if it still runs: a second Ctrl-C); its exit status."""
        return self.signal_group(signal.SIGINT, timeout_s, again_after_s)

    def signal_group(
        self, signum: int, timeout_s: float = 60.0, again_after_s: float | None = None
    ) -> int:
        """``signum`` to the command's process group (SIGTERM: as systemd stops a service's
        control group); the command's exit status, once it and every process of its group
        have ended (a process left behind holds the terminal: that fails here)."""
        os.killpg(self.process.pid, signum)
        started = time.monotonic()
        again = None if again_after_s is None else started + again_after_s
        while self.process.poll() is None and time.monotonic() < started + timeout_s:
            if again is not None and time.monotonic() >= again:
                os.killpg(self.process.pid, signum)
                again = None
            self._pump(0.02 if again is not None else 0.1)
        if self.process.poll() is None:
            name = signal.Signals(signum).name
            raise AssertionError(f"still running {timeout_s:g} s after {name}:\n{self.text}")
        # What the group's other processes (a pool worker) write after the command exited,
        # until the last of them closes the terminal.
        deadline = time.monotonic() + 30
        while self._pump(0.5):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"processes of the group still run 30 s after the command ended: "
                    f"{self.group()}:\n{self.text}"
                )
        return self.process.returncode

    def group(self) -> list[str]:
        """The command lines of the processes still in the command's process group. A process
        that is exiting (its files closed, the terminal with them, its memory gone: an empty
        command line, not yet a zombie) is waited for, up to 30 s: it is not left behind."""
        pid = self.process.pid
        deadline = time.monotonic() + 30
        while True:
            left = [line for state, _, group, line in _processes() if group == pid and state != "Z"]
            if all(left) or time.monotonic() > deadline:
                return [line or "<exiting>" for line in left]
            time.sleep(0.05)

    def close(self) -> None:
        """Kill whatever is left of the process group and close the terminal."""
        with contextlib.suppress(ProcessLookupError):  # the command, or what it left behind
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        os.close(self._master)


def _processes() -> list[tuple[str, int, int, str]]:
    """Every process's state, parent, process group and command line (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, parent, group = stat.rsplit(")", 1)[1].split()[:3]
        line = cmdline.replace(b"\0", b" ").decode(errors="replace")
        out.append((state, int(parent), int(group), line))
    return out
