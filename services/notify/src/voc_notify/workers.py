"""Background work of notify: sending pushes (with retries) and firing escalation timers.

Both keep their state in the database, so a restart loses nothing: a claimed delivery carries a
lease (`next_attempt_at` moves forward while it is in flight), and timers are rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.message import Message
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from voc.events.v1 import events_pb2
from voc_notify import service
from voc_notify.models import Alert, Delivery, Device, EscalationTimer, Staff, Store, outbox_table
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushSubscription, WebPushSender, backoff_delay
from voc_platform import telemetry
from voc_platform.db import Database
from voc_platform.outbox import add_events

log = logging.getLogger(__name__)

URGENCY = {"urgent": "high", "normal": "normal", "info": "low"}
LEASE_SECONDS = 30.0
PASS_SIZE = 200  # deliveries leased per pass


def push_ttl(alert: Alert, settings: Settings) -> int:
    """Long enough to cover the escalation window: an offline phone still gets it in time."""
    steps = alert.plan.get("escalation") or []
    window = max([int(s.get("after_seconds") or 0) for s in steps] or [0])
    return max(settings.push_min_ttl_seconds, window + 300)


def push_payload(alert: Alert, settings: Settings, *, store: Store | None, language: str) -> bytes:
    title, body = service.push_text(alert, store=store, language=language)
    return orjson.dumps(
        {
            "alert_id": alert.id,
            "feedback_id": alert.feedback_id,
            "title": title,
            "body": body,
            "priority": alert.priority,
            "url": f"{settings.public_url}/#/alerts/{alert.id}",
            "status": alert.status,
            "updates": alert.updates or 0,  # 0 for the first push; k after the k-th repeat
        }
    )


class DeliveryWorker:
    def __init__(self, database: Database, sender: WebPushSender, settings: Settings) -> None:
        self.database = database
        self.sender = sender
        self.settings = settings
        self._wake = asyncio.Event()
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            try:
                # A short pass means nothing else was due: no extra empty lease transaction per
                # wake (a wake that arrived meanwhile runs the next pass anyway).
                while await self.process_due() >= PASS_SIZE:
                    pass
            except Exception:
                log.exception("delivery pass failed")
                await asyncio.sleep(0.5)

    async def process_due(self, limit: int = PASS_SIZE, *, now: float | None = None) -> int:
        """Send every due delivery once; `now` lets tests and tools look ahead (quiet hours)."""
        now = now or time.time()
        query = (
            select(Delivery, Device, Alert, Staff.language, Store)
            .join(Device, Device.id == Delivery.device_id)
            .join(Alert, Alert.id == Delivery.alert_id)
            .join(Staff, Staff.id == Delivery.staff_id)
            .outerjoin(Store, Store.id == Alert.store_id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        )
        if not self.database.sqlite:
            query = query.with_for_update(skip_locked=True, of=Delivery)
        async with self.database.transaction() as session:
            rows = (await session.execute(query)).all()
            for leased, *_ in rows:
                leased.next_attempt_at = now + LEASE_SECONDS  # the lease
            jobs = [
                (
                    d.id,
                    d.attempts,
                    d.staff_id,
                    d.alert_id,
                    PushSubscription(endpoint=dev.endpoint, p256dh=dev.p256dh, auth=dev.auth),
                    dev.id,
                    push_payload(a, self.settings, store=store, language=language),
                    push_ttl(a, self.settings),
                    URGENCY.get(a.priority, "normal"),
                    a.traceparent,
                    a.feedback_id,
                )
                for d, dev, a, language, store in rows
            ]
        if not jobs:
            return 0
        results = await asyncio.gather(*(self._send(*job) for job in jobs))
        # One transaction, and one query per table, for the whole batch's outcomes: under load a
        # pass carries dozens of pushes, and three lookups per push grew with the batch.
        async with self.database.transaction() as session:
            pending = select(Delivery).where(Delivery.id.in_([j[0] for j in jobs]))
            by_id = {d.id: d for d in await session.scalars(pending)}
            used = select(Device).where(Device.id.in_({j[5] for j in jobs}))
            devices = {d.id: d for d in await session.scalars(used)}
            delivered: list[tuple[str, Message, str]] = []
            for job, (status, detail, retry_after) in zip(jobs, results, strict=True):
                delivery_id, attempts, staff_id, alert_id, _, device_id = job[:6]
                delivery = by_id.get(delivery_id)
                if delivery is None or delivery.status != "pending":
                    continue
                delivery.attempts = attempts + 1
                done = time.time()
                device = devices.get(device_id)
                if status == "accepted":
                    delivery.status, delivery.accepted_at = "accepted", done
                    if device is not None:
                        device.last_success_at = done
                    delivered.append(
                        (
                            "voc.alert.delivered",
                            events_pb2.AlertDelivered(
                                alert_id=alert_id,
                                feedback_id=job[10],
                                staff_id=staff_id,
                                device_id=device_id,
                                channel="web_push",
                                delivered_at_ms=int(done * 1000),
                            ),
                            f"delivered:{delivery_id}",
                        )
                    )
                    self.sent += 1
                elif status == "gone":
                    delivery.status, delivery.last_error = "gone", detail[:300]
                    if device is not None:
                        await session.delete(device)  # the browser dropped the subscription
                        devices.pop(device_id)
                elif status == "retry" and delivery.attempts < self.settings.delivery_max_attempts:
                    delivery.next_attempt_at = done + backoff_delay(delivery.attempts, retry_after)
                    delivery.last_error = detail[:300]
                else:
                    delivery.status, delivery.last_error = "failed", detail[:300]
            await add_events(session, outbox_table, delivered)
        return len(jobs)

    async def _send(
        self,
        _delivery_id: str,
        _attempts: int,
        _staff_id: str,
        alert_id: str,
        subscription: PushSubscription,
        _device_id: str,
        payload: bytes,
        ttl: int,
        urgency: str,
        traceparent: str | None,
        _feedback_id: str,
    ) -> tuple[str, str, float | None]:
        parent = telemetry.extract({"traceparent": traceparent}) if traceparent else None
        with telemetry.span(
            "webpush send",
            kind=SpanKind.CLIENT,
            parent=parent,
            attributes={"voc.alert_id": alert_id, "voc.push.ttl": ttl, "voc.push.urgency": urgency},
        ) as span:
            try:
                result = await self.sender.send(
                    subscription, payload, ttl=ttl, urgency=urgency, topic=alert_id.replace("-", "")
                )
            except Exception as exc:
                span.set_attribute("voc.push.result", "rejected")
                return "rejected", repr(exc), None
            span.set_attribute("voc.push.result", result.status)
            if result.http_status is not None:
                span.set_attribute("http.response.status_code", result.http_status)
            return result.status, result.detail, result.retry_after


class EscalationWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        broker: AlertBroker,
        on_new_deliveries: Callable[[], None],
    ) -> None:
        self.database = database
        self.settings = settings
        self.broker = broker
        self.on_new_deliveries = on_new_deliveries

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.escalation_poll_seconds)
            try:
                await self.fire_due()
            except Exception:
                log.exception("escalation pass failed")

    async def fire_due(self, now: float | None = None) -> int:
        now = now or time.time()
        query = (
            select(EscalationTimer)
            .where(EscalationTimer.status == "pending", EscalationTimer.fire_at <= now)
            .order_by(EscalationTimer.fire_at)
            .limit(100)
        )
        if not self.database.sqlite:
            query = query.with_for_update(skip_locked=True)
        fired: list[tuple[dict[str, Any], str, str | None]] = []
        async with self.database.transaction() as session:
            timers = list(await session.scalars(query))
            for timer in timers:
                result = await service.escalate(session, timer=timer, now=now)
                if result is not None:
                    alert, _ = result
                    fired.append(
                        (
                            {"type": "alert.escalated", "alert": service.alert_summary(alert)},
                            alert.store_id,
                            alert.area_id,
                        )
                    )
        for event, store_id, area_id in fired:
            self.broker.publish(event, store_id=store_id, area_id=area_id)
        if fired:
            self.on_new_deliveries()
        return len(timers)
