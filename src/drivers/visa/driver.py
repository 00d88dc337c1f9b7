"""The VISA/SCPI driver: the async face of one instrument's session.

A ``TCPIP::…::SOCKET``, HiSLIP (``TCPIP::…::hislipN::INSTR``), VXI-11 (``TCPIP::host::INSTR``) or
serial (``ASRL/dev/…::INSTR``, POSIX) resource runs its exchanges on the event loop
(:class:`~drivers.visa.socket_link.SocketLink`, :class:`~drivers.visa.hislip_link.HislipLink`,
:class:`~drivers.visa.vxi11_link.Vxi11Link`, :class:`~drivers.visa.serial_link.SerialLink`; no
thread), one at a time. Every other resource (and those four with ``socket_io: pyvisa``) runs
them on the instrument's own worker thread (:class:`~drivers.visa.worker.SessionWorker`), a whole
exchange per hop: all the queries of a tick's due set, or one write with its checks. What
happens when the instrument stops answering, explicitly:

- A query that gets no reply fails when its I/O timeout (``visa_timeout_s``) expires, cut to
  what is left of the whole exchange's budget (``timeout_s`` for a read): the exchange ends by
  its deadline however many queries of the set would hang. The session may still receive the
  late reply, so the next exchange is preceded by a re-open, within its own deadline
  (``connect_timeout_s``) — a late reply must never be taken for the answer to a new query.
- When the agent gives up on a read (its own timeout, or a shutdown), no further query is sent;
  the query in flight ends within its timeout (on the loop: at once); the next exchange
  re-opens.
- (The worker thread only.) When the thread's VISA call has not returned :data:`STUCK_GRACE_S`
  after the deadline (a VISA library that ignores its own timeout), a watchdog abandons the
  thread: the exchanges waiting on
  it fail with DriverTimeout, the next one runs on a fresh thread with a fresh session, and the
  abandoned thread closes its session and ends if its call ever returns. With
  :data:`MAX_STUCK_THREADS` abandoned threads still stuck, no further session is opened
  (NotConnected) until one of them returns: a broken library cannot make the agent pile up
  threads and sessions.

Writes (:class:`drivers.base.SettableDriver`) take the same turn (the worker thread, or the
loop's lock), so they never interleave with a read: each set-point is checked against the
instrument's declared limits before anything is sent, then the profile's command is sent, the
error queue read (stale entries drained first, so what it says is about this write), ``*OPC?``
waited for if the profile asks, and the value read back where the profile can.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

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
from drivers.visa.link import drive
from drivers.visa.session import VisaSession
from drivers.visa.worker import Budget, SessionWorker

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

Job = Callable[[VisaSession], Coroutine[Any, Any, T]]
"""An exchange: a coroutine of the session (see :mod:`drivers.visa.session`)."""

STUCK_GRACE_S = 1.0
"""How long after its deadline a worker thread's VISA call may still return before the thread is
given up as stuck (a call cut to its deadline returns within milliseconds of it)."""

MAX_STUCK_THREADS = 2
"""Abandoned worker threads (each holding a session) a driver tolerates at once."""


class VisaDriver:
    """Driver for :class:`VisaInstrument` (see :mod:`drivers.base` for the contract)."""

    def __init__(self, config: VisaInstrument, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.profile = config.resolved_profile()
        self._worker: SessionWorker | None = None
        self._session: VisaSession | None = None
        self._identity: dict[str, str] = {}
        self._targets = config.write_targets()
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_loop: asyncio.AbstractEventLoop | None = None
        self.stuck_threads: list[SessionWorker] = []
        """Abandoned worker threads, kept until they end (see the module doc)."""
        self._write_s = config.timeout_s + config.io_timeout_s  # may wait behind a read
        self._turn = asyncio.Lock()
        """Taken by each exchange of a session on the event loop (a SOCKET resource)."""

    async def _call(self, job: Job[T], seconds: float, label: str = "read") -> T:
        """Run ``job`` within ``seconds`` (see the module doc); a session cut off before is
        re-opened first, within its own connect timeout."""
        session = self._session
        if session is not None and session.needs_reopen:
            await self._exchange(_reopen, self.config.connect_timeout_s, "re-open")
        return await self._exchange(job, seconds, label)

    async def _exchange(self, job: Job[T], seconds: float, label: str) -> T:
        """Run ``job`` on the event loop (a SOCKET session) or on the worker thread."""
        session = self._session
        if session is None:
            raise NotConnected(self.config.name, self._refusal() or "not connected")
        if session.on_loop:
            return await self._on_loop(session, job, seconds, label)
        return await self._on_worker(session, job, seconds, label)

    async def _on_worker(self, session: VisaSession, job: Job[T], seconds: float, label: str) -> T:
        """Run ``job`` on the worker thread, one hop there and one back."""
        worker = self._worker
        if worker is None:
            raise NotConnected(self.config.name, self._refusal() or "not connected")
        budget = Budget(seconds, label)
        future = worker.submit(lambda b: drive(session.start(b, job)), budget)
        loop = asyncio.get_running_loop()
        # A timer of an event loop that has finished never fires: a driver used from one
        # asyncio.run after another arms one on the new loop.
        if self._watchdog is None or self._watchdog_loop is not loop:
            self._watchdog = loop.call_later(seconds + STUCK_GRACE_S, self._watch)
            self._watchdog_loop = loop
        try:
            return await future
        except asyncio.CancelledError:
            # The thread stops before its next query; the one in flight may still be answered
            # after we left, so the next exchange starts on a fresh session.
            budget.cancelled = True
            session.needs_reopen = True
            raise

    async def _on_loop(self, session: VisaSession, job: Job[T], seconds: float, label: str) -> T:
        """Run ``job`` on the event loop: one exchange at a time, as the worker thread runs
        them (acquire and release, not ``async with``: a read is short, the frames count)."""
        turn = self._turn
        await turn.acquire()
        try:
            budget = Budget(seconds, label)
            budget.start()
            return await session.start(budget, job)
        except asyncio.CancelledError:
            session.needs_reopen = True  # a reply may still come on this connection
            raise
        finally:
            turn.release()

    def _watch(self) -> None:
        """The watchdog: abandon the worker thread if its call is long past its deadline."""
        self._watchdog = None
        worker = self._worker
        if worker is None or not worker.busy():
            return  # re-armed by the next exchange
        current = worker.current
        until = _until_overdue(current)
        if current is not None and until <= 0:
            self._abandon(worker, current)
            return
        self._watchdog = asyncio.get_running_loop().call_later(max(until, 0.01), self._watch)

    def _abandon(self, worker: SessionWorker, budget: Budget) -> None:
        """Give up on a stuck worker thread; the next exchange gets a fresh one if allowed."""
        session = self._session
        assert session is not None
        reason = (
            f"{budget.label}: the VISA call has not returned {budget.seconds + STUCK_GRACE_S:g} s "
            f"after it began (its timeout is {budget.seconds:g} s); worker thread "
            f"{worker.thread.name!r} abandoned, a fresh session follows"
        )
        self._give_up(
            worker,
            DriverTimeout(self.config.name, reason),
            session,
            "VISA call stuck past its timeout; worker thread abandoned",
        )
        if self._refusal() is None:
            self._worker = SessionWorker(self._thread_name())
            self._session = session.successor()
        else:
            self._worker = self._session = None

    def _give_up(
        self, worker: SessionWorker, error: Exception, session: VisaSession, message: str
    ) -> None:
        """Abandon ``worker`` (its waiting callers get ``error``; ``session`` is closed when its
        call returns), count it stuck, and say so."""
        worker.abandon(error, cleanup=session.close)
        self.stuck_threads.append(worker)
        log.warning(
            message, extra={"instrument": self.config.name, "worker_thread": worker.thread.name}
        )

    def _refusal(self) -> str | None:
        """Why no session may be opened now (too many threads stuck), or None."""
        self.stuck_threads = [w for w in self.stuck_threads if w.alive]
        if len(self.stuck_threads) < MAX_STUCK_THREADS:
            return None
        return (
            f"{len(self.stuck_threads)} worker threads are still stuck in the VISA library "
            "(calls past their timeout); no new session until one returns"
        )

    def _thread_name(self) -> str:
        return f"visa-{self.config.name}"

    async def connect(self) -> None:
        """Open the resource, identify the instrument, run the profile's init sequence."""
        await self.close()
        refusal = self._refusal()
        if refusal is not None:
            raise NotConnected(self.config.name, refusal)
        session = VisaSession(self.config, self.profile, self.clock)
        self._turn = asyncio.Lock()  # of this event loop (an old one may have ended)
        if not session.on_loop:
            self._worker = SessionWorker(self._thread_name())
        self._session = session
        seconds = self.config.connect_timeout_s + self.config.timeout_s
        self._identity = await self._call(_open, seconds, "connect")

    async def read(self, channels: Sequence[VisaChannel]) -> list[Reading]:
        """One reading per channel; the error queue marks the readings it concerns."""
        session = self._session
        if session is None or session.needs_reopen:
            return await self._call(_read(channels), self.config.timeout_s)
        if not session.on_loop:
            return await self._on_worker(session, _read(channels), self.config.timeout_s, "read")
        # The usual on the loop: :meth:`_on_loop` written out, without a job to make and call
        # (a read against an instrument that answers at once pays for every frame and object).
        turn = self._turn
        await turn.acquire()
        try:
            session.begin_read()
            return await session.read(channels)
        except asyncio.CancelledError:
            session.needs_reopen = True  # a reply may still come on this connection
            raise
        finally:
            turn.release()

    async def close(self) -> None:
        """Close the session after the exchanges already queued; a thread whose exchange
        overruns its deadline by :data:`STUCK_GRACE_S` is abandoned (it closes the session
        itself when its call returns)."""
        worker, session = self._worker, self._session
        self._worker = self._session = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if session is None:
            return
        if worker is None:  # a session on the event loop: after the exchange in progress
            async with self._turn:
                session.close()
            return
        closed = worker.submit(lambda _: session.close(), Budget(STUCK_GRACE_S, "close"))
        worker.stop()
        # The exchanges queued before the close run first, each within its budget; only one
        # overrunning its deadline by the grace gets the thread abandoned.
        while not closed.done() and worker.alive:
            current = worker.current
            if current is not None and current.left() <= -STUCK_GRACE_S:
                closed.cancel()  # nobody awaits it any more: no error to leave unretrieved
                self._give_up(
                    worker,
                    NotConnected(self.config.name, "closed"),
                    session,
                    "VISA worker still busy at close; abandoned",
                )
                return
            until = _until_overdue(current)
            await asyncio.wait({closed}, timeout=max(until, 0.01))
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
                identity = await self._call(_identify, self.config.timeout_s, "identify")
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
            await self._call(
                lambda s: s.apply_setpoint(target.name, setpoint, value, trace),
                self._write_s,
                "write",
            )

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
            connected=self._session is not None,
            connect=self._recover,
            clock=self.clock,
            # A step may wait behind an exchange already on the worker (at most its I/O timeout).
            timeout_s=self.config.timeout_s + self.config.io_timeout_s,
            close=self.close,
        )

    async def _recover(self) -> None:
        """A session, if there is none (a broken one re-opens itself at the next exchange):
        the safe state's connect, and what it runs before a step is tried again."""
        if self._session is None:
            await self.connect()

    async def _command(self, command: str, trace: WriteTrace) -> None:
        await self._call(lambda s: s.apply_command(command, trace), self._write_s, "write")


def _read(channels: Sequence[VisaChannel]) -> Job[list[Reading]]:
    return lambda session: session.read(channels)


async def _open(session: VisaSession) -> dict[str, str]:
    return await session.open()


async def _reopen(session: VisaSession) -> None:
    await session.reopen()


async def _identify(session: VisaSession) -> dict[str, str]:
    return await session.identify()


def _until_overdue(current: Budget | None) -> float:
    """Seconds until the job in progress is overdue by the grace (a queued job: not started)."""
    return current.left() + STUCK_GRACE_S if current is not None else STUCK_GRACE_S
