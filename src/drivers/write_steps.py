"""The record of each write and the loop every driver runs writes and safe states through
(see :mod:`drivers.setpoints`, which re-exports them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.clock import Clock
from core.errors import (
    DriverError,
    DriverTimeout,
    SafeStateError,
    WriteError,
    WriteInterrupted,
)
from core.models import plain_fields
from drivers.config import InstrumentBase

SetValue = float | int | bool | str
"""A value a target can be set to: a number, an on/off state, or one word of a choice."""


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """What one write (or one safe-state step) sent and what confirmed it.

    ``sent`` lists the messages that may change the instrument's state, as they went on the wire
    (SCPI commands; ``FC16 …`` Modbus requests; ``Write …`` OPC UA service calls); ``confirmed``
    lists what came back to confirm them (the error queue empty, an echo, a StatusCode, a
    read-back). ``ok`` is False for the step that failed, with ``error`` saying why."""

    instrument: str
    target: str | None
    value: SetValue | None
    unit: str
    sent: tuple[str, ...]
    confirmed: tuple[str, ...]
    read_back: SetValue | None
    started_ns: int
    finished_ns: int
    ok: bool
    error: str | None = None
    purpose: Literal["write", "safe_state"] = "write"

    def as_dict(self) -> dict[str, Any]:
        """The record as plain data, for an audit log."""
        return plain_fields(self)


def records_of(error: WriteError) -> list[WriteRecord]:
    """The records a write error carries, typed."""
    return [r for r in error.records if isinstance(r, WriteRecord)]


@dataclass
class WriteTrace:
    """Filled in by a driver while it carries out one step (possibly on another thread): what
    it sent, before sending it, and what confirmed it."""

    sent: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    read_back: SetValue | None = None


@dataclass(frozen=True)
class Step:
    """One write or one raw safe-state command, as a driver carries it out."""

    label: str
    """What the step does, for messages: ``voltage_dc = 10 V``, ``OUTP OFF``."""
    apply: Callable[[WriteTrace], Awaitable[None]]
    """Sends it; raises WriteRejected when the instrument refuses, a DriverError when the
    exchange fails."""
    target: str | None = None
    value: SetValue | None = None
    unit: str = ""


async def _attempt(
    instrument: str,
    step: Step,
    timeout_s: float,
    clock: Clock,
    purpose: Literal["write", "safe_state"],
) -> tuple[WriteRecord, DriverError | None]:
    """One try of a step: its record, and the error that ended it (None: done)."""
    trace = WriteTrace()
    started = clock.now_ns()
    error: DriverError | None = None
    try:
        async with asyncio.timeout(timeout_s):
            await step.apply(trace)
    except DriverError as exc:  # DriverTimeout is also a TimeoutError: this clause first
        error = exc
    except TimeoutError as exc:
        # No label here: run_steps puts the step's label before the reason it reports.
        error = DriverTimeout(instrument, f"no reply within {timeout_s:g} s")
        error.__cause__ = exc
    record = WriteRecord(
        instrument=instrument,
        target=step.target,
        value=step.value,
        unit=step.unit,
        sent=tuple(trace.sent),
        confirmed=tuple(trace.confirmed),
        read_back=trace.read_back,
        started_ns=started,
        finished_ns=clock.now_ns(),
        ok=error is None,
        error=error.reason if error is not None else None,
        purpose=purpose,
    )
    return record, error


async def run_steps(
    instrument: str,
    steps: Sequence[Step],
    *,
    timeout_s: float,
    clock: Clock,
    purpose: Literal["write", "safe_state"] = "write",
    recover: Callable[[], Awaitable[None]] | None = None,
) -> list[WriteRecord]:
    """Carry out the steps in order, each within ``timeout_s``; a record of each.

    ``write``: the first failure ends the call with a WriteError carrying every record so far
    (WriteRejected as the driver raised it; a DriverTimeout, NotConnected or ProtocolError
    becomes WriteInterrupted). ``safe_state``: every step is tried whatever happened to the one
    before; a step whose exchange failed (not one the instrument refused) is tried once more,
    after ``recover()`` (a fresh connection); any failure left raises SafeStateError at the end.
    Cancellation is never swallowed."""
    records: list[WriteRecord] = []
    failures: list[str] = []
    for step in steps:
        record, error = await _attempt(instrument, step, timeout_s, clock, purpose)
        records.append(record)
        if error is not None and purpose == "safe_state" and not isinstance(error, WriteError):
            try:
                if recover is not None:
                    async with asyncio.timeout(timeout_s):
                        await recover()
            except (DriverError, TimeoutError) as exc:
                reason = exc.reason if isinstance(exc, DriverError) else "timed out"
                failures.append(f"{step.label}: reconnect: {reason}")
            else:
                record, error = await _attempt(instrument, step, timeout_s, clock, purpose)
                records.append(record)
        if error is None:
            continue
        if purpose == "safe_state":
            failures.append(f"{step.label}: {error.reason}")
            continue
        if isinstance(error, WriteError):
            error.records = tuple(records)
            raise error
        raise WriteInterrupted(
            instrument, f"{step.label}: {error.reason}", step.target, tuple(records)
        ) from error
    if failures:
        raise SafeStateError(instrument, failures, tuple(records))
    return records


async def run_safe_state(
    config: InstrumentBase,
    steps: Callable[[], Sequence[Step]],
    *,
    connected: bool,
    connect: Callable[[], Awaitable[None]],
    clock: Clock,
    timeout_s: float | None = None,
    close: Callable[[], Awaitable[None]] | None = None,
) -> list[WriteRecord]:
    """A driver's ``safe_state()``: connect first when not ``connected`` (within the
    instrument's ``connect_timeout_s``; SafeStateError saying why when that fails, after
    ``close()`` if given: a driver whose failed connect leaves half a session), then the
    ``steps`` built after it, every one tried within ``timeout_s`` (the instrument's when None),
    a step whose exchange failed tried again after ``connect()`` (see :func:`run_steps`)."""
    if not connected:
        try:
            async with asyncio.timeout(config.connect_timeout_s):
                await connect()
        except (DriverError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, DriverError) else "connect timed out"
            if close is not None:
                await close()
            raise SafeStateError(config.name, [f"connect: {reason}"]) from exc
    return await run_steps(
        config.name,
        steps(),
        timeout_s=config.timeout_s if timeout_s is None else timeout_s,
        clock=clock,
        purpose="safe_state",
        recover=connect,
    )
