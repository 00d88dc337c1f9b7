"""Running a process of the ``etalon`` command: signals, problem lists, and ``etalon agent``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.launch import collections_paused
from core.config_loader import load_config_as
from core.errors import ConfigError, EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK, exit_code_for
from core.i18n import language, t, translate_reason
from core.logs import log_event, setup_logging
from core.signals import STOP

log = logging.getLogger("etalon")


def print_problems(title: str, problems: list[str]) -> None:
    """Errors to stderr, one per line, under a short title."""
    print(title, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


async def run_until_signal(
    main: Callable[[asyncio.Event], Awaitable[None]], started: asyncio.Event | None = None
) -> None:
    """Run ``main(stop)``: the first SIGINT/SIGTERM sets ``stop`` (and, until ``started`` is set,
    cancels the start-up); a second one exits at once (see :mod:`core.signals`)."""

    def stopping(name: str) -> None:
        hint = translate_reason("a second signal forces", language())  # a person reads it
        log_event(log, logging.INFO, "stopping", signal=name, hint=hint)

    await STOP.run(main, started, stopping)


EVENT_LOOP_ENV = "ETALON_EVENT_LOOP"
"""``asyncio``: the agent runs on the standard event loop even when uvloop is installed."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the ``fast`` extra) and not turned off by
    ``ETALON_EVENT_LOOP=asyncio``; None for the standard one. uvloop runs the agent's per-reading
    wake-ups (timers, futures, socket reads and writes) in C."""
    choice = os.environ.get(EVENT_LOOP_ENV, "")
    if choice == "asyncio":
        return None
    if choice not in ("", "uvloop"):
        log_event(
            log,
            logging.WARNING,
            "unknown event loop asked for, using the default",
            variable=EVENT_LOOP_ENV,
            value=choice[:40],
            known="asyncio, uvloop",
        )
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(
    name: str,
    main: Callable[[asyncio.Event], Awaitable[None]],
    started: asyncio.Event | None = None,
    *,
    failures: tuple[type[BaseException], ...] = (EtalonError, BaseExceptionGroup),
    fast_loop: bool = False,
) -> int:
    """Run the process ``main`` until SIGINT/SIGTERM (:func:`run_until_signal`): ``EXIT_OK``,
    or, when one of ``failures`` ends it, that failure's exit status after printing
    ``NAME: message`` to stderr. ``fast_loop``: on uvloop when :func:`loop_factory` gives it."""
    try:
        with asyncio.Runner(loop_factory=loop_factory() if fast_loop else None) as runner:
            runner.run(run_until_signal(main, started))
    except failures as exc:
        code, message = exit_code_for(exc)
        print(f"{name}: {message}", file=sys.stderr)
        return code
    return EXIT_OK


def agent_main(config_path: Path) -> int:
    """Run an agent until SIGINT/SIGTERM; returns the exit status."""
    with collections_paused():  # the start-up's objects live on (see collections_paused)
        # Here, not at the top: the gateway, the hub, the demo and the simulators are served by
        # this module too, and need neither the agent nor its drivers' config models.
        from edge_agent.agent import Agent
        from edge_agent.settings import agent_config_model

        try:
            config = load_config_as(config_path, agent_config_model)
        except ConfigError as exc:
            print_problems(
                f"etalon agent: {t('config.invalid', language(), file=config_path)}", exc.problems
            )
            return EXIT_CONFIG
        setup_logging(config.log.level, config.log.format)
        agent = Agent(config)
    return serve("etalon agent", agent.run, agent.started, fast_loop=True)
