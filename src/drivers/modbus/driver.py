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

Writes (:class:`drivers.base.SettableDriver`): each target is encoded with the same codec as
reads (type, byte and word order, scale and offset), after its value was checked against the
limits the config declares; it goes out as FC 5/6/15/16 on the endpoint's link (one request at
a time with reads), the response's echo is checked, and with ``verify`` the registers are read
back and compared. A Modbus exception response is a WriteRejected naming the exception.

Longer than 500 lines on purpose: reads, identification and writes of one device are one class
over one session's state (the link, the cached plans, the refused requests, the decoders), which
is dropped together on every connect; split apart they would share that state across modules.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock
from core.errors import (
    DriverError,
    DriverTimeout,
    NotConnected,
    ProtocolError,
    WriteRefused,
    WriteRejected,
)
from drivers.modbus.codec import (
    DecodeError,
    Decoder,
    decode,
    decoder,
    encode,
    swap_bytes,
    unpacker,
)
from drivers.modbus.config import ModbusInstrument, ModbusTarget
from drivers.modbus.link import ExceptionReply, ModbusLink, acquire_link, release_link
from drivers.modbus.plan import Limits, Request, Span, plan
from drivers.modbus.registers import BIT_TABLES, FUNCTION_CODE, ModbusChannel
from drivers.reading import Quality, Reading, Value, midpoint_ns
from drivers.setpoints import (
    SetValue,
    Step,
    WriteRecord,
    WriteTarget,
    WriteTrace,
    run_safe_state,
    value_text,
    write_setpoints,
)

IDENTITY_OBJECTS = {0: "manufacturer", 1: "model", 2: "firmware", 4: "product_name"}
IDENTITY_OBJECTS |= {5: "model_name"}
"""FC 43 object ids (VendorName, ProductCode, MajorMinorRevision, ProductName, ModelName)."""

log = logging.getLogger("etalon.drivers.modbus")

SPLIT_ON = frozenset({2, 3})
"""Exceptions that depend on the addresses asked: ILLEGAL DATA ADDRESS, ILLEGAL DATA VALUE."""
UNREACHABLE = frozenset({10, 11})
"""Gateway exceptions meaning the device behind it did not answer: a timeout in all but name."""


Layout = tuple[bool, struct.Struct]
_Member = tuple[int, int, int, "Layout | None", "Decoder | None", str, str]
_Whole = tuple[bool, struct.Struct, list[int]]
"""(swapped, struct over the whole reply, channel indexes in the struct's order)."""


class _Step:
    """One request of a poll with what it needs on the wire and to decode its reply, built once
    per request: the poll loop then hashes, looks up and plans nothing."""

    __slots__ = ("count", "first", "function", "members", "registers", "request", "start", "whole")

    def __init__(self, request: Request, members: list[_Member], whole: _Whole | None) -> None:
        self.request = request
        self.function = FUNCTION_CODE[request.span.table]
        self.registers = self.function in (3, 4)
        self.start = request.span.start
        self.count = request.span.count
        self.members = members
        """Per channel: index, slice, layout, decoder, name, unit."""
        self.whole = whole
        """When every channel is a plain number of one byte order: one struct that decodes
        them all at once, with the channel indexes in its order."""
        indexes = whole[2] if whole is not None else []
        self.first = (
            indexes[0] if indexes and indexes == list(range(indexes[0], indexes[-1] + 1)) else -1
        )
        """The first channel index when the struct's channels are consecutive ones in order
        (the usual case: their values are then stored as one slice), else -1."""


@dataclass
class _Poll:
    """What does not change between polls of one set of due channels."""

    spans: list[Span]
    names: list[tuple[str, str]]
    """(channel, unit) of each channel."""
    decodings: list[tuple[Layout | None, Decoder | None]]
    """Per channel: a numeric layout (see codec.unpacker), else a decoder, else neither: the
    value is the register or the bit itself (uint16 in ABCD/CDAB, coils, discrete inputs)."""
    key: tuple[str, ...] = ()
    """The channels' names: the key of the cached plan."""
    prepared: dict[Request, _Step] = field(default_factory=dict)

    def step(self, request: Request) -> _Step:
        """The :class:`_Step` of a request, built once."""
        step = self.prepared.get(request)
        if step is None:
            members = [
                (
                    index,
                    self.spans[index].start - request.span.start,
                    self.spans[index].end - request.span.start,
                    *self.decodings[index],
                    *self.names[index],
                )
                for index in request.members
            ]
            step = self.prepared[request] = _Step(request, members, _whole(request, members))
        return step


