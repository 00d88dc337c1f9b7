"""The ``etalon`` commands that run until stopped: ``agent`` (or its ``--once`` reading),
``gateway``, ``demo``, ``sim`` and the hub's server. Each imports what it runs, in its own
function (:mod:`app.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

from app.configs import load_any
from app.launch import collections_paused
from core.errors import EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK, exit_code_for
from core.i18n import language, t

GATEWAY_SWITCH_INTERVAL_S = 0.001
"""How long a thread of the gateway waits for the GIL before it asks the loop's thread for it."""


def tune_for_gateway() -> None:
    """The interpreter's settings for a gateway process (after its imports).

    The gateway makes and drops containers by the thousand per message (decoded batches, the
    lines of a write): collections at 10,000 allocations, not 700, and never through what the
    imports left behind (measured: a few % of the gateway's CPU per reading; README).

    Its loop's thread computes (decoding, building lines) while the MQTT, spool and store threads
    take the GIL back after each socket read, write or SQLite step: each of those waits up to
    the switch interval while the loop computes, 5 ms by default. At 1 ms a spool append of 100
    entries made while the loop computed took 108 ms instead of 784 (one statement a row), and
    the chain benchmark drained 7 % faster with 9 % less of the gateway's CPU per reading
    (docs/performance.md)."""
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()
    sys.setswitchinterval(GATEWAY_SWITCH_INTERVAL_S)


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
    tune_for_gateway()
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
    listening = asyncio.Event()
    # A signal during the start-up (a database that does not answer: up to its connect timeout)
    # cancels it: what was opened is closed and the hub ends at once, status 0.
    return serve(
        "etalon hub",
        lambda stop: Hub(config, listening).run(stop),
        listening,
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
    running = asyncio.Event()

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
            running=running,
        )
        outcome.append(status)

    # A signal during the start-up (simulators, broker, gateway: seconds) cancels it: what was
    # opened is closed and the demo ends at once, as the agent and the gateway do.
    status = serve("etalon demo", main, running)
    if status != EXIT_OK:
        return status
    if not outcome and not running.is_set():
        print(t("demo.stopped_starting", lang), flush=True)
        return EXIT_OK
    return outcome[0] if outcome else 1


def sim_main(args: argparse.Namespace) -> int:
    """Run one standalone simulator until SIGINT/SIGTERM."""
    from app.process import serve
    from core.logs import setup_logging
    from drivers.sim.catalog import SIMULATORS

    setup_logging("INFO")
    entry = SIMULATORS[args.simulator]
    serving = asyncio.Event()

    # A simulator's options name files and shipped maps: one that names nothing (--map nope)
    # is a refusal with its reason, not a traceback. A signal during its start-up (OPC UA's
    # takes seconds) cancels it: what was opened is closed, and it ends at once.
    status = serve(
        f"etalon sim {args.simulator}",
        lambda stop: entry.run(args, stop, serving),
        serving,
        failures=(EtalonError, BaseExceptionGroup, OSError, ValueError),
    )
    if status == EXIT_OK and not serving.is_set():
        print(t("sim.stopped_starting", language()), flush=True)
    return status


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
    with collections_paused():  # the agent's start-up, as in agent_main
        from app.process import agent_main

    return agent_main(args.config)
