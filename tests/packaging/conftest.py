"""The wheel, built and installed once per session, started as soon as it is known to be needed.

Building the wheel and installing it with its dependencies' bytecode into a fresh venv takes
about a minute of mostly CPU (compiling scipy, numpy, pydantic, fastapi... to ``.pyc``). When the
session has collected a test that uses ``installed``, that work starts at once in a child
process at the lowest CPU priority (``nice -n 19``): it runs in the time the earlier tests spend
waiting on brokers, sockets and sleeps, and the packaging tests, which come late, find it done.
A session that selects no such test (``-m 'not packaging'``, ``-k``...) builds nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.packaging.wheel_build import REPO, WAIT_S

SCRIPT = Path(__file__).with_name("wheel_build.py")


@dataclass
class Build:
    """The background build: its folder, its process and the file its output goes to."""

    root: Path
    process: subprocess.Popen[bytes]
    log: Path


BUILD = pytest.StashKey[Build]()


def _start(config: pytest.Config) -> Build:
    root = Path(tempfile.mkdtemp(prefix="etalon-wheel-"))
    log = root / "build.log"
    nice = shutil.which("nice")
    command = [sys.executable, str(SCRIPT), str(root)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [nice, "-n", "19", *command] if nice else command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,  # its own process group: stopped as one at the session's end
        )
    build = Build(root, process, log)
    config.stash[BUILD] = build
    return build


def pytest_collection_finish(session: pytest.Session) -> None:
    # Under pytest-xdist every worker collects every test, and which one runs these is not known
    # yet: there the fixture builds on demand, in the worker that needs it.
    if hasattr(session.config, "workerinput"):
        return
    if any("installed" in getattr(item, "fixturenames", ()) for item in session.items):
        _start(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    build = config.stash.get(BUILD, None)
    if build is None:
        return
    if build.process.poll() is None:  # the session stopped early (-x, Ctrl-C)
        os.killpg(build.process.pid, signal.SIGKILL)
        build.process.wait(timeout=30)
    shutil.rmtree(build.root, ignore_errors=True)


@pytest.fixture(scope="session")
def installed(pytestconfig: pytest.Config) -> tuple[Path, dict[str, str]]:
    """A fresh venv, outside the source tree, with the wheel built from this checkout, and the
    environment to run its programs in (its own HOME, English)."""
    build = pytestconfig.stash.get(BUILD, None) or _start(pytestconfig)
    if build.process.poll() is None:
        # A test is waiting for it now: back to normal priority where allowed (lowering a
        # niceness needs CAP_SYS_NICE; without it the build finishes at the priority it has).
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.setpriority(os.PRIO_PGRP, build.process.pid, 0)
    status = build.process.wait(timeout=WAIT_S)
    assert status == 0, build.log.read_text(errors="replace")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HOME": str(build.root), "ETALON_LANG": "en"}
    return build.root / "venv", env
