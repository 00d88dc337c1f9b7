"""An agent validates its config against the model of the protocols it names (its start-up
builds no other protocol's models): the same config object's values, the same errors at the
same places, as the model of every protocol; anything it cannot tell goes to that model."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from drivers.registry import DRIVERS
from edge_agent.config import AgentConfig
from edge_agent.settings import agent_config_model

REPO = Path(__file__).resolve().parents[2]


def _examples() -> list[dict[str, Any]]:
    """Every registered protocol's example agent config, and one naming two protocols."""
    configs = [yaml.safe_load((REPO / e.example_config).read_text()) for e in DRIVERS.values()]
    two = copy.deepcopy(configs[1])
    two["instruments"] = configs[0]["instruments"] + configs[1]["instruments"]
    return [*configs, two]


def _broken(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Ways a user gets a config wrong, each alone."""
    out = []
    for change in (
        lambda c: c["instruments"][0].update(unknown_key=1),
        lambda c: c["instruments"][0].update(name="no spaces allowed"),
        lambda c: c["instruments"][0].pop("channels", None),
        lambda c: c["instruments"][0]["channels"][0].update(interval_s=-1),
        lambda c: c["instruments"][0]["channels"].append(c["instruments"][0]["channels"][0]),
        lambda c: c["instruments"].append(copy.deepcopy(c["instruments"][0])),
        lambda c: c["instruments"][0].update(protocol="nope"),
        lambda c: c["instruments"][0].pop("protocol"),
        lambda c: c["instruments"][0].update(protocol=3),
        lambda c: c.update(instruments=[]),
        lambda c: c.update(instruments={"a": 1}),
        lambda c: c.update(instruments=["sim"]),
        lambda c: c["spool"].update(max_bytes="big"),
        lambda c: c.update(site="Bad Site", metrics_interval_s=0),
    ):
        broken = copy.deepcopy(config)
        change(broken)
        out.append(broken)
    return out


def _outcome(model: type[Any], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data, context={}).model_dump()
    except ValidationError as exc:  # an exception in a context is equal to itself alone
        errors = exc.errors(include_url=False)
        return [{**e, "ctx": {k: repr(v) for k, v in e.get("ctx", {}).items()}} for e in errors]


@pytest.mark.parametrize("config", _examples(), ids=[*DRIVERS, "two protocols"])
def test_the_agents_model_validates_as_the_model_of_every_protocol(
    config: dict[str, Any],
) -> None:
    for data in [config, *_broken(config)]:
        assert _outcome(agent_config_model(data), data) == _outcome(AgentConfig, data)


def test_a_config_naming_other_protocols_gets_the_model_of_every_protocol() -> None:
    config = _examples()[0]
    assert agent_config_model(config) is not AgentConfig  # narrowed: only sim
    for data in _broken(config)[6:12]:  # unknown, missing, not a name; no instrument list
        assert agent_config_model(data) is AgentConfig


def test_an_agent_of_one_protocol_builds_no_other_protocols_models() -> None:
    code = (
        "import sys; from app.process import agent_main; import edge_agent.agent; "
        "from edge_agent.settings import agent_config_model; "
        "agent_config_model({'instruments': [{'protocol': 'sim'}]}); "
        "print(sorted(m for m in sys.modules if m.split('.')[1:2] in "
        "(['modbus'], ['visa'], ['opcua'], ['serial_ascii'])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"
