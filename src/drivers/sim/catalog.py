"""The catalogue of standalone simulators: ``etalon sim KIND ...`` runs one of these.

Each protocol's simulator module registers an entry here: how to add its command-line arguments,
and a coroutine that serves until ``stop`` is set. The in-process ``sim`` protocol needs no server
and is not listed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorEntry:
    """One standalone simulator."""

    kind: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]


SIMULATORS: dict[str, SimulatorEntry] = {}
