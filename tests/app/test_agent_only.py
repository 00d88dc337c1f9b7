"""An agent-only install never imports the gateway: ``etalon agent``, ``etalon check`` on an
agent config and ``etalon sim`` run with the ``gateway`` package made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.processes import child_env

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys

    sys.modules["gateway"] = None  # every import of gateway or gateway.* now raises
    from app.cli import main

    agent_config, bad_config, gateway_config = sys.argv[1:4]
    assert main(["check", agent_config]) == 0
    assert main(["agent", "-c", bad_config]) == 1
    try:
        main(["sim", "--help"])
    except SystemExit as stop:
        assert stop.code == 0
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == "gateway")
    assert loaded == ["gateway"], loaded  # only the poisoned entry itself
    print("agent-only: ok")
    try:
        main(["check", gateway_config])
    except ImportError:
        print("gateway config: needs the gateway")
    """
)


def test_agent_commands_do_not_import_the_gateway(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: lab\nid: a1\nspool: {path: x.db}\ninstruments: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(REPO / "config" / "agent-sim.yaml"),
            str(bad),
            str(REPO / "config" / "gateway-sqlite.yaml"),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "agent-only: ok" in result.stdout
    # The guard itself works: a gateway config does need the gateway, and the poisoned import
    # makes that fail loudly.
    assert "gateway config: needs the gateway" in result.stdout
