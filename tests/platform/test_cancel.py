"""A service's stop cancels its background tasks until they end (`runtime.cancel_and_wait`): on
Python 3.11 `asyncio.wait_for` can swallow a cancellation, and nats-py's connect loop, retrying a
NATS that is down, then goes on; one cancel and an unbounded gather hung a stop in CI."""

from __future__ import annotations

import asyncio

from voc_platform.runtime import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # what a lost cancellation looks like to the caller
                raise

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0.01)
    await asyncio.wait_for(cancel_and_wait([task], timeout=5), 10)
    assert task.cancelled() and swallowed == 2
