"""The registry of drivers: protocol name → config model and driver factory.

Every driver and every simulator registers here, and the ``InstrumentConfig`` union that the agent
config validates against is built from the same list, so a new protocol is one entry. A meta-test
walks this registry and proves each protocol loads its example config from ``config/`` and reads
from its simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from drivers.base import Driver
from drivers.clock import Clock
from drivers.config import ChannelBase, InstrumentBase
from drivers.sim.inprocess import SimDriver, SimInstrument


@dataclass(frozen=True)
class DriverEntry:
    """One registered protocol."""

    protocol: str
    config_model: type[InstrumentBase]
    factory: Callable[[Any, Clock], Driver[Any]]
    example_config: str
    description: str


DRIVERS: dict[str, DriverEntry] = {
    "sim": DriverEntry(
        "sim",
        SimInstrument,
        SimDriver,
        "config/agent-sim.yaml",
        "In-process simulated instrument (Zener, resistor, room) on the agent's clock.",
    ),
}

InstrumentConfig = Annotated[SimInstrument, Field(discriminator="protocol")]


def create_driver(config: InstrumentBase, clock: Clock) -> Driver[ChannelBase]:
    """A new, unconnected driver for an instrument config."""
    protocol: str = getattr(config, "protocol")  # noqa: B009 - every registered model has it
    return DRIVERS[protocol].factory(config, clock)
