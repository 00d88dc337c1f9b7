"""The ``etalon`` console script: SIGINT and SIGTERM are taken first, then the command line is
imported. Importing it takes seconds on a small machine; a Ctrl-C in that time must neither be
lost nor become a traceback (see :mod:`core.signals`). What a start-up need not spend it does
not: the imports run without garbage collection (:func:`collections_paused`), and pydantic scans
for no plugins (:data:`PYDANTIC_PLUGINS_ENV`)."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LONG_RUNNING = frozenset({"agent", "gateway", "demo", "sim"})
"""Commands that run until stopped: a signal asks them for a clean stop (exit status 0). So
does ``etalon hub -c FILE``, the hub's server, unlike ``etalon hub ACTION`` (see
:func:`long_running`)."""


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


def long_running(words: list[str]) -> bool:
    """Whether the command line runs a command until it is stopped."""
    command = command_of(words)
    if command == "agent":
        # `agent --once` reads and ends: a signal interrupts it (130), it is no clean stop (0).
        return "--once" not in words
    if command == "hub":  # the server, unless an action (enrol, labs, ...) is named
        return command_of(_without_config(words[words.index("hub") + 1 :])) is None
    return command in LONG_RUNNING


def _without_config(words: list[str]) -> list[str]:
    """``words`` without ``-c``/``--config`` and the file after it."""
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("-c", "--config"):
            skip = True
        else:
            out.append(word)
    return out


@contextmanager
def collections_paused() -> Iterator[None]:
    """No garbage collection inside: for a process's start-up (imports, config, building what it
    runs), whose objects live as long as the process. At the end they are frozen (never scanned
    again, see :func:`gc.freeze`) and collection resumes as it was.

    An agent's start-up leaves some 42,000 objects that all live on; the collector ran 88 times
    over them (12-13 ms of a start-up of 0.24 s of CPU, 2026-12-06). Paused, it runs 4 times
    (0.3 ms), and the garbage the start-up made is kept for good: about 200 objects, 40 KiB."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"
"""pydantic's own switch: ``__all__`` (set unless the environment gives it) spares every
``etalon`` process the scan of every installed package's entry points that pydantic makes, at
its first model, for plugins (2 % of an agent's start-up CPU). etalon uses none; set it to an
empty value to let pydantic load the plugins installed (pydantic's documentation:
concepts/plugins)."""


def main() -> int:
    """Entry point of the ``etalon`` console script."""
    os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    with collections_paused():
        from core.signals import STOP

        STOP.install(0 if long_running(sys.argv[1:]) else None)
        from app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
