"""core.cancel: a cancellation that Python 3.11's wait_for would drop still arrives."""

from __future__ import annotations

import asyncio
import sys

import pytest

from core.cancel import cancellable


async def _library_request(reply: asyncio.Future[int]) -> int:
    # What pymodbus and asyncua do for every request.
    return await asyncio.wait_for(reply, timeout=10)


async def _caller(reply: asyncio.Future[int], wrapped: bool) -> list[int]:
    replies = []
    while True:  # a poll loop: only a cancellation ends it
        replies.append(
            await (cancellable(_library_request(reply)) if wrapped else _library_request(reply))
        )
        reply = asyncio.get_running_loop().create_future()
        await asyncio.sleep(0.01)


async def _cancel_as_the_reply_arrives(wrapped: bool) -> asyncio.Task[list[int]]:
    reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_caller(reply, wrapped))
    await asyncio.sleep(0.05)  # the caller now waits in wait_for
    reply.set_result(1)
    task.cancel()  # in the same step as the reply
    await asyncio.wait({task}, timeout=1.0)
    return task


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps cancellations since 3.12")
async def test_plain_wait_for_drops_the_cancellation_on_311() -> None:
    task = await _cancel_as_the_reply_arrives(wrapped=False)
    assert not task.done(), "the trap this module exists for is gone: see core/cancel.py"
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    assert task.cancelled()


async def test_a_cancellation_as_the_reply_arrives_ends_the_caller() -> None:
    task = await _cancel_as_the_reply_arrives(wrapped=True)
    assert task.cancelled()


async def test_results_errors_and_timeouts_pass_through() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    done.set_result(7)
    assert await cancellable(_library_request(done)) == 7

    failed: asyncio.Future[int] = loop.create_future()
    failed.set_exception(ValueError("bad reply"))
    with pytest.raises(ValueError, match="bad reply"):
        await cancellable(_library_request(failed))

    never: asyncio.Future[int] = loop.create_future()
    inner = asyncio.ensure_future(_library_request(never))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await cancellable(inner)
    await asyncio.wait({inner}, timeout=1.0)
    assert inner.cancelled(), "the abandoned request is cancelled, not left running"
