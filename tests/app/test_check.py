"""Config errors a person can act on, the examples in config/, the registry, the schemas."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from app.configs import check_main, config_model, load_any, schemas
from tests.support.processes import child_env, etalon_command

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "config"
EXAMPLE_ENV = {
    "ETALON_MQTT_PASSWORD": "x",
    "ETALON_INFLUX_TOKEN": "x",
    "ETALON_INFLUX_PASSWORD": "x",
    "ETALON_TOKEN_WALL": "wall-screen-token-0123456789",
    "ETALON_TOKEN_OPS": "ops-desk-token-0123456789",
    "ETALON_TOKEN_QM": "quality-manager-token-0123456789",
    "ETALON_SMTP_PASSWORD": "x",
    "ETALON_WEBHOOK_SECRET": "x",
    "ETALON_HUB_DB_PASSWORD": "x",
    "ETALON_HUB_TOKEN": "x",
    "ETALON_API_TOKEN_VIEWER": "example-viewer-token",
    "ETALON_API_TOKEN_OPERATOR": "example-operator-token",
    "ETALON_API_TOKEN_ADMIN": "example-admin-token",
}


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_each_kind_of_mistake_names_file_line_field_and_reason(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CASES / f"{case}.yaml"
    assert check_main([path], "en") == 1
    err = capsys.readouterr().err
    for expected in (CASES / f"{case}.expected").read_text().splitlines():
        assert expected.format(file=path) in err, err


def test_check_exit_status_and_output_from_the_command_line(tmp_path: Path) -> None:
    good = REPO / "config" / "agent-sim.yaml"
    bad = CASES / "unknown_key.yaml"
    ok = subprocess.run(
        etalon_command("check", str(good)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: OK (agent config)" in ok.stdout
    mixed = subprocess.run(
        etalon_command("--lang", "vi", "check", str(good), str(bad)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert mixed.returncode == 1
    assert "hợp lệ" in mixed.stdout
    assert "trường không được phép" in mixed.stderr  # pydantic's reason, in Vietnamese
    assert "1 trên 2 tệp không hợp lệ" in mixed.stderr
    # The long-running commands refuse a bad config the same way, with exit status 1.
    agent = subprocess.run(
        etalon_command("agent", "-c", str(bad)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert agent.returncode == 1
    assert "intervall: Extra inputs are not permitted" in agent.stderr


EXAMPLES = sorted((REPO / "config").glob("*.yaml"))


EXAMPLE_PKI = "/etc/etalon/pki/"


def with_example_pki(path: Path, tmp: Path) -> Path:
    """An example that names files in /etc/etalon/pki/, moved to a PKI that `etalon pki` makes
    in ``tmp`` for the example's site and ids: its file names are the ones `etalon pki` writes."""
    from core import pki

    directory = tmp / "pki"
    pki.init_ca(directory)
    pki.issue_server(directory, "api", ["gateway.lab.example"])
    pki.issue_gateway(directory, "hanoi", "gw-1")
    pki.issue_agent(directory, "hanoi", "sim-bench")
    moved = tmp / path.name
    moved.write_text(path.read_text().replace(EXAMPLE_PKI, f"{directory}/"))
    return moved


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_is_valid(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(key, value)
    if EXAMPLE_PKI in path.read_text():
        path = with_example_pki(path, tmp_path)
    load_any(path)


def test_each_config_kind_has_its_own_model() -> None:
    from app.demo.config import DemoConfig
    from edge_agent.config import AgentConfig
    from gateway.config import GatewayConfig
    from hub.config import HubConfig

    kinds = ("agent", "gateway", "hub", "demo")
    assert [config_model(kind) for kind in kinds] == [
        AgentConfig,
        GatewayConfig,
        HubConfig,
        DemoConfig,
    ]


def test_demo_example_is_the_embedded_default() -> None:
    from app.demo.config import default_config_text

    assert (REPO / "config" / "demo.yaml").read_text() == default_config_text()


def test_published_schemas_match_the_models() -> None:
    published = REPO / "docs" / "schemas"
    generated = schemas()
    assert sorted(p.name for p in published.glob("*.json")) == sorted(
        f"{name}.schema.json" for name in generated
    )
    for name, schema in generated.items():
        on_disk = json.loads((published / f"{name}.schema.json").read_text())
        assert on_disk == schema, (
            f"docs/schemas/{name}.schema.json is stale: run `etalon schema --out docs/schemas`"
        )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_is_valid_under_its_published_schema(path: Path) -> None:
    """An editor checks a config against docs/schemas/*-config.schema.json as the user types:
    what etalon loads, the schema must accept — instruments that name a profile and adjust or
    pick its channels by name included."""
    import jsonschema_rs
    import yaml

    from app.configs import config_kind

    data = yaml.safe_load(path.read_text())
    published = REPO / "docs" / "schemas" / f"{config_kind(data)}-config.schema.json"
    schema = json.loads(published.read_text())
    problems = [
        f"{'/'.join(map(str, error.instance_path))}: {error.message[:300]}"
        for error in jsonschema_rs.validator_for(schema).iter_errors(data)
    ]
    assert not problems, problems


@pytest.mark.parametrize(
    ("instrument", "valid"),
    [
        # Modbus: with a profile, an entry named like its channel may give only what it changes.
        ({"protocol": "modbus", "profile": "thp-transmitter", "channels": [{"name": "t"}]}, True),
        # Without one, a channel is written out: its address and unit are required.
        ({"protocol": "modbus", "channels": [{"name": "t"}]}, False),
        ({"protocol": "modbus", "profile": None, "channels": [{"name": "t"}]}, False),
        (
            {"protocol": "modbus", "channels": [{"name": "t", "address": 0, "unit": "V"}]},
            True,
        ),
        # An adjustment is still a channel's fields: an unknown key or a bad value is refused.
        (
            {"protocol": "modbus", "profile": "p", "channels": [{"name": "t", "colour": 1}]},
            False,
        ),
        ({"protocol": "modbus", "profile": "p", "channels": [{"name": "t", "scale": "x"}]}, False),
        ({"protocol": "modbus", "profile": "p", "channels": [{"unit": "V"}]}, False),
        # VISA: a channel's unit defaults to its measurement's.
        (
            {
                "protocol": "visa",
                "resource": "TCPIP::127.0.0.1::5025::SOCKET",
                "profile": "generic-dmm",
                "channels": [{"name": "v", "measurement": "voltage_dc"}],
            },
            True,
        ),
    ],
)
def test_the_published_agent_schema_takes_profile_channels_by_name(
    instrument: dict[str, object], valid: bool
) -> None:
    import jsonschema_rs

    schema = json.loads((REPO / "docs" / "schemas" / "agent-config.schema.json").read_text())
    if instrument["protocol"] == "modbus":
        instrument = {"transport": {"kind": "tcp", "host": "127.0.0.1"}, **instrument}
    config = {
        "site": "s",
        "id": "a",
        "mqtt": {"host": "127.0.0.1"},
        "spool": {"path": "/tmp/spool.db"},
        "instruments": [
            {"name": "dev", **instrument},
        ],
    }
    assert jsonschema_rs.validator_for(schema).is_valid(config) is valid


PROFILES = sorted((REPO / "src" / "drivers").glob("*/profiles/*.yaml")) + sorted(
    (REPO / "config" / "profiles").glob("*.yaml")
)


@pytest.mark.parametrize(
    "path", PROFILES, ids=[f"{p.parent.parent.name}/{p.name}" for p in PROFILES]
)
def test_every_shipped_profile_is_valid_under_its_published_schema(path: Path) -> None:
    import jsonschema_rs
    import yaml

    kind = "visa" if "visa" in path.parts else "modbus"
    schema = json.loads((REPO / "docs" / "schemas" / f"{kind}-profile.schema.json").read_text())
    data = yaml.safe_load(path.read_text())
    assert [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(data)] == []
