"""Blocking work off the event loop, in a thread that ends with it.

For occasional work (a history query on the embedded store, reading and compressing a file the
dashboard serves): a pool's idle threads would outlive the request; these do not.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_own_thread(fn: Callable[..., T], *args: Any, name: str = "etalon-work") -> T:
    """``fn(*args)`` in a new thread; its result or exception comes back here."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return  # the caller was cancelled meanwhile
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            result = fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await done
