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


def _catalogue() -> dict[str, SimulatorEntry]:
    from drivers.sim import modbus_server, serial_sim

    return {
        "modbus-tcp": SimulatorEntry(
            "modbus-tcp",
            "Modbus TCP devices from a register map (shipped name or YAML file)",
            modbus_server.add_arguments,
            modbus_server.run_tcp,
        ),
        "modbus-rtu-over-tcp": SimulatorEntry(
            "modbus-rtu-over-tcp",
            "Modbus RTU frames over TCP, as behind a serial-to-Ethernet converter",
            modbus_server.add_arguments,
            modbus_server.run_rtu_over_tcp,
        ),
        "modbus-rtu": SimulatorEntry(
            "modbus-rtu",
            "Modbus RTU devices on a pseudo-terminal (one RS-485 line)",
            modbus_server.add_arguments,
            modbus_server.run_rtu_pty,
        ),
        "serial-ascii": SimulatorEntry(
            "serial-ascii",
            "ASCII transmitter answering SEND, or a streaming thermometer readout (pty or TCP)",
            serial_sim.add_arguments,
            serial_sim.run,
        ),
    }


SIMULATORS: dict[str, SimulatorEntry] = _catalogue()
