"""The catalogue of standalone simulators: ``etalon sim KIND ...`` runs one of these.

Each protocol's simulator module registers an entry here when imported: how to add its
command-line arguments, and a coroutine that serves until ``stop`` is set. The in-process
``sim`` protocol needs no server and is not listed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorEntry:
    """One standalone simulator."""

    kind: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, asyncio.Event, asyncio.Event | None], Awaitable[None]]
    """``run(args, stop, started)``: serve until ``stop`` is set; ``started`` (when given) is set
    once the simulator serves (until then a signal cancels its start-up, see ``core.signals``)."""


SIMULATORS: dict[str, SimulatorEntry] = {}
"""Filled by each simulator module when it is imported (see :func:`load_all`)."""

SIMULATOR_MODULES = (
    "drivers.sim.modbus_server",
    "drivers.sim.serial_sim",
    "drivers.sim.scpi",
    "drivers.sim.opcua_server",
    "drivers.sim.bench",
)


def load_all() -> dict[str, SimulatorEntry]:
    """Import every simulator module (each registers itself) and return the catalogue.

    Imported on demand: the protocol libraries behind them take seconds to load, which an agent
    or a gateway has no reason to pay."""
    for module in SIMULATOR_MODULES:
        importlib.import_module(module)
    return SIMULATORS
