"""Retention (`VOC_RETENTION_DAYS`): what customers and staff wrote is removed once it is that old,
by a pass each service runs hourly over its own copies (feedback's items, notify's alerts); the
numbers and steps stay, as after an erasure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from voc_platform.periodic import every

log = logging.getLogger(__name__)
EVERY_SECONDS = 3600.0
#: Between two batches of a pass: a first pass over years of rows leaves the service's own
#: writes (intake, alerts) the database most of the time.
PAUSE_SECONDS = 0.2


def retention_job(
    *,
    days: int,
    redact: Callable[[float], Awaitable[int]],
    what: str,
    every_seconds: float = EVERY_SECONDS,
    pause_seconds: float = PAUSE_SECONDS,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A background job: every `every_seconds` (first after one wait), `redact(before)` until it
    finds nothing older than `days` left, `pause_seconds` between calls (each one short
    transaction, so the service's writes go on between them). Nothing when `days` is 0."""

    async def step() -> None:
        before = time.time() - days * 86400.0
        total = 0
        while count := await redact(before):
            total += count
            await asyncio.sleep(pause_seconds)
        if total:
            log.info("retention: %d %s older than %d days redacted", total, what, days)

    async def run() -> None:
        if days > 0:
            await every(every_seconds, step, log=log, failed=f"retention pass over {what} failed")

    run.__name__ = f"retention_{what.replace(' ', '_')}"
    return run
