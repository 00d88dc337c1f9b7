"""The instruments of a run, opened with the agent's own drivers and config.

Every exchange has a timeout (the instrument's ``timeout_s``, ``connect_timeout_s`` to
connect). A reading goes through the agent's pipeline (scale, offset, uncertainty, tags) exactly
as the agent would spool it. Every write and every safe-state step produces records, which are
handed to ``on_writes`` as soon as they exist — also when the write failed — so that the audit
holds what reached each instrument even if the process dies a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.clock import Clock
from core.errors import DriverError, DriverTimeout, SafeStateError, WriteError
from core.logs import log_event
from drivers.base import Driver, IdentifyingDriver, SettableDriver
from drivers.config import ChannelBase, InstrumentBase
from drivers.reading import Reading
from drivers.registry import create_driver
from drivers.setpoints import SetValue, WriteRecord, records_of
from edge_agent.config import AgentConfig
from edge_agent.pipeline import finish

T = TypeVar("T")
log = logging.getLogger("etalon.calibration")

WritesCallback = Callable[[str, list[WriteRecord]], Awaitable[None]]


class InstrumentLost(DriverError):
    """An instrument stopped answering: every try of an exchange failed."""


class _Unanswered(Exception):
    """An exchange completed without what it asked for (the reason is the message)."""


@dataclass
class Opened:
    """One instrument of the run: its config and driver."""

    config: InstrumentBase
    driver: Driver[ChannelBase]
    connected: bool = False


class BenchSession:
    """The instruments a procedure uses (see the module doc)."""

    def __init__(
        self,
        agent: AgentConfig,
        names: Sequence[str],
        clock: Clock,
        on_writes: WritesCallback,
        attempts: int = 3,
    ) -> None:
        by_name = {i.name: i for i in agent.instruments}
        self.clock = clock
        self.on_writes = on_writes
        self.attempts = attempts
        self.instruments: dict[str, Opened] = {}
        for name in dict.fromkeys(names):
            config = by_name[name]
            self.instruments[name] = Opened(config, create_driver(config, clock))
        self.written: set[str] = set()
        """Instruments written to during the run (their safe state is applied at the end)."""

    def config(self, name: str) -> InstrumentBase:
        """An instrument's config."""
        return self.instruments[name].config

    def protocol(self, name: str) -> str:
        """An instrument's protocol name."""
        return str(getattr(self.instruments[name].config, "protocol", "?"))

    # -- connections ---------------------------------------------------------------------------

    async def _connect(self, name: str) -> None:
        opened = self.instruments[name]
        try:
            async with asyncio.timeout(opened.config.connect_timeout_s):
                await opened.driver.connect()
        except TimeoutError as exc:
            if isinstance(exc, DriverError):
                raise
            raise DriverTimeout(
                name, f"connect: no answer within {opened.config.connect_timeout_s:g} s"
            ) from exc
        opened.connected = True

    async def open(self) -> None:
        """Connect every instrument; raises DriverError naming the first that cannot."""
        for name in self.instruments:
            await self._connect(name)

    async def _reconnect(self, name: str) -> None:
        opened = self.instruments[name]
        opened.connected = False
        await opened.driver.close()
        with contextlib.suppress(DriverError, TimeoutError):
            await self._connect(name)

    async def close(self) -> None:
        """Close every connection (never raises)."""
        for opened in self.instruments.values():
            with contextlib.suppress(Exception):
                await opened.driver.close()
            opened.connected = False

    # -- reading -------------------------------------------------------------------------------

    async def _exchange(
        self,
        name: str,
        exchange: Callable[[], Awaitable[T]],
        *,
        timeout_s: float,
        no_reply: str,
        lost: str,
        channel: str | None = None,
        log_as: str | None = None,
    ) -> T:
        """``exchange`` with instrument ``name``, tried ``attempts`` times, the connection
        re-opened after a failed try; InstrumentLost (``lost`` and the last reason) after the
        last. ``log_as``: each failed exchange is logged under this event."""
        opened = self.instruments[name]
        reason = ""
        for attempt in range(self.attempts):
            if not opened.connected:
                await self._reconnect(name)
                if not opened.connected:
                    reason = "cannot reconnect"
                    continue
            try:
                async with asyncio.timeout(timeout_s):
                    return await exchange()
            except TimeoutError as exc:
                reason = exc.reason if isinstance(exc, DriverError) else no_reply
            except DriverError as exc:
                reason = exc.reason
            except _Unanswered as exc:
                reason = str(exc)
            if log_as is not None:
                log_event(
                    log, logging.WARNING, log_as, instrument=name, attempt=attempt + 1,
                    reason=reason,
                )  # fmt: skip
            opened.connected = False
        raise InstrumentLost(name, f"{lost} ({self.attempts} tries): {reason}", channel)

    async def read(self, name: str, channel: str) -> Reading:
        """One reading of a channel, finished by the agent's pipeline. A reading the instrument
        marks BAD is returned as it is; an exchange that fails is tried again after re-opening
        the connection, and :class:`InstrumentLost` ends it after ``attempts`` tries."""
        opened = self.instruments[name]
        channels = [c for c in getattr(opened.config, "channels", []) if c.name == channel]

        async def one_reading() -> Reading:
            finished = finish(await opened.driver.read(channels), channels)
            if not finished:
                raise _Unanswered("no reading returned")
            return finished[0]

        return await self._exchange(
            name,
            one_reading,
            timeout_s=opened.config.timeout_s,
            no_reply=f"no reply within {opened.config.timeout_s:g} s",
            lost="stopped answering",
            channel=channel,
            log_as="read failed",
        )

    async def identify(self, name: str) -> dict[str, str]:
        """What the instrument says it is now (``*IDN?``, FC 43), or what it said at connect
        for a protocol that cannot be asked again; raises InstrumentLost."""
        opened = self.instruments[name]
        driver = opened.driver
        if not isinstance(driver, IdentifyingDriver):
            return dict(driver.describe())
        return await self._exchange(
            name,
            driver.identify,
            timeout_s=opened.config.timeout_s + 1.0,
            no_reply="no reply",
            lost="cannot be identified",
        )

    # -- writing -------------------------------------------------------------------------------

    def _settable(self, name: str) -> SettableDriver:
        driver = self.instruments[name].driver
        if not isinstance(driver, SettableDriver):
            raise WriteError(name, "this instrument's driver cannot write set-points")
        return driver

    async def write(self, name: str, setpoints: Mapping[str, SetValue]) -> list[WriteRecord]:
        """Write set-points (checked against the declared limits before anything is sent); the
        records go to ``on_writes`` whatever happens. Raises WriteError."""
        if not setpoints:
            return []
        driver = self._settable(name)
        opened = self.instruments[name]
        if not opened.connected:
            await self._reconnect(name)
        self.written.add(name)
        try:
            records = await driver.write(setpoints)
        except WriteError as exc:
            await self.on_writes(name, records_of(exc))
            raise
        await self.on_writes(name, records)
        return records

    async def safe_state(self, name: str) -> str | None:
        """Put one instrument in its declared safe state; the failure's text, or None."""
        driver = self.instruments[name].driver
        if not isinstance(driver, SettableDriver):
            return None
        try:
            records = await driver.safe_state()
        except SafeStateError as exc:
            await self.on_writes(name, records_of(exc))
            log_event(
                log, logging.ERROR, "SAFE STATE NOT CONFIRMED", instrument=name, reason=exc.reason
            )
            return exc.reason
        except DriverError as exc:
            log_event(
                log, logging.ERROR, "SAFE STATE NOT CONFIRMED", instrument=name, reason=exc.reason
            )
            return exc.reason
        await self.on_writes(name, records)
        return None

    async def describe(self, name: str) -> dict[str, Any]:
        """Protocol and identity as last read, for the record."""
        return {
            "protocol": self.protocol(name),
            "identity": self.instruments[name].driver.describe(),
        }
