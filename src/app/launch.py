"""The ``etalon`` console script: SIGINT and SIGTERM are taken first, then the command line is
imported. Importing it takes seconds on a small machine; a Ctrl-C in that time must neither be
lost nor become a traceback (see :mod:`core.signals`)."""

from __future__ import annotations

import sys

LONG_RUNNING = frozenset({"agent", "gateway", "demo", "sim"})
"""Commands that run until stopped: a signal asks them for a clean stop (exit status 0)."""


def command_of(words: list[str]) -> str | None:
    """The subcommand named on a command line (the first word that is not an option)."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--lang":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def main() -> int:
    """Entry point of the ``etalon`` console script."""
    from core.signals import STOP

    words = sys.argv[1:]
    # `agent --once` reads and ends: a signal interrupts it (130), it is no clean stop (0).
    long_running = command_of(words) in LONG_RUNNING and "--once" not in words
    STOP.install(0 if long_running else None)
    from app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
