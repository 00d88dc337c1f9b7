"""``etalon agent -c FILE`` and ``etalon check``'s agent half: load, validate, run."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.signals import STOP
from drivers.errors import ConfigError, EtalonError, SpoolError, TransportError
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.config_loader import load_config
from edge_agent.logs import log_event, setup_logging

log = logging.getLogger("etalon")

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_TRANSPORT = 3
EXIT_SPOOL = 4
EXIT_OTHER = 5


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
        log_event(log, logging.INFO, "stopping", signal=name, hint="a second signal forces")

    await STOP.run(main, started, stopping)


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """Exit status and message for an error that stops a process."""
    if isinstance(exc, BaseExceptionGroup):
        first = exc.exceptions[0]
        return exit_code_for(first)
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG, str(exc)
    if isinstance(exc, TransportError):
        return EXIT_TRANSPORT, str(exc)
    if isinstance(exc, SpoolError):
        return EXIT_SPOOL, str(exc)
    return EXIT_OTHER, f"{type(exc).__name__}: {exc}"


def agent_main(config_path: Path) -> int:
    """Run an agent until SIGINT/SIGTERM; returns the exit status."""
    try:
        config = load_config(config_path, AgentConfig)
    except ConfigError as exc:
        print_problems(f"etalon agent: invalid config {config_path}", exc.problems)
        return EXIT_CONFIG
    setup_logging(config.log.level, config.log.format)
    agent = Agent(config)
    try:
        asyncio.run(run_until_signal(agent.run, agent.started))
    except (EtalonError, BaseExceptionGroup) as exc:
        code, message = exit_code_for(exc)
        print(f"etalon agent: {message}", file=sys.stderr)
        return code
    return EXIT_OK