Rows = tuple[list[int], list[Value], list[str | None]]
"""A read in compact form, one item per channel in the channels' order: the timestamp (the
mid-point of its request), the value, and ``None`` for a GOOD reading or the reason of a BAD one
(whose value is None). :meth:`ModbusDriver.read` is these made into :class:`Reading` objects."""


def _whole(request: Request, members: list[_Member]) -> _Whole | None:
    """One struct for a request whose channels are all plain numbers of one byte order that do
    not overlap, so a reply decodes in one call; None otherwise."""
    if request.span.table in BIT_TABLES:
        return None
    kinds: set[tuple[bool, str]] = set()
    fields: list[tuple[int, int, str, int]] = []
    plain = False
    for index, begin, stop, layout, decode_value, _name, _unit in members:
        if layout is not None:
            swapped, number = layout
            kinds.add((swapped, number.format[0]))
            fields.append((begin, stop, number.format[1:], index))
        elif decode_value is None:
            # A register taken as sent: "H" big-endian on a plain buffer, little-endian on a
            # swapped one.
            plain = True
            fields.append((begin, stop, "H", index))
        else:
            return None
    if len(kinds) > 1:
        return None
    swapped, prefix = kinds.pop() if kinds else (False, ">")
    if plain and swapped != (prefix == "<"):
        return None  # a register as sent cannot share this struct's byte order
    fields.sort()
    format_ = prefix
    cursor = 0
    for begin, stop, code, _index in fields:
        if begin < cursor:
            return None  # overlapping channels: each decodes on its own
        format_ += "x" * (2 * (begin - cursor)) + code
        cursor = stop
    return swapped, struct.Struct(format_), [index for *_, index in fields]


