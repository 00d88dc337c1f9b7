"""Waiting for a condition in a test, instead of sleeping a fixed time and hoping it holds.

A fixed sleep sized on an idle machine is too short on a loaded one (CI runs beside other
suites on two cores): wait for what the test needs, with a timeout generous enough that only
a real fault reaches it, and say what was awaited when it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.01


async def until(condition: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    """Return as soon as ``condition()`` is true; AssertionError naming ``what`` after
    ``timeout_s``. For state with no event to await (lists, counters filled by other tasks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)
