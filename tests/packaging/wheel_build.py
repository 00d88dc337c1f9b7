"""Build the wheel from what git tracks and install it into a fresh venv, as docs/install.md says.

Run as a script (``python tests/packaging/wheel_build.py ROOT``) by tests/packaging/conftest.py,
which starts it at low priority as soon as the session has collected a test that needs it, so the
minute it takes (most of it compiling the dependencies' bytecode) overlaps the rest of the suite.
ROOT gets ``tree/`` (the copy built from), ``dist/`` (sdist and wheel) and ``venv/``.

uv builds and installs from its cache when it can (offline first, then with the network: a fresh
machine's first run); without uv it falls back to ``python -m build``, ``python -m venv`` and pip,
which take minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 1800
"""How long a test waits for the build (the fallback without uv installs with pip: minutes)."""


def uv() -> str | None:
    """uv beside this interpreter (scripts/install puts it there), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def tracked_files() -> list[str]:
    """The files a fresh clone of this checkout would have (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    return [name for name in listed.stdout.decode().split("\0") if name and (REPO / name).exists()]


def base_python() -> str:
    """The interpreter this venv was made from: the fresh venv gets the same Python."""
    return str(getattr(sys, "_base_executable", sys.executable))


def _run(command: Sequence[str], timeout: float, cwd: Path) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}\n{result.stdout}\n{result.stderr}")


def _offline_first(command: list[str], timeout: float, cwd: Path) -> None:
    """A uv command from its cache alone, else with the network."""
    offline = subprocess.run(
        [*command, "--offline"], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if offline.returncode != 0:
        _run(command, timeout, cwd)


def build_and_install(root: Path) -> Path:
    """Copy the tracked tree under ``root``, build its wheel, install it into ``root/venv``."""
    tree, dist, venv = root / "tree", root / "dist", root / "venv"
    for name in tracked_files():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    found = uv()
    if found is not None:
        # sdist first, then the wheel from the sdist, as `python -m build` does.
        _offline_first([found, "build", "--out-dir", str(dist), str(tree)], 600, root)
        _run([found, "venv", "--quiet", "--python", base_python(), str(venv)], 120, root)
        (wheel,) = dist.glob("*.whl")
        # --compile-bytecode as docs/install.md says (and as pip does by default).
        install = [found, "pip", "install", "--quiet", "--compile-bytecode"]
        install += ["--python", str(venv / "bin" / "python"), str(wheel)]
        _offline_first(install, 900, root)
    else:
        _run([sys.executable, "-m", "build", "--outdir", str(dist), str(tree)], 900, root)
        _run([base_python(), "-m", "venv", str(venv)], 120, root)
        (wheel,) = dist.glob("*.whl")
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], 1200, root)
    return venv


if __name__ == "__main__":
    # Not the checkout's venv: the build and the fresh venv must not see it.
    for variable in ("PYTHONPATH", "VIRTUAL_ENV"):
        os.environ.pop(variable, None)
    try:
        build_and_install(Path(sys.argv[1]))
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
