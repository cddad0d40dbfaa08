"""The loop of notify's durable senders (pushes: `workers.DeliveryWorker`; webhooks:
`webhooks.dispatch.WebhookDispatcher`): a pass over what is due in the database, woken by
`wake()` or every `interval` seconds, again at once while a pass came back full."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class PollingWorker:
    interval = 1.0
    pass_size = 200
    name = "delivery"

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def process_due(self) -> int:
        raise NotImplementedError

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
