"""Stopping the agent's instrument tasks even when a library swallows a cancellation."""

from __future__ import annotations

import asyncio

from edge_agent.agent import cancel_until_done


async def test_a_task_that_swallows_its_first_cancellation_still_stops() -> None:
    cancellations = 0

    async def stubborn() -> None:
        # What asyncio.wait_for does before Python 3.12 when the cancellation lands as the
        # awaited reply completes: the CancelledError is lost and the caller carries on.
        nonlocal cancellations
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancellations += 1
                if cancellations > 1:
                    raise

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(asyncio.sleep(10))]
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_until_done(tasks, every_s=0.05)
    assert all(t.cancelled() for t in tasks)
    assert cancellations == 2
