"""The ``sim`` protocol: a simulated instrument inside the agent process.

The instrument side formats each value as the text an instrument would send; the driver side
parses that text. Garbage replies therefore fail in the parser exactly as a real instrument's
would, and become BAD readings with the raw reply in the reason.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from core.clock import Clock
from core.errors import DriverTimeout, NotConnected
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Quality, Reading, midpoint_ns
from drivers.sim.faults import GARBAGE_REPLIES, FaultConfig, FaultHooks
from drivers.sim.models import QUANTITIES, ModelParams, Sampler, build_model


class SimChannel(ChannelBase):
    """A channel of a simulated instrument: which quantity of the model it reads."""

    quantity: str = Field(..., description="voltage, resistance, temperature, humidity, pressure")


class SimInstrument(InstrumentBase):
    """An in-process simulated instrument driven by a physical model."""

    protocol: Literal["sim"]
    model: ModelParams
    latency_s: float = Field(0.0, ge=0, le=10, description="Time one request takes.")
    faults: FaultConfig = Field(default_factory=FaultConfig)
    channels: list[SimChannel]

    @model_validator(mode="after")
    def _quantities_exist(self) -> SimInstrument:
        known = QUANTITIES[self.model.kind]
        for channel in self.channels:
            if channel.quantity not in known:
                raise ValueError(
                    f"channel {channel.name!r}: model {self.model.kind!r} has no quantity "
                    f"{channel.quantity!r} (it has {', '.join(known)})"
                )
        return self


def parse_number(reply: str) -> float:
    """Parse an instrument's numeric reply; raises ValueError on anything but a finite number."""
    value = float(reply.strip())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


class SimDriver:
    """Driver for :class:`SimInstrument`."""

    def __init__(self, config: SimInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.model: Sampler = build_model(config.model)
        self.faults = FaultHooks.from_config(config.faults)
        self._rng = random.Random(config.model.seed + 1000)
        self._connected = False

    async def connect(self) -> None:
        """Succeeds unless the ``disconnected`` fault is on."""
        self.faults.refresh()
        if self.faults.disconnected:
            raise NotConnected(self.config.name, "connection refused (simulated)")
        await asyncio.sleep(0)
        self._connected = True

    def _reply(self, quantity: str, t_ns: int) -> str:
        if self.faults.garbage_now(self._rng):
            return self._rng.choice(GARBAGE_REPLIES)
        return repr(self.model.sample(quantity, t_ns))

    async def read(self, channels: Sequence[SimChannel]) -> list[Reading]:
        """Read each channel's quantity at the request's mid-point."""
        self.faults.refresh()
        name = self.config.name
        if not self._connected:
            raise NotConnected(name, "not connected")
        if self.faults.disconnected:
            self._connected = False
            raise NotConnected(name, "connection dropped (simulated)")
        start = self.clock.now_ns()
        if self.faults.hang:
            await asyncio.sleep(self.config.timeout_s)
            raise DriverTimeout(name, f"no reply within {self.config.timeout_s:g} s")
        if self.faults.delay_s or self.config.latency_s:
            await asyncio.sleep(self.faults.delay_s + self.config.latency_s)
        end = self.clock.now_ns()
        t_ns = midpoint_ns(start, end)
        readings: list[Reading] = []
        for channel in channels:
            reply = self._reply(channel.quantity, t_ns)
            try:
                value = parse_number(reply)
            except ValueError:
                readings.append(
                    Reading.bad(
                        name, channel.name, t_ns, channel.unit, f"unparseable reply {reply!r}"
                    )
                )
                continue
            readings.append(Reading(name, channel.name, t_ns, value, channel.unit, Quality.GOOD))
        return readings

    async def close(self) -> None:
        """Forget the connection."""
        self._connected = False

    def describe(self) -> dict[str, str]:
        """A simulated instrument says what it is."""
        return {
            "manufacturer": "etalon",
            "model": f"sim-{self.config.model.kind}",
            "serial": self.config.name,
        }
