"""SIGINT and SIGTERM for etalon's processes: the first asks for a clean stop in whatever phase
the process is in, the second ends it at once.

- Installed before the command line is even imported (importing it takes seconds on a small
  machine), so a signal is never lost and never a ``KeyboardInterrupt`` traceback. Until a
  long-running command's :meth:`StopRequests.run` begins, nothing is open: a signal exits at
  once (status 0 for a long-running command, 128 + the signal number for any other).
- During start-up (opening the spool, connecting to a broker that does not answer, opening a
  store), the first signal cancels the start-up: the process closes what it opened and exits 0.
- Once running, the first signal sets the ``stop`` event: the process drains within its grace
  periods and exits 0.
- A second signal, in any phase, exits at once with 128 + the signal number (130 for SIGINT,
  143 for SIGTERM). Nothing is lost: spools commit before they acknowledge.
- A clean stop that has not finished :data:`FORCE_AFTER_S` after the first signal is forced the
  same way: a stop never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from types import FrameType

from core.exits import signal_status

SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCE_AFTER_S = 30.0
"""How long a clean stop may take before it is forced."""


class StopRequests:
    """The process's stop requests; one instance, :data:`STOP`, serves the whole process."""

    def __init__(self) -> None:
        self.first: int | None = None
        """The signal that asked for a stop, if one did."""
        self.announce: Callable[[str, bool], str] = lambda name, overdue: (
            f"forced stop ({name}{', overdue' if overdue else ''})\n"
        )
        """The line written to stderr on a forced stop, given the signal's name and whether the
        clean stop was overdue (the CLI sets a translated one)."""
        self.force_after_s = FORCE_AFTER_S
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.Lock()
        self._watchdog: threading.Timer | None = None
        self._installed = False
        self._status_before_run: int | None = None

    def install(self, status_before_run: int | None = None) -> None:
        """Take SIGINT and SIGTERM (also when the parent had them ignored). Outside
        :meth:`run`, a first signal exits at once with ``status_before_run`` (None: 128 + the
        signal number); a signal after a stop was asked for forces."""
        for sig in SIGNALS:
            signal.signal(sig, self._handle)
        self._installed = True
        self._status_before_run = status_before_run

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.first is not None:
            self.force(signum)
        self.first = signum
        # Nothing is open before run() (imports, config) or after it (teardown of a clean stop).
        status = self._status_before_run
        os._exit(signal_status(signum) if status is None else status)

    def deliver(self, signum: int) -> None:
        """A signal arrived: the first asks for a stop, the next one forces it."""
        with self._lock:
            first = self.first is None
            if first:
                self.first = signum
        if not first:
            self.force(signum)
        self._start_watchdog(signum)
        for listener in list(self._listeners):
            listener(signum)

    def _start_watchdog(self, signum: int) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.force_after_s, self.force, [signum, True])
            self._watchdog.name = "stop-watchdog"
            self._watchdog.daemon = True
            self._watchdog.start()

    def force(self, signum: int, overdue: bool = False) -> None:
        """Exit now, status 128 + signum, with one line on stderr (no traceback, no cleanup
        but :func:`_end_child_processes`)."""
        with contextlib.suppress(OSError):
            os.write(2, self.announce(signal.Signals(signum).name, overdue).encode())
        _end_child_processes()
        os._exit(signal_status(signum))

    async def run(
        self,
        main: Callable[[asyncio.Event], Awaitable[None]],
        started: asyncio.Event | None = None,
        on_stop: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``main(stop)`` until it returns. The first signal sets ``stop``; if ``started`` is
        given and not yet set, it also cancels ``main`` (start-up may be waiting for something
        that does not come). ``on_stop`` hears the signal's name once (for a log line)."""
        if self.first is not None:
            if on_stop is not None:
                on_stop(signal.Signals(self.first).name)
            return  # asked to stop before anything started
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = loop.create_task(_call(main, stop), name="main")
        cancelled_by_us = False

        def first_signal(signum: int) -> None:
            nonlocal cancelled_by_us
            if stop.is_set():
                return
            stop.set()
            if on_stop is not None:
                on_stop(signal.Signals(signum).name)
            if started is not None and not started.is_set():
                cancelled_by_us = True
                task.cancel()

        def in_loop(signum: int) -> None:
            loop.call_soon_threadsafe(first_signal, signum)

        self._listeners.append(in_loop)
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self.deliver, sig)
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not cancelled_by_us or (current is not None and current.cancelling()):
                raise
        finally:
            self._listeners.remove(in_loop)
            for sig in SIGNALS:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            if self._installed:
                # asyncio put the defaults back: a late second signal still forces.
                self.install(self._status_before_run)


def _end_child_processes() -> None:
    """What multiprocessing's own exit does and ``os._exit`` skips: its child processes end
    (the gateway's analytics worker, which leaves SIGINT and SIGTERM to the gateway) and the
    semaphores they shared are unlinked, so its resource tracker finds nothing leaked to warn
    about on the terminal. Nothing to do where multiprocessing was never imported."""
    process = sys.modules.get("multiprocessing.process")
    util = sys.modules.get("multiprocessing.util")
    if process is None or util is None:
        return
    with contextlib.suppress(Exception):
        for child in process.active_children():
            child.kill()
        util._run_finalizers(0)  # its exit's first step: the semaphores' unlinking among them


async def _call(main: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    await main(stop)


STOP = StopRequests()
"""The stop requests of this process."""
