"""The wheel as a lab installs it: built from what git tracks, installed into a fresh venv outside
the source tree, carrying every data file, and running the demo, the dashboard's page loader, DCC
validation and config checks from there.

The build and install (``installed``, tests/packaging/conftest.py) happen once per session, in
the background from the moment the session has collected these tests. The first test to use it
may wait for it: the pytest timeout here allows for that wait, which has its own bound (every
command of the build has a timeout, and the wait itself ``WAIT_S``).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.packaging.wheel_build import REPO, WAIT_S, tracked_files

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(WAIT_S + 300)]


def _run(command: Sequence[str], timeout: float, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _data_files(files: list[str]) -> list[str]:
    """Files under src/ that are not Python: what the wheel must carry besides the code."""
    return sorted(
        name.removeprefix("src/")
        for name in files
        if name.startswith("src/") and not name.endswith(".py") and ".egg-info/" not in name
    )


def _site_packages(venv: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return venv / relative


def test_the_wheel_carries_every_data_file(installed: tuple[Path, dict[str, str]]) -> None:
    venv, _ = installed
    site = _site_packages(venv)
    files = tracked_files()
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
    examples = [name for name in files if name.startswith("config/")]
    assert "config/procedures/dmm-dcv.yaml" in examples
    missing = [name for name in examples if not (shared / name).is_file()]
    assert not missing, f"example configs not installed: {missing}"


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


def test_the_console_script_enters_through_launch(installed: tuple[Path, dict[str, str]]) -> None:
    """The installed ``etalon`` script takes signals before it imports the CLI (app.launch), and
    a short command run through it prints and exits 0."""
    venv, env = installed
    script = (venv / "bin" / "etalon").read_text()
    assert "from app.launch import main" in script, script
    out = _run([str(venv / "bin" / "etalon"), "--help"], 60, venv.parent, env)
    assert "pki" in out and "token" in out, out


def test_the_demo_runs_from_the_wheel(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    data = venv.parent / "demo-data"
    command = [str(venv / "bin" / "etalon"), "demo", "--duration", "10", "--port", "0"]
    out = _run([*command, "--data-dir", str(data)], 180, venv.parent, env)
    assert "every reading arrived exactly once" in out, out
    assert "chiller-1" in out  # the Modbus instrument of the demo, from its shipped profile
    assert re.search(r"dashboard .*: http://127\.0\.0\.1:\d+/ui/", out), out  # its API was up


def test_the_installed_dashboard_reads_its_pages(installed: tuple[Path, dict[str, str]]) -> None:
    """The dashboard reads its pages with importlib.resources from the package ``gateway.web``:
    from the installed package, each page, script and style sheet is the checkout's, byte for
    byte (the pages added since, such as calibrations.html, included)."""
    venv, env = installed
    web = REPO / "src" / "gateway" / "web"
    pages = sorted(
        name.removeprefix("src/gateway/web/")
        for name in tracked_files()
        if name.startswith("src/gateway/web/") and name.endswith((".html", ".js", ".css"))
    )
    assert "calibrations.html" in pages and "audit.js" in pages
    out = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import hashlib, sys; from importlib import resources; web = resources.files("
            "'gateway.web'); print(web); [print(hashlib.sha256(web.joinpath(n).read_bytes())"
            ".hexdigest()) for n in sys.argv[1:]]",
            *pages,
        ],
        60,
        venv.parent,
        env,
    )
    where, *digests = out.splitlines()
    assert where.startswith(str(venv)), where
    assert digests == [hashlib.sha256((web / name).read_bytes()).hexdigest() for name in pages]


def test_the_installed_package_validates_a_signed_dcc(
    installed: tuple[Path, dict[str, str]],
) -> None:
    """A signed DCC's ds:Signature is validated strictly: the installed package finds the DCC,
    D-SI and XML-signature schemas it ships, offline."""
    venv, env = installed
    signed = REPO / "tests" / "metrology" / "dcc" / "data" / "zener-signed.xml"
    out = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys, metrology.dcc as d, metrology.dcc.schema as s; "
            "d.validate(open(sys.argv[1], 'rb').read()); print(s.XMLDSIG_XSD)",
            str(signed),
        ],
        120,
        venv.parent,
        env,
    )
    assert out.strip().startswith(str(venv)), out
    assert b"<ds:Signature" in signed.read_bytes()


def test_check_runs_from_the_wheel(installed: tuple[Path, dict[str, str]]) -> None:
    """An example that names a shipped profile and one that names a profile file next to it,
    checked by the installed command from another directory."""
    venv, env = installed
    examples = [REPO / "config" / "modbus-tcp.yaml", REPO / "config" / "modbus-rtu-over-tcp.yaml"]
    out = _run([str(venv / "bin" / "etalon"), "check", *map(str, examples)], 120, venv.parent, env)
    assert out.count("OK (agent config)") == 2, out


def test_an_installed_procedure_finds_its_agent_config(
    installed: tuple[Path, dict[str, str]],
) -> None:
    """The example procedure names its bench's agent config relative to itself
    (../agent-bench.yaml): installed under share/etalon/config, the pair still checks."""
    venv, env = installed
    procedure = venv / "share" / "etalon" / "config" / "procedures" / "dmm-dcv.yaml"
    out = _run([str(venv / "bin" / "etalon"), "check", str(procedure)], 120, venv.parent, env)
    assert "OK (calibration procedure config)" in out, out
