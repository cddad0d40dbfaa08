"""The loop-lag monitor and the gate that makes deferrable work yield to it (#19: webhooks wait
while notify's pages do). A real event loop; its lateness made by blocking it, not simulated."""

from __future__ import annotations

import asyncio
import time

from voc_platform.loop_lag import LoopLag, YieldGate


async def test_the_lag_rises_while_the_loop_is_blocked_and_falls_when_it_is_free() -> None:
    lag = LoopLag(interval=0.01, smoothing=0.5)
    job = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.1)
        idle = lag.seconds
        for _ in range(3):  # three 60 ms stalls of the loop, as a burst of CPU-bound work makes
            time.sleep(0.06)  # noqa: ASYNC251  # blocking the loop is the point
            await asyncio.sleep(0)
        blocked = lag.seconds
        for _ in range(200):  # the smoothing forgets them within a few free ticks
            await asyncio.sleep(0.01)
            if lag.seconds < 0.005:
                break
        assert blocked > 0.02 > idle
        assert lag.seconds < 0.005
    finally:
        job.cancel()


async def test_the_gate_passes_at_once_within_budget_and_never_without_a_monitor() -> None:
    assert await YieldGate(None).wait() is False
    lag = LoopLag()
    gate = YieldGate(lag, budget=0.005)
    started = time.monotonic()
    assert await gate.wait() is False
    assert gate.waits == 0 and time.monotonic() - started < 0.05


async def test_the_gate_holds_work_while_the_loop_is_late_but_no_longer_than_its_limit() -> None:
    lag = LoopLag()
    lag.seconds = 0.2  # late, and nothing runs the monitor: it stays late
    gate = YieldGate(lag, budget=0.005, max_wait=0.2, step=0.02)
    started = time.monotonic()
    assert await gate.wait() is True  # still late: the caller takes a smaller unit
    assert time.monotonic() - started >= 0.2
    assert gate.waits == 1

    async def recover() -> None:
        await asyncio.sleep(0.05)
        lag.seconds = 0.0

    started = time.monotonic()
    waited, _ = await asyncio.gather(gate.wait(), recover())
    assert waited is False  # let through as soon as the loop caught up
    assert 0.05 <= time.monotonic() - started < 0.2
    assert gate.waits == 2
