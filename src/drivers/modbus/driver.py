"""The Modbus driver: one device, its due channels read with the fewest requests.

Each poll plans the requests for the due channels (:mod:`drivers.modbus.plan`) and reads them
over the endpoint's shared link (:mod:`drivers.modbus.link`). What it learns is kept until the
next connect:

- the plan of each set of due channels, so a poll does not plan again;
- requests the device refused with ILLEGAL DATA ADDRESS / ILLEGAL DATA VALUE. Such a request is
  split in halves until the channel at fault is alone; that channel is BAD with the exception's
  name, the others are read, and the split plan replaces the cached one, so the next poll goes
  straight to it (the lone bad channel is asked alone, in case the device has learnt it).

A request that gets no reply ends the read: its channels and those of the requests not yet sent
are BAD, so a silent device costs one request timeout per poll, and when nothing was read at all
the read raises DriverTimeout (the agent counts it and, after a few, re-opens the session).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from drivers.clock import Clock
from drivers.errors import DriverError, DriverTimeout, NotConnected, ProtocolError
from drivers.modbus.codec import (
    DecodeError,
    Decoder,
    decode,
    decoder,
    pack_registers,
    unpacker,
)
from drivers.modbus.config import ModbusInstrument
from drivers.modbus.link import ExceptionReply, ModbusLink, acquire_link, release_link
from drivers.modbus.plan import Limits, Request, Span, plan
from drivers.modbus.registers import BIT_TABLES, FUNCTION_CODE, ModbusChannel
from drivers.reading import Quality, Reading, Value, midpoint_ns

log = logging.getLogger("etalon.drivers.modbus")

SPLIT_ON = frozenset({2, 3})
"""Exceptions that depend on the addresses asked: ILLEGAL DATA ADDRESS, ILLEGAL DATA VALUE."""
UNREACHABLE = frozenset({10, 11})
"""Gateway exceptions meaning the device behind it did not answer: a timeout in all but name."""


@dataclass
class _Poll:
    """What does not change between polls of one set of due channels."""

    spans: list[Span]
    names: list[tuple[str, str]]
    """(channel, unit) of each channel."""
    decodings: list[tuple[Layout | None, Decoder | None]]
    """Per channel: a numeric layout (see codec.unpacker), else a decoder, else neither: the
    value is the register or the bit itself (uint16 in ABCD/CDAB, coils, discrete inputs)."""
    prepared: dict[Request, list[_Member]] = field(default_factory=dict)

    def members_of(self, request: Request) -> list[_Member]:
        """Per channel of a request: index, slice, layout, decoder, name, unit; built once."""
        members = self.prepared.get(request)
        if members is None:
            members = self.prepared[request] = [
                (
                    index,
                    self.spans[index].start - request.span.start,
                    self.spans[index].end - request.span.start,
                    *self.decodings[index],
                    *self.names[index],
                )
                for index in request.members
            ]
        return members


Layout = tuple[bool, struct.Struct]
_Member = tuple[int, int, int, "Layout | None", "Decoder | None", str, str]


class _StopRead(Exception):
    """A request failed in a way that ends this read (no reply, unusable reply)."""

    def __init__(self, error: DriverError) -> None:
        self.error = error


class ModbusDriver:
    """Driver for :class:`ModbusInstrument` (see the module doc)."""

    def __init__(self, config: ModbusInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.limits = Limits(
            max_registers=config.max_registers_per_request,
            max_bits=config.max_bits_per_request,
            gap_registers=config.max_gap_registers,
            gap_bits=config.max_gap_bits,
        )
        self.requests_sent = 0
        self.splits = 0
        self._link: ModbusLink | None = None
        self._plans: dict[tuple[str, ...], list[Request]] = {}
        self._polls: dict[tuple[str, ...], _Poll] = {}
        self._forbidden: set[Span] = set()
        self._identity: dict[str, str] = {}
        self._answered = False

    # -- contract ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open (or join) the endpoint's connection; read the identification if asked."""
        if self._link is None:
            self._link = acquire_link(self.config.transport, self.config.name)
        await self._link.connect(self.config.connect_timeout_s, self.config.name)
        self._plans.clear()
        self._forbidden.clear()
        if not self._identity and (self.config.identify or self.config.identity_registers):
            await self._identify(self._link)

    async def read(self, channels: Sequence[ModbusChannel]) -> list[Reading]:
        """One reading per channel, in order; see the module doc."""
        link = self._link
        name = self.config.name
        if link is None or not link.connected:
            raise NotConnected(name, "not connected")
        key = tuple([channel.name for channel in channels])
        poll = self._polls.get(key)
        if poll is None:
            poll = self._polls[key] = self._prepare(channels)
        spans = poll.spans
        requests = self._plans.get(key)
        if requests is None:
            requests = plan(spans, self.limits, self._forbidden)
        readings: list[Reading | None] = [None] * len(channels)
        executed: list[Request] = []
        self._answered = False
        for position, request in enumerate(requests):
            try:
                await self._fetch(link, request, poll, channels, readings, executed)
            except _StopRead as failure:
                if not self._answered:
                    raise failure.error from failure.error.__cause__
                ts = self.clock.now_ns()
                self._all_bad(request, channels, readings, ts, failure.error.reason)
                reason = f"not read: {failure.error.reason} on an earlier request of this poll"
                for later in requests[position + 1 :]:
                    self._all_bad(later, channels, readings, ts, reason)
                break
        else:
            self._plans[key] = executed
        return [r for r in readings if r is not None]

    async def close(self) -> None:
        """Leave the endpoint's connection (the last device closes it); never raises."""
        link, self._link = self._link, None
        if link is not None:
            release_link(link)

    def describe(self) -> dict[str, str]:
        """Endpoint, device id and profile; the FC 43 identification when ``identify`` is on
        and the values of the ``identity_registers``."""
        profile = self.config.profile_name()
        return {
            "endpoint": self.config.transport.endpoint(),
            "device_id": str(self.config.device_id),
            **({"profile": profile} if profile else {}),
            **self._identity,
        }

    # -- internals -----------------------------------------------------------------------------

    async def _request(
        self, link: ModbusLink, request: Request
    ) -> tuple[list[int] | list[bool], int, int]:
        span = request.span
        start = self.clock.now_ns()
        self.requests_sent += 1
        values = await link.read(
            FUNCTION_CODE[span.table],
            span.start,
            span.count,
            self.config.device_id,
            self.config.timeout_of_request(),
            self.config.name,
        )
        return values, start, self.clock.now_ns()

    async def _fetch(
        self,
        link: ModbusLink,
        request: Request,
        poll: _Poll,
        channels: Sequence[ModbusChannel],
        readings: list[Reading | None],
        executed: list[Request],
    ) -> None:
        """Read one request into ``readings``, splitting it on an address exception."""
        start = self.clock.now_ns()
        try:
            values, start, end = await self._request(link, request)
        except ExceptionReply as reply:
            end = self.clock.now_ns()
            if reply.code in UNREACHABLE:
                raise _StopRead(DriverTimeout(self.config.name, reply.name)) from reply
            self._answered = True
            if reply.code in SPLIT_ON and len(request.members) > 1:
                self.splits += 1
                self._forbidden.add(request.span)
                await self._split(link, request, poll, channels, readings, executed)
                return
            if reply.code in SPLIT_ON:
                self._forbidden.add(request.span)
            executed.append(request)
            span = request.span
            where = f"FC{FUNCTION_CODE[span.table]} {span.start}+{span.count}"
            self._all_bad(
                request, channels, readings, midpoint_ns(start, end), f"{reply} at {where}"
            )
            return
        except (DriverTimeout, ProtocolError) as error:
            raise _StopRead(error) from error
        self._answered = True
        executed.append(request)
        ts = midpoint_ns(start, end)
        name = self.config.name
        good = Quality.GOOD
        value: Value
        buffers: dict[bool, bytes] = {}
        # The hot loop of every poll: per channel, a prepared way to its value.
        for index, begin, stop, layout, decode_value, channel, unit in poll.members_of(request):
            if layout is not None:
                swapped, number = layout
                buffer = buffers.get(swapped)
                if buffer is None:
                    buffer = buffers[swapped] = pack_registers(values, swapped)
                value = number.unpack_from(buffer, 2 * begin)[0]
            elif decode_value is None:  # a coil/discrete input, or a uint16 taken as sent
                value = values[begin]
            else:
                raw = values[begin:stop]
                try:
                    value = decode_value(raw)
                except DecodeError as exc:
                    shown = " ".join(f"{int(r):04x}" for r in raw)
                    reason = f"{exc} (registers {shown})"
                    readings[index] = Reading.bad(name, channel, ts, unit, reason)
                    continue
            readings[index] = Reading(name, channel, ts, value, unit, good)

    async def _split(
        self,
        link: ModbusLink,
        request: Request,
        poll: _Poll,
        channels: Sequence[ModbusChannel],
        readings: list[Reading | None],
        executed: list[Request],
    ) -> None:
        spans = poll.spans
        members = sorted(request.members, key=lambda i: (spans[i].start, -spans[i].end))
        half = len(members) // 2
        for part in (members[:half], members[half:]):
            sub_spans = [spans[i] for i in part]
            for sub in plan(sub_spans, self.limits, self._forbidden):
                mapped = Request(sub.span, tuple(part[i] for i in sub.members))
                await self._fetch(link, mapped, poll, channels, readings, executed)

    def _decoding_of(self, channel: ModbusChannel) -> tuple[Layout | None, Decoder | None]:
        order = self.config.order_of(channel)
        if channel.table in BIT_TABLES or (
            channel.value_type == "uint16" and order in ("ABCD", "CDAB")
        ):
            return None, None  # the bit, or the register as sent
        layout = unpacker(channel.value_type, order)
        if layout is not None:
            return layout, None
        return None, decoder(
            channel.value_type, order, channel.bit, channel.encoding, channel.length
        )

    def _prepare(self, channels: Sequence[ModbusChannel]) -> _Poll:
        spans = [Span(c.table, c.address, c.address + c.width) for c in channels]
        decodings = [self._decoding_of(c) for c in channels]
        return _Poll(spans, [(c.name, c.unit) for c in channels], decodings)

    def _all_bad(
        self,
        request: Request,
        channels: Sequence[ModbusChannel],
        readings: list[Reading | None],
        ts: int,
        reason: str,
    ) -> None:
        for index in request.members:
            if readings[index] is None:
                channel = channels[index]
                readings[index] = Reading.bad(
                    self.config.name, channel.name, ts, channel.unit, reason
                )

    async def _identify(self, link: ModbusLink) -> None:
        """What the device says it is: FC 43/14 objects, then the identity registers (whose
        values win: a serial number is more specific than what a vendor's FC 43 reports)."""
        config = self.config
        timeout = config.timeout_of_request()
        if config.identify:
            try:
                objects = await link.read_identification(config.device_id, timeout, config.name)
            except (ExceptionReply, DriverTimeout, ProtocolError):
                objects = {}  # many devices do not implement FC 43; identification is optional
            names = {0: "manufacturer", 1: "model", 2: "firmware", 6: "model_name"}
            for object_id, raw in objects.items():
                if object_id in names and raw:
                    self._identity[names[object_id]] = raw.decode("ascii", "replace").strip()
        for key, register in config.identity_registers.items():
            try:
                values = await link.read(
                    FUNCTION_CODE[register.table],
                    register.address,
                    register.width,
                    config.device_id,
                    timeout,
                    config.name,
                )
                value = decode(
                    [int(v) for v in values],
                    register.value_type,
                    config.order_of(register),
                    register.bit,
                    register.encoding,
                    register.length,
                )
            except (ExceptionReply, DriverTimeout, ProtocolError, DecodeError) as exc:
                log.info(
                    "identity register not read",
                    extra={"instrument": config.name, "key": key, "reason": str(exc)},
                )
                continue
            text = str(value).strip()
            if text:
                self._identity[key] = text
