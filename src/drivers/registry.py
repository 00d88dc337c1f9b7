"""The registry of drivers: protocol name → config model and driver factory.

Every driver and every simulator registers here, and the ``InstrumentConfig`` union that the agent
config validates against is built from the same list, so a new protocol is one entry. A meta-test
walks this registry and proves each protocol loads its example config from ``config/`` and reads
from its simulator.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union, cast

from pydantic import Field

from core.clock import Clock
from drivers.base import Driver
from drivers.config import ChannelBase, InstrumentBase

if TYPE_CHECKING:
    from drivers.modbus.config import ModbusInstrument
    from drivers.opcua.config import OpcUaInstrument
    from drivers.serial_ascii.config import SerialAsciiInstrument
    from drivers.sim.inprocess import SimInstrument
    from drivers.visa.config import VisaInstrument


def _load(path: str) -> Any:
    """``module:attribute``, imported on first use: an agent that reads only Modbus never loads
    asyncua or pyvisa (seconds of start-up and tens of MB on a Raspberry Pi)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class DriverEntry:
    """One registered protocol."""

    protocol: str
    config_path: str
    """``module:Class`` of the instrument's config model (see :attr:`config_model`)."""
    driver_path: str
    """``module:Class`` of the driver: called with (config, clock)."""
    example_config: str
    description: str
    simulate_path: str
    """``module:function`` of an async context manager that starts a simulator matching an
    instrument config on free loopback ports/ptys and yields the config rewritten to point at it
    (same channels). Used by the registry meta-test and ``etalon demo``."""

    @property
    def config_model(self) -> type[InstrumentBase]:
        """The instrument's config model (imported now: building a protocol's models is tens
        of milliseconds of an agent's start-up, paid only for the protocols its config names)."""
        return cast(type[InstrumentBase], _load(self.config_path))

    @property
    def factory(self) -> Callable[[Any, Clock], Driver[Any]]:
        """The driver class (imported now)."""
        return cast(Callable[[Any, Clock], Driver[Any]], _load(self.driver_path))

    def simulate(self, config: Any) -> AbstractAsyncContextManager[Any]:
        """Start this protocol's simulator for ``config`` (imported now)."""
        return cast(AbstractAsyncContextManager[Any], _load(self.simulate_path)(config))


@contextlib.asynccontextmanager
async def in_process(config: SimInstrument) -> AsyncIterator[SimInstrument]:
    """The ``sim`` protocol's simulator: nothing to start, it lives inside the driver."""
    yield config  # the sim protocol simulates inside the driver


DRIVERS: dict[str, DriverEntry] = {
    "sim": DriverEntry(
        "sim",
        "drivers.sim.inprocess:SimInstrument",
        "drivers.sim.inprocess:SimDriver",
        "config/agent-sim.yaml",
        "In-process simulated instrument (Zener, resistor, room) on the agent's clock.",
        "drivers.registry:in_process",
    ),
    "modbus": DriverEntry(
        "modbus",
        "drivers.modbus.config:ModbusInstrument",
        "drivers.modbus.driver:ModbusDriver",
        "config/modbus-tcp.yaml",
        "Modbus TCP, RTU (serial) and RTU over TCP devices; coalesced reads (pymodbus).",
        "drivers.sim.modbus_server:simulate_instrument",
    ),
    "serial_ascii": DriverEntry(
        "serial_ascii",
        "drivers.serial_ascii.config:SerialAsciiInstrument",
        "drivers.serial_ascii.driver:SerialAsciiDriver",
        "config/serial-ascii-thp.yaml",
        "Line-based ASCII instruments on a serial port or TCP serial server (pyserial).",
        "drivers.sim.serial_sim:simulate_instrument",
    ),
    "visa": DriverEntry(
        "visa",
        "drivers.visa.config:VisaInstrument",
        "drivers.visa.driver:VisaDriver",
        "config/agent-visa.yaml",
        "SCPI instruments over VISA (LAN, GPIB, USB, serial) through pyvisa, profiles as data.",
        "drivers.sim.scpi:simulate_visa",
    ),
    "opcua": DriverEntry(
        "opcua",
        "drivers.opcua.config:OpcUaInstrument",
        "drivers.opcua.driver:OpcUaDriver",
        "config/agent-opcua.yaml",
        "OPC UA servers (climate chambers, PLCs, benches) through asyncua: polling, "
        "subscriptions, Basic256Sha256 security.",
        "drivers.sim.opcua_server:simulate_opcua",
    ),
}

if TYPE_CHECKING:
    InstrumentConfig = Annotated[
        SimInstrument | ModbusInstrument | SerialAsciiInstrument | VisaInstrument | OpcUaInstrument,
        Field(discriminator="protocol"),
    ]
    """An instrument of any registered protocol, told apart by ``protocol``."""


@functools.cache
def instrument_config(protocols: tuple[str, ...] | None = None) -> Any:
    """The union of the config models of ``protocols`` (registered names, in the registry's
    order; every protocol when None), told apart by ``protocol``: what an instrument of a
    config validates against. An agent whose config names only some protocols validates
    against theirs (see :func:`edge_agent.settings.agent_config_model`): the same checks and
    the same errors for each instrument, without building the others' models."""
    names = DRIVERS if protocols is None else [name for name in DRIVERS if name in protocols]
    models = tuple(DRIVERS[name].config_model for name in names)
    return Annotated[Union[models], Field(discriminator="protocol")]  # noqa: UP007 - built at run time


def known_protocols(names: Iterable[object]) -> tuple[str, ...] | None:
    """The registered protocols ``names`` holds, in the registry's order; None if one is no
    registered protocol's name (only the union of every protocol tells how it is wrong)."""
    named = set()
    for name in names:
        if not isinstance(name, str) or name not in DRIVERS:
            return None
        named.add(name)
    return tuple(protocol for protocol in DRIVERS if protocol in named)


def __getattr__(name: str) -> Any:
    """``InstrumentConfig``, every protocol's union, built when it is first asked for."""
    if name == "InstrumentConfig":
        return instrument_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_driver(config: InstrumentBase, clock: Clock) -> Driver[ChannelBase]:
    """A new, unconnected driver for an instrument config."""
    protocol: str = getattr(config, "protocol")  # noqa: B009 - every registered model has it
    return DRIVERS[protocol].factory(config, clock)
