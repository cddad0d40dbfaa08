"""Live alert stream for open apps (server-sent events), fanned out in this process.

Each connection registers a queue with the stores it may see; alert changes are offered to
every matching queue. A slow client whose queue is full misses live events, not alerts: the
inbox (`GET /v1/alerts`) always has them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Listener:
    staff_id: str
    store_ids: frozenset[str]
    area_id: str | None
    all_stores: bool
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=256))


class AlertBroker:
    def __init__(self) -> None:
        self._listeners: set[Listener] = set()

    def register(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def unregister(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, event: dict[str, Any], *, store_id: str, area_id: str | None) -> int:
        delivered = 0
        for listener in list(self._listeners):
            visible = (
                listener.all_stores
                or store_id in listener.store_ids
                or (area_id is not None and area_id == listener.area_id)
            )
            if not visible:
                continue
            try:
                listener.queue.put_nowait(event)
                delivered += 1
            except asyncio.QueueFull:
                pass
        return delivered
