"""Background passes that repeat for the life of a service (flushes, refreshes, watchdogs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(
    seconds: float, step: Callable[[], Awaitable[object]], *, log: logging.Logger, failed: str
) -> None:
    """Run `step` every `seconds`, first after one wait, until cancelled. A failed pass is logged
    on the caller's `log` (`failed`, with the traceback) and the next one runs on time: a
    background pass must outlive a database or network hiccup."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except Exception:
            log.exception(failed)
