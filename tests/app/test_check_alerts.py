"""Alert rules in the validated config: ``etalon check gateway.yaml agent.yaml`` refuses a rule
naming a channel the agents do not have, with the file, line, field and reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from app.configs import check_main
from tests.app.test_check import EXAMPLE_ENV
from tests.support.processes import child_env, etalon_command

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "config" / "agent-sim.yaml"
EXAMPLE = REPO / "config" / "gateway-alerts.yaml"


@pytest.fixture(autouse=True)
def _example_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(key, value)


def gateway_with(tmp_path: Path, rules: list[dict[str, object]]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "site": "hanoi",
                "spool": {"path": "/tmp/s.db"},
                "store": {"kind": "sqlite", "path": "/tmp/r.db"},
                "records": {"path": "/tmp/rec.db"},
                "alerts": {"rules": rules},
            },
            sort_keys=False,
        )
    )
    return path


def test_the_example_is_valid_against_the_example_agent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check_main([EXAMPLE, AGENT], "en") == 0
    out = capsys.readouterr().out
    assert f"{EXAMPLE}: OK (gateway config)" in out


def test_a_rule_naming_a_channel_the_agent_does_not_have_is_a_config_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = gateway_with(
        tmp_path,
        [
            {
                "id": "room",
                "kind": "limits",
                "preset": "calibration-room-temperature",
                "channels": ["hanoi/sim-bench/room-a/temperature", "hanoi/sim-bench/room-a/co2"],
            },
            {
                "id": "std",
                "kind": "limits",
                "channels": ["hanoi/*/*/*"],
                "tags": {"standard": "X"},
                "levels": [{"severity": "alarm", "high": 1}],
            },
            {"id": "elsewhere", "kind": "stale", "channels": ["hcmc/bench-2/dmm/ch-1"]},
        ],
    )
    assert check_main([path, AGENT], "en") == 1
    captured = capsys.readouterr()
    lines = path.read_text().splitlines()
    co2_line = next(i for i, text in enumerate(lines, 1) if "room-a/co2" in text)
    assert (
        f"{path}:{co2_line}: alerts.rules[0].channels[1]: hanoi/sim-bench/room-a/co2 names no "
        "channel of agent hanoi/sim-bench (it has hanoi/sim-bench/resistor-10k/bath-temperature,"
    ) in captured.err
    assert (
        "alerts.rules[1].channels[0]: hanoi/*/*/* names no channel of agent "
        "hanoi/sim-bench with tags {'standard': 'X'}" in captured.err
    )
    # An agent not given cannot be checked here: noted, not failed.
    assert "rule 'elsewhere': hcmc/bench-2/dmm/ch-1 names no agent given here" in captured.out
    assert f"{AGENT}: OK (agent config)" in captured.out


def test_without_agent_configs_the_check_says_what_it_could_not_check(tmp_path: Path) -> None:
    path = gateway_with(
        tmp_path, [{"id": "room", "kind": "stale", "channels": ["hanoi/sim-bench/room-a/co2"]}]
    )
    done = subprocess.run(
        etalon_command("check", str(path)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "alert rules' channels not checked: give the agent configs too" in done.stdout
