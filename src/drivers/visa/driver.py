"""The VISA/SCPI driver: the async face of one pyvisa session.

Every blocking call runs on the instrument's own worker thread (:class:`~drivers.visa.session.
Worker`), one tick's queries in one hop. When the agent's timeout cancels a read, the thread
finishes on its own when pyvisa's I/O timeout expires, and the next exchange re-opens the session
first — a late reply on the old session must never be taken for the answer to a new query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from core.clock import Clock
from core.errors import NotConnected
from drivers.reading import Reading
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
