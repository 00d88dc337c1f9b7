"""Config files of every kind and the published JSON Schemas: which kind a file is, its model
(imported only when a file of that kind is loaded), loading it, ``etalon check`` and
``etalon schema``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import t

if TYPE_CHECKING:
    from pydantic import BaseModel

SCHEMA_NAMES = (
    "agent-config",
    "gateway-config",
    "demo-config",
    "modbus-profile",
    "visa-profile",
    "wire-readings",
    "wire-agent-status",
    "wire-instrument-state",
    "wire-agent-metrics",
    "alerts-webhook",
    "alerts-mqtt-event",
    "alerts-mqtt-state",
    "calibration-procedure",
    "wire-calibration",
    "hub-config",
    "hub-export",
    "ledger-segment",
    "ledger-checkpoint",
    "ledger-head",
)


CONFIG_MODELS: dict[str, tuple[str, str]] = {
    "hub": ("hub.config", "HubConfig"),
    "gateway": ("gateway.config", "GatewayConfig"),
    "agent": ("edge_agent.config", "AgentConfig"),
    "demo": ("app.demo.config", "DemoConfig"),
}
"""Each config kind's model as (module, class), imported only when a file of that kind is
loaded (an agent's check never imports the gateway)."""


def config_model(kind: str) -> type[BaseModel]:
    """The model of a config kind (``agent``, ``gateway``, ``hub``, ``demo``)."""
    module, name = CONFIG_MODELS[kind]
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


def schema_models() -> dict[str, Any]:
    """Every model whose JSON Schema is published, by name (imports the gateway's payloads)."""
    from app.demo.config import DemoConfig
    from calibration.procedure import Procedure
    from drivers.modbus.profiles import ModbusProfile
    from drivers.visa.profiles import Profile as VisaProfile
    from edge_agent.config import AgentConfig
    from edge_agent.wire import AgentMetricsMessage, AgentStatus, InstrumentState, ReadingBatch
    from edge_agent.wire_calibration import CalibrationMessage
    from gateway.alerts.payloads import AlertEventMessage, AlertStateMessage, WebhookNotification
    from gateway.config import GatewayConfig
    from hub.config import HubConfig
    from hub.exports import SCHEMAS as HUB_SCHEMAS
    from ledger import SCHEMAS as LEDGER_SCHEMAS

    models: dict[str, Any] = {
        "agent-config": AgentConfig,
        "gateway-config": GatewayConfig,
        "demo-config": DemoConfig,
        "modbus-profile": ModbusProfile,
        "visa-profile": VisaProfile,
        "wire-readings": ReadingBatch,
        "wire-agent-status": AgentStatus,
        "wire-instrument-state": InstrumentState,
        "wire-agent-metrics": AgentMetricsMessage,
        "alerts-webhook": WebhookNotification,
        "alerts-mqtt-event": AlertEventMessage,
        "alerts-mqtt-state": AlertStateMessage,
        "calibration-procedure": Procedure,
        "wire-calibration": CalibrationMessage,
        "hub-config": HubConfig,
        **HUB_SCHEMAS,
        **LEDGER_SCHEMAS,
    }
    assert tuple(models) == SCHEMA_NAMES
    return models


def config_kind(data: dict[str, Any]) -> str:
    """Which config a YAML mapping is: a calibration procedure says ``format:
    etalon.procedure/1``, a gateway has ``store``, an agent ``spool``, a hub ``database``,
    else demo."""
    if data.get("format") == "etalon.procedure/1":
        return "procedure"
    if "database" in data and "store" not in data:
        return "hub"
    if "store" in data or "records" in data:
        return "gateway"
    if "spool" in data:
        return "agent"
    return "demo"


def load_any(path: Path) -> tuple[str, BaseModel]:
    """Load a config file of whichever kind it is; raises ConfigError."""
    from pydantic import ValidationError

    from core.config_loader import context_of, load_yaml, validation_problems
    from core.errors import ConfigError

    data, root = load_yaml(path)
    kind = config_kind(data)
    if kind == "procedure":
        raise ConfigError(
            [
                f"{path}: a calibration procedure: write 'format: etalon.procedure/1' on a line of "
                "its own, at the top level"
            ]
        )
    try:
        return kind, config_model(kind).model_validate(data, context=context_of(path))
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None


def check_main(files: list[Path], lang: str) -> int:
    """Validate config files; every problem on its own line; exit 1 if any is invalid."""
    from app.process import print_problems
    from core.errors import ConfigError

    invalid = 0
    loaded: list[tuple[Path, str, BaseModel]] = []
    for path in files:
        if _is_procedure(path):
            from calibration.check import check_procedure

            problems, notes = check_procedure(path, lang)
            for note in notes:
                print(note)
            if problems:
                invalid += 1
                print_problems(t("config.invalid", lang, file=path), problems)
            else:
                print(t("check.ok", lang, file=path, kind=t("kind.procedure", lang)))
            continue
        try:
            kind, config = load_any(path)
        except ConfigError as exc:
            invalid += 1
            print_problems(t("config.invalid", lang, file=path), exc.problems)
            continue
        loaded.append((path, kind, config))
    cross: dict[Path, list[str]] = {}
    if any(getattr(config, "alerts", None) is not None for _, _, config in loaded):
        from gateway.alerts.check import cross_check

        cross, notes = cross_check(loaded)
        for note in notes:
            print(note)
    for path, kind, _ in loaded:
        if path in cross:
            invalid += 1
            print_problems(t("config.invalid", lang, file=path), cross[path])
            continue
        print(t("check.ok", lang, file=path, kind=t(f"kind.{kind}", lang)))
    if invalid:
        print(t("check.summary", lang, errors=invalid, files=len(files)), file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _is_procedure(path: Path) -> bool:
    """Whether a file to check is a calibration procedure (it says so on a line of its own)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return False
    return any(
        line.strip().replace(b'"', b"").replace(b"'", b"") == b"format: etalon.procedure/1"
        for line in head.splitlines()
    )


def schemas() -> dict[str, dict[str, Any]]:
    """Every published JSON Schema, by name."""
    from pydantic import TypeAdapter

    return {
        name: TypeAdapter(model).json_schema(by_alias=True)
        for name, model in schema_models().items()
    }


def schema_main(name: str | None, out_dir: Path | None) -> int:
    """Print one schema, all of them, or write them as files."""
    everything = schemas()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for key, value in everything.items():
            text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
            (out_dir / f"{key}.schema.json").write_text(text, encoding="utf-8")
        return EXIT_OK
    chosen = everything if name is None else {name: everything[name]}
    print(json.dumps(chosen if name is None else chosen[name], indent=2, ensure_ascii=False))
    return EXIT_OK
