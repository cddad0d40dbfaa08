"""How late an event loop runs what is ready, and a gate that makes deferrable work wait for it.

A service's latency-critical path (notify's pages) and its deferrable work (webhook deliveries)
share one event loop and the machine's cores. `LoopLag` measures the loop's lateness with a
sleep that should end every `interval` (smoothed over about ten samples; a loop blocked by its
own work or starved of CPU by other processes ends it late either way). `YieldGate`
holds deferrable work while the lag is over its budget, but never longer than `max_wait`: under
overload the deferrable work slows to a floor instead of taking the cores from the critical
path, and catches up when the load falls (it is durable, so nothing is lost by waiting).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(eq=False, slots=True)
class LoopLag:
    """The loop's smoothed lateness in seconds (`seconds`), measured while `run()` runs (a
    service's background job): how much later than asked each `interval` sleep ends."""

    interval: float = 0.02
    smoothing: float = 0.1
    seconds: float = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.seconds += self.smoothing * (max(0.0, loop.time() - due) - self.seconds)


@dataclass(eq=False, slots=True)
class YieldGate:
    """Deferrable work calls `await gate.wait()` before each unit (a pass, a message): it returns
    at once while the loop's lag is within `budget`, else when the lag falls back under it or
    after `max_wait`, whichever comes first; it returns whether the lag was still over budget
    (the caller may then take a smaller unit). `lag=None` never waits (tests, tools)."""

    lag: LoopLag | None
    budget: float = 0.005
    max_wait: float = 1.0
    step: float = 0.05
    waits: int = 0  # how many waits were over budget (metrics, tests)

    def busy(self) -> bool:
        return self.lag is not None and self.lag.seconds > self.budget

    async def wait(self) -> bool:
        if not self.busy():
            return False
        self.waits += 1
        waited = 0.0
        while waited < self.max_wait:
            await asyncio.sleep(self.step)
            waited += self.step
            if not self.busy():
                return False
        return True
