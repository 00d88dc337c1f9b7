"""A command run on a pseudo-terminal, as a user runs it, and stopped with Ctrl-C.

The terminal's Ctrl-C sends SIGINT to the whole foreground process group — the command and every
process it started (a process-pool worker too). :meth:`TerminalRun.ctrl_c` does the same: the
command runs in its own session and SIGINT goes to its process group.
"""

from __future__ import annotations

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

    def children(self) -> list[str]:
        """The command lines of the command's child processes (from /proc)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                out.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        return out

    def wait_for_child(self, needle: str, timeout_s: float = 60.0) -> None:
        """Wait until the command has a child process whose command line has ``needle``."""
        deadline = time.monotonic() + timeout_s
        while not any(needle in line for line in self.children()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no child with {needle!r} in {self.children()}:\n{self.text}")
            self._pump(0.1)

    def ctrl_c(self, timeout_s: float = 60.0) -> int:
        """SIGINT to the command's process group, as the terminal sends it; its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self._pump(0.1)
        if self.process.poll() is None:
            raise AssertionError(f"still running {timeout_s:g} s after Ctrl-C:\n{self.text}")
        # What the group's other processes (a pool worker) write after the command exited.
        while self._pump(0.5):
            pass
        return self.process.returncode

    def close(self) -> None:
        """Kill whatever is left of the process group and close the terminal."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        os.close(self._master)
