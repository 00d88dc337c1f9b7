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


PKI_CHILD = textwrap.dedent(
    """
    import sys

    import yaml

    sys.modules["gateway"] = None  # every import of gateway or gateway.* now raises
    from app.cli import main

    pki_dir, sim_config = sys.argv[1:3]
    assert main(["pki", "init", "--dir", pki_dir]) == 0
    assert main(["pki", "issue", "agent", "--site", "lab", "--id", "a1", "--dir", pki_dir]) == 0
    config = yaml.safe_load(open(sim_config, encoding="utf-8"))
    config["mqtt"] = {
        "tls": {
            "ca_file": f"{pki_dir}/ca.pem",
            "cert_file": f"{pki_dir}/agent-lab-a1.pem",
            "key_file": f"{pki_dir}/agent-lab-a1.key",
        }
    }
    for agent_id, status in (("a1", 0), ("a2", 1)):  # the certificate names a1, not a2
        config.update(site="lab", id=agent_id)
        path = f"{pki_dir}/agent-{agent_id}.yaml"
        with open(path, "w", encoding="utf-8") as out:
            yaml.safe_dump(config, out)
        assert main(["check", path]) == status, agent_id
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == "gateway")
    assert loaded == ["gateway"], loaded
    print("agent pki: ok")
    """
)


def test_an_agent_machine_issues_and_checks_its_certificate_without_the_gateway(
    tmp_path: Path,
) -> None:
    """``etalon pki`` and the certificate-identity check of an agent config (core.pki) are agent
    paths too: an agent's machine may make its own key and certificate."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PKI_CHILD,
            str(tmp_path / "pki"),
            str(REPO / "config" / "agent-sim.yaml"),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "agent pki: ok" in result.stdout
    assert "the certificate's identity (CN) is 'lab/a1' but this process is 'lab/a2'" in (
        result.stderr
    )
