"""The ``etalon`` command: demo, check, agent, gateway, sim, schema, drift, standards,
records, calibrate, hub, instruments, token, pki. The console script enters through
:mod:`app.launch`, which takes signals first.

This module is the one argparse tree of ``etalon`` and its dispatch; ``check`` and ``schema`` are
:mod:`app.configs`, the commands that run until stopped :mod:`app.run_commands`, and each
feature's own commands live in their modules (:data:`COMMAND_GROUPS`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.configs import SCHEMA_NAMES, check_main, schema_main
from app.launch import command_of
from app.run_commands import agent_command, demo_main, gateway_main, serve_hub, sim_main
from core.i18n import LANGUAGES, choose_language, language, t
from core.signals import STOP

# Each command imports what it runs, in its own function: `etalon --help`, `etalon pki`,
# `etalon standards`... load neither the agent's config models (every driver's config) nor the
# MQTT client, which cost most of a second of CPU at every start (the suite starts hundreds).
# The gateway is imported only by the commands that run or describe one: an agent-only install
# (``etalon agent``, ``etalon check`` on agent configs, ``etalon sim``) never loads it.


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        from app.once import ONCE_MESSAGES  # noqa: F401 - registers the texts

        raise argparse.ArgumentTypeError(t("once.bad_count", language(), value=text))
    return value


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
    # Not dest="kind": a simulator's own options may be named so (serial-ascii's --kind thp),
    # and the subcommand's default would overwrite them in the one namespace.
    kinds = sim.add_subparsers(dest="simulator", required=True, metavar="KIND")
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
    _lang_everywhere(parser)
    return parser


def _lang_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--lang`` after any command word too (``etalon demo --lang vi``, as ``scripts/demo
    --lang vi`` passes it): every subparser that lacks it accepts it, leaving the value
    :func:`main` read before parsing (``_requested_language``) as the one in force."""
    from app.parser_texts import parsers

    for each in parsers(parser):
        if each is not parser and "--lang" not in each._option_string_actions:
            each.add_argument(
                "--lang",
                choices=LANGUAGES,
                default=argparse.SUPPRESS,
                help="language of messages (en, vi)",
            )


SPOOLING = frozenset({"agent", "gateway", "demo", "calibrate"})
"""The commands that keep what they read or were sent in a spool (``agent --once`` excepted): a
forced stop says that it is kept. The others (the hub's server, a simulator) have none."""


def forced_stop_line(args: argparse.Namespace, lang: str) -> Callable[[str, bool], str]:
    """The line a forced stop writes for the command ``args`` (see ``core.signals``), given the
    signal's name and whether the clean stop was overdue: true for this command."""
    spooled = args.command in SPOOLING and not getattr(args, "once", False)
    suffix = "_spooled" if spooled else ""

    def line(name: str, overdue: bool) -> str:
        key = ("signal.overdue" if overdue else "signal.forced") + suffix
        return t(key, lang, signal=name) + "\n"

    return line


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
    STOP.announce = forced_stop_line(args, lang)
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
