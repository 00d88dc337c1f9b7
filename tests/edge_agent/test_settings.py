"""An agent validates its config against the model of the protocols it names (its start-up
builds no other protocol's models): the same config object's values, the same errors at the
same places, as the model of every protocol; anything it cannot tell goes to that model."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from core.config_loader import load_config, load_config_as
from core.errors import ConfigError
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


_HEAD = "site: hanoi\nid: bench\nspool: {path: /tmp/etalon/never-opened.db}\n"
_SIM = (
    "{name: %s, protocol: %s, model: {kind: zener, nominal_v: 10.0},"
    " channels: [{name: v, quantity: voltage, unit: V, interval_s: 1}]}"
)


def _files() -> dict[str, str]:
    """Agent configs as a user writes them: YAML anchors and merge keys, instruments given
    through a merge key, protocols spelt wrong or of the wrong type, instruments of the wrong
    shape, an unknown protocol among registered ones, very many instruments."""
    many = "".join(f"\n  - {_SIM % (f'i{n}', 'sim')}" for n in range(500))
    return {
        "anchors and merges, a channel twice": (
            "instruments:\n  - &base\n    name: a\n    protocol: sim\n"
            "    model: {kind: zener, nominal_v: 10.0}\n"
            "    channels: [&ch {name: v, quantity: voltage, unit: V, interval_s: 1}]\n"
            "  - {<<: *base, name: b}\n  - {<<: *base, name: c, channels: [*ch, *ch]}\n"
        ),
        "instruments through a merge key": f"<<: {{instruments: [{_SIM % ('a', 'sim')}]}}\n",
        "broken through a merge key": f"<<: {{instruments: [{_SIM % ('a', 'sim')}, 3]}}\n",
        "another case": f"instruments: [{_SIM % ('a', 'SIM')}]\n",
        "spaces": "instruments: [" + _SIM % ("a", '" sim "') + "]\n",
        "null": f"instruments: [{_SIM % ('a', 'null')}]\n",
        "a list": f"instruments: [{_SIM % ('a', '[sim]')}]\n",
        "a number": f"instruments: [{_SIM % ('a', '1.5')}]\n",
        "a boolean": f"instruments: [{_SIM % ('a', 'true')}]\n",
        "missing": "instruments: [{name: a, channels: []}]\n",
        "not a list": "instruments: {name: a, protocol: sim}\n",
        "a string": "instruments: sim\n",
        "empty": "instruments: []\n",
        "none": "instruments:\n",
        "unknown among valid ones": (
            f"instruments: [{_SIM % ('a', 'sim')}, {{name: b, protocol: gpib}},"
            " {name: c, protocol: modbus, channels: []}]\n"
        ),
        "two protocols, both wrong": (
            "instruments: [{name: c, protocol: modbus, channels: []}, {name: c, protocol: visa}]\n"
        ),
        "very many": f"instruments:{many}\n",
        "very many, one twice": f"instruments:{many}\n  - {_SIM % ('i7', 'sim')}\n",
    }


def _loaded(load: Any) -> Any:
    try:
        return load().model_dump()
    except ConfigError as exc:
        return exc.problems


@pytest.mark.parametrize("name", list(_files()))
def test_a_file_an_agent_loads_loads_as_etalon_check_loads_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(_HEAD + _files()[name])
    narrowed = _loaded(lambda: load_config_as(path, agent_config_model))
    assert narrowed == _loaded(lambda: load_config(path, AgentConfig))


@pytest.mark.parametrize(
    "path",
    sorted(p.name for p in (REPO / "config").glob("*.yaml") if "instruments:" in p.read_text()),
)
def test_every_example_agent_config_loads_as_etalon_check_loads_it(path: str) -> None:
    if path == "demo.yaml":
        pytest.skip("the demo's config, not an agent's")
    file = REPO / "config" / path
    assert _loaded(lambda: load_config_as(file, agent_config_model)) == _loaded(
        lambda: load_config(file, AgentConfig)
    )


def test_a_narrowed_config_survives_pickling(tmp_path: Path) -> None:
    """A config loaded by the agent's narrowed model can be handed to another process (pickle
    finds its class), and comes back equal."""
    path = tmp_path / "agent.yaml"
    path.write_text((REPO / "config" / "agent-sim.yaml").read_text())
    config = load_config_as(path, agent_config_model)
    assert type(config) is not AgentConfig  # the narrowed model, not the full one
    assert pickle.loads(pickle.dumps(config)) == config
