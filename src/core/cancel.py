"""Awaiting a library's coroutine so that cancelling the caller always works.

Python 3.11's ``asyncio.wait_for`` returns the inner result and drops the cancellation when the
result and the cancellation arrive in the same loop step (CPython gh-86296, fixed in 3.12).
pymodbus and asyncua call ``wait_for`` inside every request, so a task cancelled while a reply
comes in keeps running: an agent's runner that will not stop, a shutdown that hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _retrieve(task: asyncio.Future[Any]) -> None:
    # An abandoned request's late error is expected; retrieving it keeps asyncio from logging
    # "exception was never retrieved".
    if not task.cancelled():
        task.exception()


async def cancellable(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, run as its own task: a cancellation of the caller (an
    ``asyncio.timeout`` too) is raised here at once and never reaches the library's
    ``wait_for``; the library's task is cancelled on the way out."""
    task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    task.add_done_callback(_retrieve)
    try:
        return await asyncio.shield(task)
    except BaseException:
        task.cancel()
        raise
