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
  when the whole exchange is unusable. One exception to "exactly one": an instrument that
  stamps its own samples (OPC UA's source or server timestamps) may answer a poll with the
  sample it already gave; that channel is left out rather than returned twice (the agent counts
  it as repeated).
- ``close()`` releases the connection; never raises; safe to call twice or before ``connect``.
- ``describe()`` returns the identification a calibration record needs (manufacturer, model,
  serial, firmware), where the protocol can tell, for the agent's channel catalogue.

Values are returned raw: the agent applies each channel's scale, offset and uncertainty.

Optional extension, :class:`ReportsUnits`: an instrument that says its channels' units (OPC UA
EngineeringUnits) gives, after ``connect()``, each channel's unit — the config's where it gives
one, the instrument's where it does not — so that the agent's channel catalogue carries it.

Optional extension, :class:`StreamingDriver`: an instrument that pushes values (OPC UA
subscriptions) names the channels it pushes in ``streamed_channels()`` and yields their readings
from ``stream()`` as they arrive; the agent polls only the other channels. Pushed readings are
stamped with the instrument's own timestamp of the value — there is no request to take a
mid-point of — and a value the instrument did not send is never invented: a lost connection is
a gap, reported as the instrument's state.

Optional extension, :class:`SettableDriver`: an instrument that takes set-points (a calibrator's
output, a DMM's range, a chamber's set temperature). Only the targets its config declares, with
the limits the bench allows, can be written (``write_targets()``); ``write(setpoints)`` checks
every value against its target before sending anything (``LimitExceeded`` otherwise), sends them
in order, confirms each (error queue, echo, StatusCode, optional read-back) and returns a
:class:`~drivers.setpoints.WriteRecord` per value; ``safe_state()`` puts the instrument in the
safe state its config declares (``OUTP OFF``, standby), trying every step even if one fails.
Every failure is a ``WriteError`` carrying the records of what was sent. Writes and reads may be
called concurrently from different tasks: each driver serialises them on its connection.

Optional extension, :class:`IdentifyingDriver`: ``identify()`` asks the instrument who it is
now (``*IDN?``, Modbus FC 43, the OPC UA server's build info) — a calibration run reads it at the
start and at the end, so a unit swapped mid-run is caught.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from core.clock import Clock
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Reading

if TYPE_CHECKING:  # set-points are imported by the drivers that take them, not by every agent
    from drivers.setpoints import SetValue, WriteRecord, WriteTarget

ChannelT = TypeVar("ChannelT", bound=ChannelBase, contravariant=True)


class Driver(Protocol[ChannelT]):
    """One instrument connection; see the module doc for the contract."""

    async def connect(self) -> None:
        """Open the connection."""
        ...

    async def read(self, channels: Sequence[ChannelT]) -> list[Reading]:
        """One reading per channel, in order; a driver whose instrument stamps its samples may
        leave out a channel whose sample it has already returned (the same time stamp)."""
        ...

    async def close(self) -> None:
        """Release the connection; never raises."""
        ...

    def describe(self) -> dict[str, str]:
        """Identification of the instrument (may be empty before connect)."""
        ...


@runtime_checkable
class ReportsUnits(Protocol):
    """A driver whose instrument tells the units of its channels (see the module doc)."""

    def units(self) -> dict[str, str]:
        """Channel name → unit on the current connection; empty before ``connect()``."""
        ...


@runtime_checkable
class StreamingDriver(Protocol):
    """A driver whose instrument pushes some channels' values (see the module doc)."""

    def streamed_channels(self) -> frozenset[str]:
        """Names of the channels ``stream()`` delivers after ``connect()``; the agent does not
        poll them. May change at each ``connect()``."""
        ...

    def stream(self) -> AsyncIterator[list[Reading]]:
        """Readings of streamed channels, in batches, as they arrive, after ``connect()``.

        Ends by raising ``NotConnected`` (or another ``DriverError``) when the connection is
        lost; the agent then closes and reconnects as after a failed read, and calls ``stream()``
        again on the new connection.
        """
        ...

    def stream_gap(self, reason: str) -> list[Reading]:
        """One BAD reading per streamed channel, stamped now: where the data stops.

        The stream yields it itself when it ends; the agent asks for it when the connection is
        found lost elsewhere first (a failed poll of the same instrument), so a gap is marked
        once whichever side notices."""
        ...


@runtime_checkable
class SettableDriver(Protocol):
    """A driver that writes set-points (see the module doc)."""

    def write_targets(self) -> Mapping[str, WriteTarget]:
        """The targets the instrument config declares writable, with their limits; available
        before ``connect()``."""
        ...

    async def write(self, setpoints: Mapping[str, SetValue]) -> list[WriteRecord]:
        """Set the targets to the values, in the mapping's order, each confirmed.

        Raises, before anything is sent: ``WriteRefused`` (unknown target, wrong type) or its
        subclass ``LimitExceeded``. After sending began: ``WriteRejected`` (the instrument
        refused or did not confirm one), ``WriteInterrupted`` (timeout, lost connection; the
        cause chained). Each carries the records of the writes of this call so far.
        """
        ...

    async def safe_state(self) -> list[WriteRecord]:
        """Put the instrument in its declared safe state: every step is tried, each within the
        instrument's timeout; raises ``SafeStateError`` (with every record) if any step could
        not be confirmed. Re-opens a lost connection first."""
        ...


@runtime_checkable
class IdentifyingDriver(Protocol):
    """A driver that can ask the instrument for its identity at any time."""

    async def identify(self) -> dict[str, str]:
        """The identification read now (manufacturer, model, serial, firmware, where the
        protocol tells); also what ``describe()`` returns from then on."""
        ...


class DriverFactory(Protocol):
    """Builds a driver for one instrument config."""

    def __call__(self, config: InstrumentBase, clock: Clock) -> Driver[ChannelBase]:
        """A new, unconnected driver."""
        ...