def _next_part(splits: list[Iterator[_Step]]) -> _Step | None:
    """The next request of the innermost split still unread (finished splits are dropped);
    None when every split has been read."""
    while splits:
        part = next(splits[-1], None)
        if part is not None:
            return part
        splits.pop()
    return None


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
        self._plans: dict[tuple[str, ...], list[_Step]] = {}
        self._polls: dict[tuple[str, ...], _Poll] = {}
        self._known: dict[int, tuple[list[ModbusChannel], _Poll]] = {}
        """id of a channel list already read → (its channels then, their poll): the scheduler
        passes the same list poll after poll, so its names are not joined and hashed again."""
        self._timeout_s = config.timeout_of_request()
        self._forbidden: set[Span] = set()
        self._identity: dict[str, str] = {}
        self._answered = False
        self._targets = config.write_targets()

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
        stamps, values, reasons = await self.read_rows(channels)
        name = self.config.name
        good = Quality.GOOD
        out: list[Reading] = []
        for channel, ts, value, reason in zip(channels, stamps, values, reasons, strict=True):
            if ts < 0:
                continue  # not read (a planning bug): left out, as the contract allows no guess
            if reason is None:
                out.append(Reading(name, channel.name, ts, value, channel.unit, good))
            else:
                out.append(Reading.bad(name, channel.name, ts, channel.unit, reason))
        return out

    async def read_rows(self, channels: Sequence[ModbusChannel]) -> Rows:
        """:meth:`read` in compact form (:data:`Rows`), for a caller that encodes the readings
        itself: no object per reading. A timestamp of -1 marks a channel not read."""
        link = self._link
        if link is None or not link.connected:
            raise NotConnected(self.config.name, "not connected")
        poll = self._poll_of(channels)
        key = poll.key
        steps = self._plans.get(key)
        if steps is None:
            steps = [poll.step(r) for r in plan(poll.spans, self.limits, self._forbidden)]
        count = len(channels)
        rows: Rows = ([-1] * count, [None] * count, [None] * count)
        executed: list[_Step] = []
        self._answered = False
        # Parts of split requests still to read, the innermost split last: this one loop reads
        # the planned requests and the parts of split ones alike, depth first.
        splits: list[Iterator[_Step]] = []
        for position, planned in enumerate(steps):
            step = planned
            try:
                while True:
                    try:
                        values = await self._ask(link, step)
                    except (ExceptionReply, DriverTimeout, ProtocolError) as error:
                        parts = self._refused(error, link, step, poll, rows, executed)
                        if parts is not None:
                            splits.append(parts)
                    else:
                        self._store(step, values, link.last_exchange_ns, rows, executed)
                    if not splits or (part := _next_part(splits)) is None:
                        break
                    step = part
            except _StopRead as failure:
                if not self._answered:
                    raise failure.error from failure.error.__cause__
                ts = self.clock.now_ns()
                self._all_bad(planned.request, rows, ts, failure.error.reason)
                reason = f"not read: {failure.error.reason} on an earlier request of this poll"
                for later in steps[position + 1 :]:
                    self._all_bad(later.request, rows, ts, reason)
                break
        else:
            self._plans[key] = executed
        return rows

    def _poll_of(self, channels: Sequence[ModbusChannel]) -> _Poll:
        known = self._known.get(id(channels))
        if known is not None and known[0] == channels:  # C-level, identity first per item
            return known[1]
        key = tuple([channel.name for channel in channels])
        poll = self._polls.get(key)
        if poll is None:
            poll = self._polls[key] = self._prepare(channels)
            poll.key = key
        if len(self._known) >= 64:  # a guard: a caller that builds a new list per read
            self._known.clear()
        # A copy: a list changed in place since is not taken for the same channels.
        self._known[id(channels)] = (list(channels), poll)
        return poll

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

    def _ask(
        self, link: ModbusLink, step: _Step
    ) -> Coroutine[Any, Any, bytes | list[int] | list[bool]]:
        """The link's read of one request, to await: registers come back as the bytes sent (one
        struct decodes them), bits as a list. Stamped by the link when the request went out and
        when its reply came: the time queued behind other devices on the line is not the
        instant of the reading."""
        self.requests_sent += 1
        link.last_exchange_ns = (0, 0)
        config = self.config
        read = link.read_registers if step.registers else link.read
        return read(
            step.function,
            step.start,
            step.count,
            config.device_id,
            self._timeout_s,
            config.name,
            self.clock,
        )

    def _refused(
        self,
        error: ExceptionReply | DriverTimeout | ProtocolError,
        link: ModbusLink,
        step: _Step,
        poll: _Poll,
        rows: Rows,
        executed: list[_Step],
    ) -> Iterator[_Step] | None:
        """A request that failed: an exception reply makes its channels BAD, or splits it (see
        the module doc) and returns its parts to read; no reply or an unusable one raises
        _StopRead."""
        if not isinstance(error, ExceptionReply):
            raise _StopRead(error) from error
        config = self.config
        reply = error
        start, end = link.last_exchange_ns
        if not end:
            start = end = self.clock.now_ns()
        if reply.code in UNREACHABLE:
            raise _StopRead(DriverTimeout(config.name, reply.name)) from reply
        self._answered = True
        request = step.request
        if reply.code in SPLIT_ON and len(request.members) > 1:
            self.splits += 1
            self._forbidden.add(request.span)
            return self._halves(step, poll)
        if reply.code in SPLIT_ON:
            self._forbidden.add(request.span)
        executed.append(step)
        where = f"FC{step.function} {step.start}+{step.count}"
        self._all_bad(request, rows, midpoint_ns(start, end), f"{reply} at {where}")
        return None

    def _store(
        self,
        step: _Step,
        values: bytes | list[int] | list[bool],
        exchange_ns: tuple[int, int],
        rows: Rows,
        executed: list[_Step],
    ) -> None:
        """Decode a reply into ``rows``, each channel stamped at the mid-point of its request."""
        self._answered = True
        executed.append(step)
        ts = midpoint_ns(*exchange_ns)
        stamps, decoded, reasons = rows
        whole = step.whole
        if whole is not None:
            # The usual case: one struct call decodes every channel of the reply.
            swapped, numbers, indexes = whole
            assert isinstance(values, bytes)
            unpacked = numbers.unpack_from(swap_bytes(values) if swapped else values)
            first = step.first
            if first >= 0:
                stop = first + len(unpacked)
                stamps[first:stop] = [ts] * len(unpacked)
                decoded[first:stop] = unpacked
                return
            for index, number_value in zip(indexes, unpacked, strict=True):
                stamps[index] = ts
                decoded[index] = number_value
            return
        if isinstance(values, bytes):
            registers: bytes = values
            words: Sequence[int] = struct.unpack(f">{len(registers) // 2}H", registers)
        else:
            words = values
            registers = b""
        buffers: dict[bool, bytes] = {False: registers}
        value: Value
        for index, begin, stop, layout, decode_value, _channel, _unit in step.members:
            stamps[index] = ts
            if layout is not None:
                swapped, number = layout
                buffer = buffers.get(swapped)
                if buffer is None:
                    buffer = buffers[swapped] = swap_bytes(registers)
                value = number.unpack_from(buffer, 2 * begin)[0]
            elif decode_value is None:  # a coil/discrete input, or a uint16 taken as sent
                value = words[begin]
            else:
                raw = words[begin:stop]
                try:
                    value = decode_value(raw)
                except DecodeError as exc:
                    shown = " ".join(f"{int(r):04x}" for r in raw)
                    reasons[index] = f"{exc} (registers {shown})"
                    continue
            decoded[index] = value

    def _halves(self, step: _Step, poll: _Poll) -> Iterator[_Step]:
        """The requests of a split request's two halves. A generator: the second half is
        planned only once the first has been read, with what its refusals taught."""
        spans = poll.spans
        members = sorted(step.request.members, key=lambda i: (spans[i].start, -spans[i].end))
        half = len(members) // 2
        for part in (members[:half], members[half:]):
            sub_spans = [spans[i] for i in part]
            for sub in plan(sub_spans, self.limits, self._forbidden):
                mapped = Request(sub.span, tuple(part[i] for i in sub.members))
                yield poll.step(mapped)

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

    def _all_bad(self, request: Request, rows: Rows, ts: int, reason: str) -> None:
        stamps, _values, reasons = rows
        for index in request.members:
            if stamps[index] < 0:
                stamps[index] = ts
                reasons[index] = reason

    async def _identify(self, link: ModbusLink) -> None:
        identity: dict[str, str] = {}
        # Many devices do not implement FC 43: identification is optional.
        with contextlib.suppress(ExceptionReply, DriverTimeout, ProtocolError):
            if self.config.identify:
                identity = await self._identification(link)
        self._identity = identity | await self._identity_registers(link)

    async def _identity_registers(self, link: ModbusLink) -> dict[str, str]:
        """The values of the ``identity_registers`` (serial, model…); one that cannot be read
        or decoded is left out. They win over FC 43's: a register a profile names for the serial
        number is more specific than what a vendor's FC 43 reports."""
        config = self.config
        timeout = config.timeout_of_request()
        identity: dict[str, str] = {}
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
                identity[key] = text
        return identity

    async def _identification(self, link: ModbusLink) -> dict[str, str]:
        """FC 43 basic objects, and the serial object when the config names one."""
        config = self.config
        timeout = config.timeout_of_request()
        objects = await link.read_identification(config.device_id, timeout, config.name)
        identity: dict[str, str] = {}
        for object_id, raw in objects.items():
            key = IDENTITY_OBJECTS.get(object_id)
            if key and raw:
                identity[key] = raw.decode("ascii", "replace").strip()
        if config.identity_serial_object is not None:
            serial = await link.read_identification(
                config.device_id,
                timeout,
                config.name,
                read_code=4,
                object_id=config.identity_serial_object,
            )
            raw_serial = serial.get(config.identity_serial_object, b"")
            if raw_serial:
                identity["serial"] = raw_serial.decode("ascii", "replace").strip()
        return identity

    async def identify(self) -> dict[str, str]:
        """FC 43 now (a swapped device shows another serial); an exception response is a
        ProtocolError, no reply a DriverTimeout."""
        link = self._link
        if link is None or not link.connected:
            raise NotConnected(self.config.name, "not connected")
        identity: dict[str, str] = {}
        if self.config.identify or not self.config.identity_registers:
            try:
                identity = await self._identification(link)
            except ExceptionReply as reply:
                raise ProtocolError(self.config.name, f"identification: {reply}") from reply
        self._identity = identity | await self._identity_registers(link)
        return self.describe()

    # -- writes --------------------------------------------------------------------------------

    def write_targets(self) -> Mapping[str, WriteTarget]:
        """The targets the config declares writable, with their limits."""
        return dict(self._targets)

    def _registers(
        self, target: ModbusTarget, value: SetValue
    ) -> tuple[list[int] | list[bool], str]:
        """What goes on the wire for a value, and how a record shows it."""
        if target.table == "coil":
            return [bool(value)], "on" if value else "off"
        order = self.config.order_of(target)
        kind = target.value_type
        raw: float | int = target.raw(float(value))
        if not kind.startswith("float"):
            raw = round(raw)
        try:
            registers = encode(raw, kind, order)
        except ValueError as exc:  # the limits were checked at load; this is a last guard
            raise WriteRefused(
                self.config.name, target.name, value, kind, "unusable", f"{exc}; nothing was sent"
            ) from exc
        words = " ".join(f"0x{r:04X}" for r in registers)
        return registers, f"{words} ({kind} {raw!r}, {order})"

    def _write_step(self, target: ModbusTarget, value: SetValue) -> Step:
        config = self.config

        async def apply(trace: WriteTrace) -> None:
            link = self._link
            if link is None or not link.connected:
                raise NotConnected(config.name, "not connected")
            values, shown = self._registers(target, value)
            function = target.function_code
            span = f"{target.table} {target.address}" + (
                f"+{len(values)}" if len(values) > 1 else ""
            )
            trace.sent.append(f"FC{function} device {config.device_id} {span} = {shown}")
            self.requests_sent += 1
            timeout = config.timeout_of_request()
            try:
                echo = await link.write(
                    function, target.address, values, config.device_id, timeout, config.name
                )
            except ExceptionReply as reply:
                trace.confirmed.append(f"exception response: {reply}")
                raise WriteRejected(
                    config.name,
                    f"FC {function} at {span} refused: {reply}",
                    target.name,
                    instrument_message=reply.name,
                ) from reply
            trace.confirmed.append(echo)
            if target.verify:
                await self._verify(link, target, value, values, trace)

        return self._targets[target.name].step(value, apply)

    async def _verify(
        self,
        link: ModbusLink,
        target: ModbusTarget,
        value: SetValue,
        written: list[int] | list[bool],
        trace: WriteTrace,
    ) -> None:
        config = self.config
        function = 1 if target.table == "coil" else 3
        self.requests_sent += 1
        try:
            back = await link.read(
                function,
                target.address,
                target.width,
                config.device_id,
                config.timeout_of_request(),
                config.name,
            )
        except ExceptionReply as reply:
            raise WriteRejected(
                config.name, f"read-back refused: {reply}", target.name, reply.name
            ) from reply
        if target.table == "coil":
            trace.read_back = bool(back[0])
        else:
            raw = decode([int(r) for r in back], target.value_type, config.order_of(target))
            assert isinstance(raw, int | float)
            trace.read_back = raw * target.scale + target.offset
        trace.confirmed.append(f"FC {function} read back: {trace.read_back!r}")
        if [int(v) for v in back] != [int(v) for v in written]:
            raise WriteRejected(
                config.name,
                f"read back {trace.read_back!r} after writing {value_text(value, target.unit)}",
                target.name,
                instrument_message=repr(list(back)),
            )

    async def write(self, setpoints: Mapping[str, SetValue]) -> list[WriteRecord]:
        """Check every value against its target, then write them in order (module doc)."""
        return await write_setpoints(
            self.config,
            self._targets,
            setpoints,
            lambda target, value: self._write_step(self.config.target_named(target.name), value),
            clock=self.clock,
        )

    async def safe_state(self) -> list[WriteRecord]:
        """Write the declared safe values, every one even after a failed one; connects first
        when the link is down."""
        config = self.config

        def steps() -> list[Step]:
            return [
                self._write_step(
                    config.target_named(item.target), self._targets[item.target].check(item.value)
                )
                for item in config.safe_state
            ]

        connected = self._link is not None and self._link.connected
        return await run_safe_state(
            config, steps, connected=connected, connect=self.connect, clock=self.clock
        )
