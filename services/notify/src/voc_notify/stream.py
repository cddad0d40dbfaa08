"""Live alert stream for open apps (server-sent events), fanned out to every replica.

Each connection registers a queue with the stores it may see; alert changes are offered to
every matching queue. A slow client whose queue is full misses live events, not alerts: the
inbox (`GET /v1/alerts`) always has them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from nats.aio.msg import Msg

from voc_platform.bus import Bus

if TYPE_CHECKING:
    from voc_notify.models import Alert


@dataclass(eq=False)
class Listener:
    staff_id: str
    store_ids: frozenset[str]
    area_id: str | None
    all_stores: bool
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=256))


LIVE_SUBJECT = "live.voc.alerts"  # plain NATS, outside the `voc.>` stream: live, not stored


class AlertBroker:
    """Fans live alert events out to this replica's SSE listeners.

    With a bus attached, `publish` goes through NATS (`LIVE_SUBJECT`) and every replica's
    subscription (`on_live_message`) delivers to its own listeners, so an SSE client sees events
    whichever replica served its stream. Without a connected bus it delivers locally.
    """

    def __init__(self) -> None:
        self._listeners: set[Listener] = set()
        self._bus: Bus | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def attach(self, bus: Bus) -> None:
        self._bus = bus

    async def on_live_message(self, msg: Msg) -> None:
        envelope = orjson.loads(msg.data)
        self.deliver(envelope["event"], store_id=envelope["store_id"], area_id=envelope["area_id"])

    def register(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def unregister(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, event: dict[str, Any], *, store_id: str, area_id: str | None) -> int:
        """Send to every replica's listeners (through NATS when connected); returns the number
        of local listeners reached directly (0 when it went through NATS)."""
        bus = self._bus
        if bus is not None and bus.connected and bus.nc is not None:
            data = orjson.dumps({"event": event, "store_id": store_id, "area_id": area_id})
            task = asyncio.ensure_future(bus.nc.publish(LIVE_SUBJECT, data))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            return 0
        return self.deliver(event, store_id=store_id, area_id=area_id)

    def announce(self, kind: str, alert: Alert, summary: dict[str, Any]) -> int:
        """`publish` one alert's change (`alert.created`, `alert.resolved`, …) to whoever may
        see its store or area."""
        return self.publish({"type": kind, "alert": summary}, store_id=alert.store_id, area_id=alert.area_id)

    def deliver(self, event: dict[str, Any], *, store_id: str, area_id: str | None) -> int:
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
