"""What an agent's start-up spends (its CPU is inside every figure of a drain; the suite starts
hundreds of agents): the modules it imports, garbage collection, pydantic's plugin scan. Each test
runs ``etalon agent`` in a child up to the moment it would begin serving."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.launch import PYDANTIC_PLUGINS_ENV, collections_paused
from tests.support.processes import child_env

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import gc, json, sys

    import app.process
    import edge_agent.agent

    seen = {}


    class Probe(edge_agent.agent.Agent):
        def __init__(self, config):
            seen["collecting_while_built"] = gc.isenabled()
            super().__init__(config)


    def serve(name, main, started=None, **options):
        seen["collecting_when_served"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        return 0


    edge_agent.agent.Agent = Probe
    app.process.serve = serve
    from app.launch import main

    sys.argv = ["etalon", "agent", "-c", sys.argv[1]]
    assert main() == 0
    seen["modules"] = sorted(sys.modules)
    print(json.dumps(seen))
    """
)

CHECK_CHILD = textwrap.dedent(
    """
    import json, sys

    from app.launch import main

    sys.argv = ["etalon", "check", sys.argv[1]]
    assert main() == 0
    from pydantic.plugin import _loader

    print(json.dumps({"plugins_scanned": _loader._plugins is not None}))
    """
)


def _start(
    tmp_path: Path, env: dict[str, str] | None = None, child: str = CHILD
) -> dict[str, object]:
    """Run the agent of ``config/agent-sim.yaml`` up to its serving (or ``child``), in a child."""
    result = subprocess.run(
        [sys.executable, "-c", child, str(REPO / "config" / "agent-sim.yaml")],
        capture_output=True,
        text=True,
        env=child_env(env),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return seen


NOT_FOR_A_SIM_AGENT = (
    "drivers.setpoints",  # set-points: for the drivers that take them
    "drivers.write_steps",
    "drivers.modbus",  # other protocols (see tests/edge_agent/test_settings.py)
    "pymodbus",
    "asyncua",
    "pyvisa",
    "serial",
    "gateway",  # an agent-only install has none (tests/app/test_agent_only.py)
    "calibration",
    "hub",
)


def test_an_agent_starts_without_what_it_does_not_run(tmp_path: Path) -> None:
    modules = _start(tmp_path)["modules"]
    assert isinstance(modules, list)
    loaded = [
        name
        for name in NOT_FOR_A_SIM_AGENT
        if any(m == name or m.startswith(name + ".") for m in modules)
    ]
    assert loaded == []
    assert "drivers.sim.inprocess" in modules  # the probe sees what the agent does load


def test_the_start_up_runs_without_garbage_collection_and_freezes_what_it_built(
    tmp_path: Path,
) -> None:
    seen = _start(tmp_path)
    assert seen["collecting_while_built"] is False
    assert seen["collecting_when_served"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_pydantic_scans_for_no_plugins_unless_told_to(tmp_path: Path) -> None:
    assert _start(tmp_path, child=CHECK_CHILD)["plugins_scanned"] is False
    # A user who wants pydantic's plugins sets the variable (empty: none disabled).
    told = _start(tmp_path, {PYDANTIC_PLUGINS_ENV: ""}, CHECK_CHILD)
    assert told["plugins_scanned"] is True


@pytest.mark.parametrize("enabled", [True, False])
def test_a_pause_restores_collection_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with collections_paused():
            assert not gc.isenabled()
            with collections_paused():  # nested: the outer pause goes on
                pass
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
