"""One worker thread per VISA session: the session's blocking calls, one job at a time.

Why a thread per session: pyvisa blocks, and a hung instrument must hold up nobody but itself.
Why a job is a whole exchange (every query of a tick's due set, a write with its checks), not one
query: each hop between the event loop and the thread costs thread wake-ups, on a busy machine
more than a loopback SCPI round trip, so the thread runs all of a tick's queries before it hands
the readings back in one go.

Time bounds, all explicit:

- Every job carries a :class:`Budget`: its deadline, and a flag the event loop sets when the task
  awaiting the job is cancelled. The session checks it before each query and cuts a query's VISA
  timeout to what is left (:mod:`drivers.visa.session`), so a job ends by its deadline even when
  every query hangs, and a cancelled job stops at the next query.
- A thread whose VISA call has not returned long after its deadline (a VISA library ignoring its
  own timeout) is *abandoned* (:meth:`SessionWorker.abandon`): whoever awaits its jobs gets the
  error at once, the driver goes on with a fresh thread and session, and the abandoned thread,
  when the call returns at last, closes its session and ends without running anything else. It is
  a daemon thread, so it never keeps the agent from exiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("etalon.drivers.visa")

T = TypeVar("T")

_EVENTFD = hasattr(os, "eventfd")
"""Linux: the wake-ups both ways go through an eventfd, a counter in the kernel: one write and one
read of 8 bytes, cheaper than a pipe's or a socket pair's (0.9 µs against 1.4 and 2.4 µs a write
and read, measured), and it cannot fill up. Elsewhere a pipe wakes the thread and a socket pair
the loop (a Windows selector loop watches sockets only)."""


class Budget:
    """The time one job may take once it has started — a deadline on the monotonic clock
    (``asyncio``'s too) — and whether whoever awaits the job has given up on it.

    The clock starts when the thread takes the job up, not when it is queued: a read queued
    behind one that was given up (and is finishing its query in flight) still gets its whole
    time. Whoever awaits may bound the wait in the queue too (the agent does)."""

    __slots__ = ("cancelled", "deadline", "label", "seconds")

    def __init__(self, seconds: float, label: str = "read") -> None:
        self.seconds = seconds
        self.label = label
        """What the job is ('read', 'write', 'connect'), for messages."""
        self.deadline = math.inf
        self.cancelled = False

    def start(self) -> None:
        """Start the clock (the worker thread, as it takes the job up)."""
        self.deadline = time.monotonic() + self.seconds

    def left(self) -> float:
        """Seconds until the deadline (negative once passed)."""
        return self.deadline - time.monotonic()


Settle = Callable[["asyncio.Future[Any]", Any, BaseException | None], None]


class ResultPort:
    """The way back from every worker thread to one event loop: results wait in a deque, and a
    write to an eventfd (or a socket pair) the loop watches wakes it.

    Why not ``call_soon_threadsafe``: that wakes the loop the same way, but the loop then reads
    its wake-up socket until it raises BlockingIOError and makes a handle per result (measured
    per hop: 106–112 µs of CPU with it, 86–97 µs with the port, load average 8–10). One port
    per loop (one or two file descriptors however many instruments); a loop that cannot watch
    file descriptors (Windows' proactor) gets none, and the workers fall back to
    ``call_soon_threadsafe``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._results: collections.deque[
            tuple[Settle, asyncio.Future[Any], Any, BaseException | None]
        ] = collections.deque()
        self._wake: Callable[[], object]
        self._take: Callable[[], object]
        self._close: Callable[[], None]
        fd: int
        if _EVENTFD:  # never blocks: a count not yet read is a wake-up pending
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._wake = functools.partial(os.eventfd_write, fd, 1)
            self._take = functools.partial(os.eventfd_read, fd)
            self._close = functools.partial(os.close, fd)
        else:
            wake_r, wake_w = socket.socketpair()
            wake_r.setblocking(False)
            wake_w.setblocking(False)
            self._wake = functools.partial(wake_w.send, b"r")
            self._take = functools.partial(wake_r.recv, 4096)

            def close() -> None:
                wake_r.close()
                wake_w.close()

            self._close = close
            fd = wake_r.fileno()
        loop.add_reader(fd, self._drain)

    def post(
        self, settle: Settle, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        """Hand a result to the loop (from a worker thread)."""
        self._results.append((settle, future, result, error))
        # Full: a wake-up is pending anyway. Closed: the loop is gone, nobody waits. (try, not
        # contextlib.suppress, here and in _drain and submit: once per exchange, suppress costs
        # 1-1.5 µs each, try nothing.)
        try:  # noqa: SIM105
            self._wake()
        except OSError:
            pass

    def _drain(self) -> None:
        try:  # noqa: SIM105
            self._take()  # first: a result posted after this wakes us again
        except OSError:
            pass
        results = self._results
        while results:
            settle, future, result, error = results.popleft()
            settle(future, result, error)

    def close(self) -> None:
        """Close the wake-up's file descriptors (when the loop is gone); once."""
        # A worker thread still finishing a job posts after this: it must not write into the
        # closed descriptor's number, which the process may have given to another file.
        close, self._close = self._close, _nothing
        self._wake = self._take = _nothing
        close()


def _nothing() -> None:
    """What a closed port's wake-up, take and close do."""


_PORTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultPort | None] = (
    weakref.WeakKeyDictionary()
)


def _port_of(loop: asyncio.AbstractEventLoop) -> ResultPort | None:
    """The loop's result port, made on first use; None where the loop cannot have one."""
    try:
        return _PORTS[loop]
    except KeyError:
        pass
    port: ResultPort | None
    try:
        port = ResultPort(loop)
    except NotImplementedError:  # a proactor loop: no add_reader
        port = None
    else:
        weakref.finalize(loop, port.close)
    _PORTS[loop] = port
    return port


_Job = tuple[
    Callable[[Budget], Any],
    Budget,
    "asyncio.Future[Any]",
    asyncio.AbstractEventLoop,
    ResultPort | None,
]


class SessionWorker:
    """A daemon thread running jobs in order, each result handed to an asyncio future.

    Jobs wait in a deque; a write to an eventfd (elsewhere a byte on a pipe) wakes the thread.
    Not a ``queue.SimpleQueue``: the write lets go of the GIL while it wakes the thread, so the
    woken thread can start at once instead of waking, finding the GIL taken and sleeping again
    (measured with ``perf stat``: 3.3 context switches per one-query read instead of 5.7–6.0).
    Results go back through the loop's :class:`ResultPort`.
    """

    def __init__(self, name: str) -> None:
        self._jobs: collections.deque[_Job | None] = collections.deque()
        self._wake_w: int
        self._wake_r: int
        self._wake: Callable[[], object]
        self._wait: Callable[[], object]
        if _EVENTFD:
            # Blocking, for the thread's read; the loop's write would block only on a count
            # of 2**64 - 1. Each side closes its own descriptor of the counter, so the loop's
            # last write (stop) never meets a descriptor the thread closed.
            self._wake_w = os.eventfd(0, os.EFD_CLOEXEC)
            self._wake_r = os.dup(self._wake_w)
            self._wake = functools.partial(os.eventfd_write, self._wake_w, 1)
            self._wait = functools.partial(os.eventfd_read, self._wake_r)
        else:
            self._wake_r, self._wake_w = os.pipe()
            # Never block the event loop: a full pipe (a stuck thread with a backlog) already
            # holds a wake-up.
            os.set_blocking(self._wake_w, False)
            self._wake = functools.partial(os.write, self._wake_w, b"j")
            self._wait = functools.partial(os.read, self._wake_r, 512)
        self._pending: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: ResultPort | None = None
        self._cleanup: Callable[[], None] | None = None
        self._stopped = False
        self.abandoned = False
        """Set by :meth:`abandon`: the thread's results are dropped and it ends after its call."""
        self.current: Budget | None = None
        """The budget of the job running now (read by the driver's watchdog)."""
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    # -- the event loop's side ---------------------------------------------------------------

    def submit(self, job: Callable[[Budget], T], budget: Budget) -> asyncio.Future[T]:
        """Queue a job; the returned future (of the running loop) gets its result."""
        if self._stopped:
            raise RuntimeError(f"{self.thread.name}: worker stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if loop is not self._loop:
            self._loop, self._port = loop, _port_of(loop)
        self._pending.add(future)
        self._jobs.append((job, budget, future, loop, self._port))
        try:  # noqa: SIM105
            self._wake()
        except BlockingIOError:
            pass
        return future

    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return bool(self._pending) or self.current is not None

    def stop(self) -> None:
        """Let the thread end after the jobs already queued."""
        if self._stopped:
            return
        self._stopped = True
        self._jobs.append(None)
        # Closing our end also wakes the thread (a pipe's reads end-of-file) if the byte were
        # lost; an eventfd's count is never lost, and the thread closes its own descriptor.
        with contextlib.suppress(OSError):
            self._wake()
        os.close(self._wake_w)

    def abandon(self, error: BaseException, cleanup: Callable[[], None]) -> None:
        """Give up on the thread: every job not yet settled fails with ``error`` now, queued jobs
        never run, and when the call in progress returns the thread runs ``cleanup`` (closes its
        session) and ends."""
        self._cleanup = cleanup
        self.abandoned = True
        for future in list(self._pending):
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self.stop()

    @property
    def alive(self) -> bool:
        """Whether the thread still runs (an abandoned one: still inside its stuck call)."""
        return self.thread.is_alive()

    def _settle(
        self, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        self._pending.discard(future)
        if future.done():  # cancelled by its awaiter, or failed by abandon()
            return
        if isinstance(error, asyncio.CancelledError):  # skipped: given up before it started
            future.cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    # -- the thread's side -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._next_batch():
                pass
        finally:
            os.close(self._wake_r)
            if self.abandoned and self._cleanup is not None:
                self._cleanup()
                log.info(
                    "abandoned VISA worker thread returned and closed its session",
                    extra={"worker_thread": self.thread.name},
                )

    def _next_batch(self) -> bool:
        """Wait for a wake-up, run every queued job; False when the thread should end."""
        if not self._wait():
            return False  # a pipe whose loop end is closed, everything queued has been run
        jobs = self._jobs
        while jobs:
            item = jobs.popleft()
            if item is None or self.abandoned:
                return False
            job, budget, future, loop, port = item
            outcome: tuple[Any, BaseException | None]
            if budget.cancelled:  # given up before it started: not worth an exchange
                outcome = (None, asyncio.CancelledError())
            else:
                budget.start()
                self.current = budget
                try:
                    outcome = (job(budget), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
                    outcome = (None, exc)
                self.current = None
            if self.abandoned:  # the loop has failed this job already; its session is spent
                return False
            if port is not None:
                port.post(self._settle, future, *outcome)
            else:  # A closed loop (RuntimeError) has nobody waiting for this any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._settle, future, *outcome)
        return True
