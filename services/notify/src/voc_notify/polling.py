"""The loop of notify's durable senders (pushes: `workers.DeliveryWorker`; webhooks:
`webhooks.dispatch.WebhookDispatcher`): a pass over what is due in the database, woken by
`wake()` or every `interval` seconds, again at once while a pass came back full."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PollingWorker(ABC):
    interval = 1.0
    pass_size = 200
    name = "delivery"

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    @abstractmethod
    async def process_due(self) -> int:
        """One pass over what is due; how many items it took (a full pass runs another)."""

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                # A short pass means nothing else was due: no extra empty lease transaction per
                # wake (a wake that arrived meanwhile runs the next pass anyway).
                while await self.process_due() >= self.pass_size:
                    pass
            except Exception:
                log.exception("%s pass failed", self.name)
                await asyncio.sleep(0.5)
