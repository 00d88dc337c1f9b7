"""The registry of drivers: protocol name → config model and driver factory.

Every driver and every simulator registers here, and the ``InstrumentConfig`` union that the agent
config validates against is built from the same list, so a new protocol is one entry. A meta-test
walks this registry and proves each protocol loads its example config from ``config/`` and reads
from its simulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from drivers.base import Driver
from drivers.clock import Clock
from drivers.config import ChannelBase, InstrumentBase
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.driver import ModbusDriver
from drivers.opcua.config import OpcUaInstrument
from drivers.opcua.driver import OpcUaDriver
from drivers.serial_ascii.config import SerialAsciiInstrument
from drivers.serial_ascii.driver import SerialAsciiDriver
from drivers.sim import modbus_server, serial_sim
from drivers.sim.inprocess import SimDriver, SimInstrument
from drivers.sim.opcua_server import simulate_opcua
from drivers.sim.scpi import simulate_visa
from drivers.visa.config import VisaInstrument
from drivers.visa.driver import VisaDriver


@dataclass(frozen=True)
class DriverEntry:
    """One registered protocol."""

    protocol: str
    config_model: type[InstrumentBase]
    factory: Callable[[Any, Clock], Driver[Any]]
    example_config: str
    description: str
    simulate: Callable[[Any], AbstractAsyncContextManager[Any]]
    """Starts a simulator matching an instrument config on free loopback ports/ptys and yields
    the config rewritten to point at it (same channels). Used by the registry meta-test and
    ``etalon demo``."""


@contextlib.asynccontextmanager
async def _in_process(config: SimInstrument) -> AsyncIterator[SimInstrument]:
    yield config  # the sim protocol simulates inside the driver


DRIVERS: dict[str, DriverEntry] = {
    "sim": DriverEntry(
        "sim",
        SimInstrument,
        SimDriver,
        "config/agent-sim.yaml",
        "In-process simulated instrument (Zener, resistor, room) on the agent's clock.",
        _in_process,
    ),
    "modbus": DriverEntry(
        "modbus",
        ModbusInstrument,
        ModbusDriver,
        "config/modbus-tcp.yaml",
        "Modbus TCP, RTU (serial) and RTU over TCP devices; coalesced reads (pymodbus).",
        modbus_server.simulate_instrument,
    ),
    "serial_ascii": DriverEntry(
        "serial_ascii",
        SerialAsciiInstrument,
        SerialAsciiDriver,
        "config/serial-ascii-thp.yaml",
        "Line-based ASCII instruments on a serial port or TCP serial server (pyserial).",
        serial_sim.simulate_instrument,
    ),
    "visa": DriverEntry(
        "visa",
        VisaInstrument,
        VisaDriver,
        "config/agent-visa.yaml",
        "SCPI instruments over VISA (LAN, GPIB, USB, serial) through pyvisa, profiles as data.",
        simulate_visa,
    ),
    "opcua": DriverEntry(
        "opcua",
        OpcUaInstrument,
        OpcUaDriver,
        "config/agent-opcua.yaml",
        "OPC UA servers (climate chambers, PLCs, benches) through asyncua: polling, "
        "subscriptions, Basic256Sha256 security.",
        simulate_opcua,
    ),
}

InstrumentConfig = Annotated[
    SimInstrument | ModbusInstrument | SerialAsciiInstrument | VisaInstrument | OpcUaInstrument,
    Field(discriminator="protocol"),
]


def create_driver(config: InstrumentBase, clock: Clock) -> Driver[ChannelBase]:
    """A new, unconnected driver for an instrument config."""
    protocol: str = getattr(config, "protocol")  # noqa: B009 - every registered model has it
    return DRIVERS[protocol].factory(config, clock)
