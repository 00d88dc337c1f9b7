"""Running a process of the ``etalon`` command: signals, problem lists, and ``etalon agent``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.config_loader import load_config
from core.errors import ConfigError, EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK, exit_code_for
from core.i18n import language, t
from core.logs import setup_logging
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig


def print_problems(title: str, problems: list[str]) -> None:
    """Errors to stderr, one per line, under a short title."""
    print(title, file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


async def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGINT/SIGTERM set ``stop`` so it can finish cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await main(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def agent_main(config_path: Path) -> int:
    """Run an agent until SIGINT/SIGTERM; returns the exit status."""
    try:
        config = load_config(config_path, AgentConfig)
    except ConfigError as exc:
        print_problems(
            f"etalon agent: {t('config.invalid', language(), file=config_path)}", exc.problems
        )
        return EXIT_CONFIG
    setup_logging(config.log.level, config.log.format)
    agent = Agent(config)
    try:
        asyncio.run(run_until_signal(agent.run))
    except (EtalonError, BaseExceptionGroup) as exc:
        code, message = exit_code_for(exc)
        print(f"etalon agent: {message}", file=sys.stderr)
        return code
    return EXIT_OK
