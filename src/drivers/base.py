"""The driver contract every protocol implements.

A driver owns one instrument connection. It holds no buffers and no retry loops: the agent's
instrument task schedules reads, applies timeouts, reconnects with backoff, and spools readings.

Contract:

- ``connect()`` opens the connection (within ``connect_timeout_s``). Raises ``NotConnected`` or
  ``DriverTimeout``.
- ``read(channels)`` reads the given channels (all due at this tick) and returns exactly one
  reading per channel, in order, each stamped at the mid-point of the request that fetched it.
  A channel whose answer is garbage or an instrument error gets a BAD reading with the reason;
  the others keep their values. Raises ``DriverTimeout`` when the instrument does not answer,
  ``NotConnected`` when the connection is gone (the agent then reconnects), ``ProtocolError``
  when the whole exchange is unusable.
- ``close()`` releases the connection; never raises; safe to call twice or before ``connect``.
- ``describe()`` returns the identification a calibration record needs (manufacturer, model,
  serial, firmware), where the protocol can tell, for the agent's channel catalogue.

Values are returned raw: the agent applies each channel's scale, offset and uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from drivers.clock import Clock
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Reading

ChannelT = TypeVar("ChannelT", bound=ChannelBase, contravariant=True)


class Driver(Protocol[ChannelT]):
    """One instrument connection; see the module doc for the contract."""

    async def connect(self) -> None:
        """Open the connection."""
        ...

    async def read(self, channels: Sequence[ChannelT]) -> list[Reading]:
        """One reading per channel, in order."""
        ...

    async def close(self) -> None:
        """Release the connection; never raises."""
        ...

    def describe(self) -> dict[str, str]:
        """Identification of the instrument (may be empty before connect)."""
        ...


class DriverFactory(Protocol):
    """Builds a driver for one instrument config."""

    def __call__(self, config: InstrumentBase, clock: Clock) -> Driver[ChannelBase]:
        """A new, unconnected driver."""
        ...
