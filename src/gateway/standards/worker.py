"""The one worker the standards' CPU work runs on: a low-priority process of its own (or a
thread), restarted when it breaks, stopped within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from typing import Any, TypeVar

T = TypeVar("T")


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""What asks the gateway to stop; the worker leaves them to it."""


def _worker_start() -> None:
    """In the worker process: yield the CPU to ingest when the machine is busy, leave Ctrl-C
    and SIGTERM to the gateway, and end with the gateway. The terminal sends SIGINT to the
    whole process group, systemd SIGTERM to the whole control group; the gateway stops the
    worker itself, so the worker ignores both (it was spawned with them blocked, see
    :meth:`Worker.submit`: one that came while it was still importing is discarded here too).
    A gateway gone without stopping it (a forced stop, a kill) is noticed by a thread that
    ends the worker: waiting for work from a parent that is gone, it would stay for ever."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    with contextlib.suppress(OSError):
        os.nice(10)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_end_with, args=(parent.sentinel,), name="end-with-gateway", daemon=True
        ).start()


def _end_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread: a process (or thread) started meanwhile
    inherits the mask, so neither reaches a worker before :func:`_worker_start` ignores them.
    One arriving meanwhile is not lost: another thread takes it, or it is delivered on
    unblock."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def analytics_executor(kind: str) -> Executor:
    """One worker: a low-priority process (spawned: the gateway has threads) or a thread."""
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="standards")
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
    )


class Worker(Executor):
    """The analytics' executor, replaced by a fresh one if its process dies (killed, out of
    memory): the readers keep this object, so they use the new one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._inner = analytics_executor(kind)
        self.restarts = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn`` on the worker (starting its process, if none runs, with SIGINT and
        SIGTERM blocked)."""
        if self.kind == "thread":
            return self._inner.submit(fn, *args, **kwargs)
        with _stop_signals_blocked():
            return self._inner.submit(fn, *args, **kwargs)

    def restart(self) -> None:
        """Drop a broken worker and start another."""
        self._inner.shutdown(wait=False, cancel_futures=True)
        self._inner = analytics_executor(self.kind)
        self.restarts += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the worker."""
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)

    async def stop(self, timeout_s: float) -> None:
        """Stop the worker without blocking the event loop: its current job gets up to
        ``timeout_s`` to finish, then its process is killed (it ignores SIGTERM; a thread
        cannot be, and is left to finish on its own)."""
        inner = self._inner
        # Taken before shutdown, which forgets them.
        processes = list((getattr(inner, "_processes", None) or {}).values())
        inner.shutdown(wait=False, cancel_futures=True)

        def end() -> None:
            deadline = time.monotonic() + timeout_s
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join(5)

        await asyncio.to_thread(end)
