"""The VISA/SCPI driver: the async face of one pyvisa session.

Every blocking call runs on the instrument's own worker thread (:class:`~drivers.visa.session.
Worker`), one tick's queries in one hop. When the agent's timeout cancels a read, the thread
finishes on its own when pyvisa's I/O timeout expires, and the next exchange re-opens the session
first — a late reply on the old session must never be taken for the answer to a new query.

Writes (:class:`drivers.base.SettableDriver`) go through the same worker thread, so they never
interleave with a read: each set-point is checked against the instrument's declared limits
before anything is sent, then the profile's command is sent, the error queue read (stale
entries drained first, so what it says is about this write), ``*OPC?`` waited for if the
profile asks, and the value read back where the profile can.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from core.clock import Clock
from core.errors import DriverError, DriverTimeout, NotConnected
from drivers.reading import Reading
from drivers.setpoints import (
    SafeValue,
    SetValue,
    Step,
    WriteRecord,
    WriteTarget,
    WriteTrace,
    run_safe_state,
    write_setpoints,
)
from drivers.visa.config import VisaChannel, VisaInstrument
from drivers.visa.session import VisaSession, Worker

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

CLOSE_GRACE_S = 1.0
"""How much longer than the I/O timeout ``close`` waits for a busy worker thread."""


class VisaDriver:
    """Driver for :class:`VisaInstrument` (see :mod:`drivers.base` for the contract)."""

    def __init__(self, config: VisaInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.profile = config.resolved_profile()
        self._worker: Worker | None = None
        self._session: VisaSession | None = None
        self._identity: dict[str, str] = {}
        self._targets = config.write_targets()

    async def _call(self, job: Callable[[VisaSession], T]) -> T:
        worker, session = self._worker, self._session
        if worker is None or session is None:
            raise NotConnected(self.config.name, "not connected")
        future = worker.submit(lambda: job(session))
        try:
            return await future
        except asyncio.CancelledError:
            # The thread may still be inside pyvisa; whatever it gets back belongs to this
            # abandoned exchange, so the next one starts on a fresh session.
            session.needs_reopen = True
            raise

    async def connect(self) -> None:
        """Open the resource, identify the instrument, run the profile's init sequence."""
        await self.close()
        self._worker = Worker(f"visa-{self.config.name}")
        self._session = VisaSession(self.config, self.profile, self.clock)
        self._identity = await self._call(lambda session: session.open())

    async def read(self, channels: Sequence[VisaChannel]) -> list[Reading]:
        """One reading per channel; the error queue marks the readings it concerns."""
        return await self._call(lambda session: session.read(channels))

    async def close(self) -> None:
        """Close the session; waits for a busy worker at most its I/O timeout plus a grace."""
        worker, session = self._worker, self._session
        self._worker = self._session = None
        if worker is None or session is None:
            return
        closed = worker.submit(session.close)
        worker.stop()
        done, _ = await asyncio.wait({closed}, timeout=self.config.io_timeout_s + CLOSE_GRACE_S)
        if not done:
            closed.cancel()
            log.warning(
                "VISA worker still busy at close; abandoned",
                extra={"instrument": self.config.name, "thread": worker.thread.name},
            )
            return
        for _ in range(100):  # the thread has only the stop sentinel left: a few µs
            if not worker.thread.is_alive():
                break
            await asyncio.sleep(0.001)

    def describe(self) -> dict[str, str]:
        """``*IDN?`` fields (manufacturer, model, serial, firmware), resource and profile."""
        return dict(self._identity)

    async def identify(self) -> dict[str, str]:
        """``*IDN?`` now (a swapped instrument shows a new serial)."""
        try:
            async with asyncio.timeout(self.config.timeout_s):
                identity = await self._call(lambda session: session.identify())
        except TimeoutError as exc:
            if isinstance(exc, DriverError):
                raise
            raise DriverTimeout(
                self.config.name, f"identify: no reply within {self.config.timeout_s:g} s"
            ) from exc
        self._identity = identity
        return dict(identity)

    # -- writes --------------------------------------------------------------------------------

    def write_targets(self) -> Mapping[str, WriteTarget]:
        """The set-points the config declares writable, with this bench's limits."""
        return dict(self._targets)

    def _setpoint_step(self, target: WriteTarget, value: SetValue) -> Step:
        setpoint = self.profile.setpoints[target.name]

        async def apply(trace: WriteTrace) -> None:
            await self._call(lambda s: s.apply_setpoint(target.name, setpoint, value, trace))

        return target.step(value, apply)

    async def write(self, setpoints: Mapping[str, SetValue]) -> list[WriteRecord]:
        """Check every value against its target, then set them in order (see the module doc)."""
        return await write_setpoints(
            self.config, self._targets, setpoints, self._setpoint_step, clock=self.clock
        )

    async def safe_state(self) -> list[WriteRecord]:
        """Run the declared safe state, every step even after a failed one; connects first
        when there is no session (and closes again when that fails)."""

        def steps() -> list[Step]:
            made: list[Step] = []
            for item in self.config.resolved_safe_state():
                if isinstance(item, SafeValue):
                    target = self._targets[item.target]
                    made.append(self._setpoint_step(target, target.check(item.value)))
                else:
                    made.append(Step(item, functools.partial(self._command, item)))
            return made

        return await run_safe_state(
            self.config,
            steps,
            connected=self._worker is not None and self._session is not None,
            connect=self._recover,
            clock=self.clock,
            # A step may wait behind an exchange already on the worker (at most its I/O timeout).
            timeout_s=self.config.timeout_s + self.config.io_timeout_s,
            close=self.close,
        )

    async def _recover(self) -> None:
        """A session, if there is none (a broken one re-opens itself at the next exchange):
        the safe state's connect, and what it runs before a step is tried again."""
        if self._worker is None or self._session is None:
            await self.connect()

    async def _command(self, command: str, trace: WriteTrace) -> None:
        await self._call(lambda s: s.apply_command(command, trace))
