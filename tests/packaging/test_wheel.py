"""The wheel as a lab installs it: built from what git tracks, installed into a fresh venv outside
the source tree, carrying every data file, and running the demo and a config check from there.

uv builds and installs (from its cache when it can: offline first), so the whole test takes
about 40 s; without uv it falls back to ``python -m build``, ``python -m venv`` and pip, which
take minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.packaging


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def _run(command: Sequence[str], timeout: float, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _offline_first(command: list[str], timeout: float, cwd: Path, env: dict[str, str]) -> None:
    """A uv command from its cache alone, else with the network (a fresh machine's first run)."""
    offline = subprocess.run(
        [*command, "--offline"], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )
    if offline.returncode != 0:
        _run(command, timeout, cwd, env)


def _tracked_files() -> list[str]:
    """The files a fresh clone of this checkout would have (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    return [name for name in listed.stdout.decode().split("\0") if name and (REPO / name).exists()]


def _data_files(files: list[str]) -> list[str]:
    """Files under src/ that are not Python: what the wheel must carry besides the code."""
    return sorted(
        name.removeprefix("src/")
        for name in files
        if name.startswith("src/") and not name.endswith(".py") and ".egg-info/" not in name
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv, outside the source tree, with the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    tree, dist, venv = root / "tree", root / "dist", root / "venv"
    for name in _tracked_files():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HOME": str(root), "ETALON_LANG": "en"}
    base_python = sys._base_executable  # the interpreter this venv was made from
    uv = _uv()
    if uv is not None:
        # sdist first, then the wheel from the sdist, as `python -m build` does.
        _offline_first([uv, "build", "--out-dir", str(dist), str(tree)], 300, root, env)
        _run([uv, "venv", "--quiet", "--python", base_python, str(venv)], 120, root, env)
        (wheel,) = dist.glob("*.whl")
        # --compile-bytecode as docs/install.md says (and as pip does by default).
        install = [uv, "pip", "install", "--quiet", "--compile-bytecode"]
        install += ["--python", str(venv / "bin" / "python")]
        _offline_first([*install, str(wheel)], 600, root, env)
    else:
        _run([sys.executable, "-m", "build", "--outdir", str(dist), str(tree)], 600, root, env)
        _run([base_python, "-m", "venv", str(venv)], 120, root, env)
        (wheel,) = dist.glob("*.whl")
        _run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
            1200,
            root,
            env,
        )
    return venv, env


def _site_packages(venv: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return venv / relative


def test_the_wheel_carries_every_data_file(installed: tuple[Path, dict[str, str]]) -> None:
    venv, _ = installed
    site = _site_packages(venv)
    files = _tracked_files()
    expected = _data_files(files)
    assert "gateway/web/index.html" in expected
    assert "drivers/modbus/profiles/chiller-controller.yaml" in expected
    missing = [name for name in expected if not (site / name).is_file()]
    assert not missing, f"not in the wheel: {missing}"
    shared = venv / "share" / "etalon"
    for unit in ("etalon-agent.service", "etalon-gateway.service"):
        assert (shared / "systemd" / unit).read_text() == (
            REPO / "packaging" / "systemd" / unit
        ).read_text()
    examples = [
        name
        for name in files
        if name.startswith("config/") and name.count("/") == 1 and name.endswith((".yaml", ".conf"))
    ]
    assert examples
    missing = [name for name in examples if not (shared / name).is_file()]
    assert not missing, f"example configs not installed: {missing}"
    assert (shared / "config" / "profiles" / "thp-floats.yaml").is_file()


def test_the_installed_modules_are_compiled(installed: tuple[Path, dict[str, str]]) -> None:
    """Bytecode written at install time (pip's default, uv's --compile-bytecode): a service may
    not write under /opt and would otherwise compile every module at every start."""
    venv, _ = installed
    site = _site_packages(venv)
    tag = sys.implementation.cache_tag
    for module in ("app/cli", "drivers/modbus/driver", "gateway/service", "pydantic/main"):
        folder, _, name = module.rpartition("/")
        assert (site / folder / "__pycache__" / f"{name}.{tag}.pyc").is_file(), module


def test_the_installed_package_is_the_one_imported(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    out = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import gateway, drivers.modbus.profiles as m, drivers.visa.profiles as v; "
            "print(gateway.__file__); print(m.shipped_profiles()); print(v.shipped_profiles())",
        ],
        60,
        venv.parent,
        env,
    )
    where, modbus, visa = out.splitlines()
    assert where.startswith(str(venv)), where
    assert "chiller-controller" in modbus and "generic-dmm" in visa


def test_the_demo_runs_from_the_wheel(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    data = venv.parent / "demo-data"
    out = _run(
        [str(venv / "bin" / "etalon"), "demo", "--duration", "10", "--data-dir", str(data)],
        180,
        venv.parent,
        env,
    )
    assert "every reading arrived exactly once" in out, out
    assert "chiller-1" in out  # the Modbus instrument of the demo, from its shipped profile


def test_check_runs_from_the_wheel(installed: tuple[Path, dict[str, str]]) -> None:
    """An example that names a shipped profile and one that names a profile file next to it,
    checked by the installed command from another directory."""
    venv, env = installed
    examples = [REPO / "config" / "modbus-tcp.yaml", REPO / "config" / "modbus-rtu-over-tcp.yaml"]
    out = _run([str(venv / "bin" / "etalon"), "check", *map(str, examples)], 120, venv.parent, env)
    assert out.count("OK (agent config)") == 2, out
