"""The ``etalon`` command: demo, check, agent, gateway, sim, schema, drift, standards,
records, calibrate, hub, instruments, token, pki. The console script enters through
:mod:`app.launch`, which takes signals first.

Longer than 500 lines on purpose: it is the one argparse tree of ``etalon`` and its dispatch; each
feature's own commands live in their modules (:data:`COMMAND_GROUPS`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.launch import command_of
from core.exits import EXIT_CONFIG, EXIT_OK, exit_code_for
from core.i18n import LANGUAGES, choose_language, language, t
from core.signals import STOP

if TYPE_CHECKING:
    from pydantic import BaseModel

# Each command imports what it runs, in its own function: `etalon --help`, `etalon pki`,
# `etalon standards`... load neither the agent's config models (every driver's config) nor the
# MQTT client, which cost most of a second of CPU at every start (the suite starts hundreds).
# The gateway is imported only by the commands that run or describe one: an agent-only install
# (``etalon agent``, ``etalon check`` on agent configs, ``etalon sim``) never loads it.

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


def _with_args(run: Callable[..., int], args: argparse.Namespace, lang: str) -> int:
    return run(args)


def _with_lang(run: Callable[..., int], args: argparse.Namespace, lang: str) -> int:
    return run(args, lang)


def _with_hub_server(run: Callable[..., int], args: argparse.Namespace, lang: str) -> int:
    return run(args, serve_hub)


@dataclass(frozen=True)
class CommandGroup:
    """A command whose parser and code live in its feature's module, imported only when that
    command is the one being run (its libraries cost seconds at every start of the others)."""

    name: str
    summary: str
    """The help of its stand-in parser, when another command runs (the same as its own)."""
    module: str
    add_parser: str
    """``add_parser(subparsers)`` in ``module``: its parser."""
    main: str
    """The function of ``module`` that runs it."""
    call: Callable[[Callable[..., int], argparse.Namespace, str], int] = _with_args
    """How ``main`` is called: with the arguments, with the language too, or with the hub's
    server."""


COMMAND_GROUPS: tuple[CommandGroup, ...] = (
    CommandGroup(
        "alerts",
        "list, show, acknowledge and shelve alerts (talks to a gateway)",
        "gateway.alerts.cli",
        "add_alerts_parser",
        "alerts_main",
        _with_lang,
    ),
    CommandGroup(
        "drift",
        "drift fits, Allan deviation and control charts of a CSV",
        "gateway.analytics.cli",
        "add_drift_parser",
        "drift_main",
    ),
    CommandGroup(
        "standards",
        "reference standards: add, import, list, show, export",
        "gateway.standards.cli",
        "add_standards_parser",
        "standards_main",
    ),
    CommandGroup(
        "records",
        "the record store's integrity: verify, rotate-key, key",
        "gateway.records.cli",
        "add_records_parser",
        "records_main",
    ),
    CommandGroup(
        "instruments",
        "calibrated instruments: certificates (DCC) and corrections of their channels",
        "app.instruments",
        "add_instruments_parser",
        "instruments_main",
    ),
    CommandGroup(
        "calibrate",
        "run a calibration procedure on the bench; list, show, report, DCC",
        "calibration.cli",
        "add_calibrate_parser",
        "calibrate_main",
    ),
    CommandGroup(
        "token",
        "API tokens stored as argon2id hashes",
        "gateway.api.token_cli",
        "add_token_parser",
        "token_main",
        _with_lang,
    ),
    CommandGroup(
        "pki",
        "a lab CA and TLS certificates for the broker and clients",
        "app.pki_cli",
        "add_pki_parser",
        "pki_main",
        _with_lang,
    ),
    CommandGroup(
        "hub",
        "the national hub: run it, enrol and revoke labs, links",
        "hub.cli",
        "add_hub_parser",
        "hub_main",
        _with_hub_server,
    ),
)
"""The commands after ``sim``, in the order ``etalon --help`` lists them."""


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
            from calibration.cli import check_procedure

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


def gateway_main(config_path: Path) -> int:
    """Run a gateway until SIGINT/SIGTERM."""
    from app.process import print_problems, serve
    from core.errors import ConfigError, EtalonError
    from core.logs import setup_logging
    from gateway.config import GatewayConfig
    from gateway.service import Gateway

    try:
        _, config = load_any(config_path)
        if not isinstance(config, GatewayConfig):
            raise ConfigError([t("gateway.not_gateway", language(), file=config_path)])
    except ConfigError as exc:
        print_problems(
            f"etalon gateway: {t('config.invalid', language(), file=config_path)}", exc.problems
        )
        return EXIT_CONFIG
    setup_logging(config.log.level, config.log.format)
    # The gateway makes and drops containers by the thousand per message (decoded batches, the
    # lines of a write): collections at 10,000 allocations, not 700, and never through what the
    # imports left behind (measured: a few % of the gateway's CPU per reading; README).
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()
    try:
        gateway = Gateway(config)
    except (EtalonError, BaseExceptionGroup) as exc:
        code, message = exit_code_for(exc)
        print(f"etalon gateway: {message}", file=sys.stderr)
        return code
    return serve("etalon gateway", gateway.run, gateway.started)


def serve_hub(config: Any) -> int:
    """Run the national hub until SIGINT/SIGTERM."""
    from app.process import serve
    from core.errors import EtalonError
    from core.logs import setup_logging
    from hub.service import Hub

    setup_logging(config.log.level, config.log.format)
    return serve(
        "etalon hub",
        lambda stop: Hub(config).run(stop),
        failures=(EtalonError, BaseExceptionGroup, OSError),
    )


def demo_main(args: argparse.Namespace) -> int:
    """Run the demo."""
    from pydantic import ValidationError

    from app.demo.config import DemoConfig, default_config_text
    from app.demo.run import run_demo
    from app.process import print_problems, serve
    from core.errors import ConfigError
    from core.logs import setup_logging
    from core.secrets import EnvSecret
    from gateway.tsdb.config import InfluxV1StoreConfig, InfluxV2StoreConfig

    lang = language(args.lang)
    if args.print_config:
        print(default_config_text(), end="")
        return EXIT_OK
    try:
        if args.config:
            _, loaded = load_any(args.config)
            if not isinstance(loaded, DemoConfig):
                raise ConfigError([t("demo.not_demo", lang, file=args.config)])
            demo = loaded
        else:
            import yaml

            demo = DemoConfig.model_validate(yaml.safe_load(default_config_text()))
        store: Any = None
        if args.influx_url:
            store = InfluxV2StoreConfig(
                kind="influxdb_v2",
                url=args.influx_url,
                org=args.influx_org,
                bucket=args.influx_bucket,
                token=EnvSecret(env="ETALON_INFLUX_TOKEN") if args.influx_token_env else None,
            )
        elif args.influx_v1_url:
            store = InfluxV1StoreConfig(
                kind="influxdb_v1",
                url=args.influx_v1_url,
                database=args.influx_db,
                create_database=True,
            )
    except ConfigError as exc:
        print_problems(t("config.invalid", lang, file=args.config), exc.problems)
        return EXIT_CONFIG
    except ValidationError as exc:
        print_problems(t("demo.invalid_option", lang), [str(exc)])
        return EXIT_CONFIG
    setup_logging("WARNING" if not args.verbose else "INFO")

    outcome: list[int] = []

    async def main(stop: asyncio.Event) -> None:
        status = await run_demo(
            demo,
            stop,
            duration_s=args.duration,
            data_dir=args.data_dir,
            store=store,
            lang=lang,
            broker_port=args.broker_port,
            dashboard=not args.no_dashboard,
            dashboard_port=args.port,
        )
        outcome.append(status)

    status = serve("etalon demo", main)
    if status != EXIT_OK:
        return status
    return outcome[0] if outcome else 1


def sim_main(args: argparse.Namespace) -> int:
    """Run one standalone simulator until SIGINT/SIGTERM."""
    from app.process import serve
    from core.logs import setup_logging
    from drivers.sim.catalog import SIMULATORS

    setup_logging("INFO")
    entry = SIMULATORS[args.kind]
    return serve(f"etalon sim {args.kind}", lambda stop: entry.run(args, stop))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        from app.once import ONCE_MESSAGES  # noqa: F401 - registers the texts

        raise argparse.ArgumentTypeError(t("once.bad_count", language(), value=text))
    return value


def agent_command(args: argparse.Namespace, lang: str) -> int:
    """``etalon agent``: run until stopped, or read once with ``--once``."""
    if args.once:
        from app.once import once_main

        return once_main(args.config, args.instrument, args.count or 1, args.json, lang)
    for option, given in (
        ("--instrument", args.instrument),
        ("--count", args.count),
        ("--json", args.json),
    ):
        if given:
            from app.once import ONCE_MESSAGES  # noqa: F401 - registers the texts

            print(t("once.needs_once", lang, option=option), file=sys.stderr)
            return EXIT_CONFIG
    from app.process import agent_main

    return agent_main(args.config)


def _requested_language(words: list[str]) -> str | None:
    """The ``--lang`` of a command line, before it is parsed (help texts need it)."""
    for index, word in enumerate(words):
        if word == "--lang" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--lang="):
            return word.split("=", 1)[1]
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. The parsers of ``sim`` and ``drift`` need their modules (protocol
    libraries, scipy): they are imported only when that command is the one being run."""
    parser = argparse.ArgumentParser(
        prog="etalon",
        description="Edge data acquisition and drift monitoring for measuring "
        "instruments and reference standards.",
    )
    parser.add_argument("--lang", choices=LANGUAGES, help="language of messages (en, vi)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the whole chain in one process, on embedded defaults")
    demo.add_argument("-c", "--config", type=Path, help="a demo config (default: embedded)")
    demo.add_argument("--duration", type=float, help="stop after S seconds (default: Ctrl-C)")
    demo.add_argument("--data-dir", type=Path, help="where spools and stores go (default: temp)")
    demo.add_argument(
        "--port", type=int, help="dashboard port on 127.0.0.1 (default 8080, or a free one)"
    )
    demo.add_argument("--no-dashboard", action="store_true", help="no API, alerts or standards")
    demo.add_argument("--broker-port", type=int, help="port of the embedded broker (default: free)")
    demo.add_argument("--influx-url", help="write to an InfluxDB v2 API at this URL instead")
    demo.add_argument("--influx-org", default="etalon")
    demo.add_argument("--influx-bucket", default="etalon")
    demo.add_argument(
        "--influx-token-env",
        action="store_true",
        help="take the v2 token from $ETALON_INFLUX_TOKEN",
    )
    demo.add_argument("--influx-v1-url", help="write to an InfluxDB 1.x at this URL instead")
    demo.add_argument("--influx-db", default="etalon")
    demo.add_argument("--print-config", action="store_true", help="print the embedded defaults")
    demo.add_argument("-v", "--verbose", action="store_true", help="log state changes")

    check = sub.add_parser("check", help="validate config files (agent, gateway, demo)")
    check.add_argument("files", type=Path, nargs="+")

    agent = sub.add_parser("agent", help="run an edge agent")
    agent.add_argument("-c", "--config", type=Path, required=True)
    agent.add_argument(
        "--once",
        action="store_true",
        help="read every channel once, print the readings and exit (no broker, no spool)",
    )
    agent.add_argument(
        "--instrument",
        action="append",
        metavar="NAME",
        help="with --once: read only this instrument (repeat for more)",
    )
    agent.add_argument(
        "--count", type=_positive_int, default=None, metavar="N", help="with --once: read N ticks"
    )
    agent.add_argument("--json", action="store_true", help="with --once: print JSON")

    gateway = sub.add_parser("gateway", help="run a gateway")
    gateway.add_argument("-c", "--config", type=Path, required=True)

    sim = sub.add_parser("sim", help="run one simulated instrument standalone")
    kinds = sim.add_subparsers(dest="kind", required=True, metavar="KIND")
    if command == "sim":
        from drivers.sim.catalog import load_all

        for entry in load_all().values():
            entry.add_arguments(kinds.add_parser(entry.kind, help=entry.description))

    for group in COMMAND_GROUPS:
        if command == group.name:
            getattr(importlib.import_module(group.module), group.add_parser)(sub)
        else:
            sub.add_parser(group.name, help=group.summary)

    schema = sub.add_parser("schema", help="print the JSON Schemas of configs and payloads")
    schema.add_argument("name", nargs="?", choices=sorted(SCHEMA_NAMES))
    schema.add_argument("--out", type=Path, help="write every schema as NAME.schema.json here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    words = sys.argv[1:] if argv is None else argv
    from app.parser_texts import translate_parser, use_language

    choose_language(_requested_language(words))
    translator = use_language(language())
    parser = build_parser(command_of(words))
    translate_parser(parser, translator)
    args = parser.parse_args(words)
    lang = language(args.lang)
    STOP.announce = lambda name, overdue: (
        t("signal.overdue" if overdue else "signal.forced", lang, signal=name) + "\n"
    )
    if args.command == "demo":
        return demo_main(args)
    if args.command == "check":
        return check_main(args.files, lang)
    if args.command == "agent":
        return agent_command(args, lang)
    if args.command == "gateway":
        return gateway_main(args.config)
    if args.command == "sim":
        return sim_main(args)
    if args.command == "schema":
        return schema_main(args.name, args.out)
    for group in COMMAND_GROUPS:
        if args.command == group.name:
            run = getattr(importlib.import_module(group.module), group.main)
            return int(group.call(run, args, lang))
    return 2


if __name__ == "__main__":
    sys.exit(main())
