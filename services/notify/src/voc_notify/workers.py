"""Background work of notify: sending pushes (with retries) and firing escalation timers.

Both keep their state in the database, so a restart loses nothing: a claimed delivery carries a
lease (`next_attempt_at` moves forward while it is in flight), and timers are rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.trace import SpanKind
from sqlalchemy import bindparam, delete, select, update

from voc.events.v1 import events_pb2
from voc_notify import lifecycle, metrics, views
from voc_notify.masking import push_text
from voc_notify.models import (
    STORE_COLUMNS,
    Alert,
    Delivery,
    Device,
    EscalationTimer,
    Staff,
    Store,
    outbox_table,
)
from voc_notify.polling import PollingWorker
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushSubscription, WebPushSender, backoff_delay
from voc_platform import dbsync, telemetry
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.outbox import insert_outbox_rows, outbox_rows, wake_relays
from voc_platform.periodic import every

log = logging.getLogger(__name__)

URGENCY = {"urgent": "high", "normal": "normal", "info": "low"}
LEASE_SECONDS = 30.0
PASS_SIZE = 200  # deliveries leased per pass
OUTCOME_ATTEMPTS = 3


def push_ttl(alert: Alert, settings: Settings) -> int:
    """Long enough to cover the escalation window: an offline phone still gets it in time."""
    steps = alert.plan.get("escalation") or []
    window = max([int(s.get("after_seconds") or 0) for s in steps] or [0])
    return max(settings.push_min_ttl_seconds, window + 300)


def push_payload(alert: Alert, settings: Settings, *, store: Store | None, language: str) -> bytes:
    title, body = push_text(alert, store=store, language=language)
    return orjson.dumps(
        {
            "alert_id": alert.id,
            **({"feedback_id": alert.feedback_id} if alert.feedback_id else {}),
            "kind": alert.kind or "feedback",
            "title": title,
            "body": body,
            "priority": alert.priority,
            "url": f"{settings.public_url}/#/alerts/{alert.id}",
            "status": alert.status,
            "updates": alert.updates or 0,  # 0 for the first push; k after the k-th repeat
            # The classification is a guess the app flags (#17); nothing more of it leaves here.
            "uncertain": bool((alert.classification or {}).get("uncertain")),
        }
    )


_ALERT_PUSH_COLUMNS = (
    "id",
    "kind",
    "category",
    "items",
    "feedback_id",
    "store_id",
    "priority",
    "status",
    "updates",
    "feedback",
    "related_feedback",
    "context",
    "plan",
    "traceparent",
    "classification",
)


def _push_query(dialect: str, *, of_alert: bool) -> Any:
    """Due pending deliveries with everything a push needs: all of them (the worker's pass),
    or one alert's (its first pushes, sent by the consumer that just created it)."""
    due = Delivery.next_attempt_at <= bindparam("now")
    query = (
        select(
            Delivery.id.label("delivery_id"),
            Delivery.attempts,
            Delivery.staff_id,
            Device.id.label("device_id"),
            Device.endpoint,
            Device.p256dh,
            Device.auth,
            Staff.language.label("staff_language"),
            *(getattr(Alert, key) for key in _ALERT_PUSH_COLUMNS),
            *(getattr(Store, key).label(f"store__{key}") for key in STORE_COLUMNS),
        )
        .join(Device, Device.id == Delivery.device_id)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Staff, Staff.id == Delivery.staff_id)
        .outerjoin(Store, Store.id == Alert.store_id)
        .order_by(Delivery.next_attempt_at)
    )
    if of_alert:
        query = query.where(Delivery.alert_id == bindparam("alert_id"), Delivery.status == "pending", due)
    else:
        query = query.where(Delivery.status == "pending", due).limit(bindparam("pass_size"))
    if dialect == "postgresql":
        # Replicas share the table: each due delivery is leased by one worker (the alert's own
        # new rows are locked by the transaction that wrote them, so it never skips those).
        query = query.with_for_update(skip_locked=True, of=Delivery)
    return query


_DUE = Prepared(lambda dialect: _push_query(dialect, of_alert=False))
_DUE_OF_ALERT = Prepared(lambda dialect: _push_query(dialect, of_alert=True))
_LEASE = Prepared(update(Delivery).where(Delivery.id == bindparam("delivery_id")))
# Outcomes only apply to a delivery still pending (an update may have cancelled it meanwhile).
_OUTCOME = Prepared(
    update(Delivery).where(Delivery.id == bindparam("delivery_id"), Delivery.status == "pending")
)
_DEVICE_SUCCESS = Prepared(update(Device).where(Device.id == bindparam("device_id")))
_DEVICE_GONE = Prepared(delete(Device).where(Device.id == bindparam("device_id")))


def _lease(reader: Reader, rows: list[Any], *, now: float) -> list[Any]:
    if rows:
        _LEASE.execute_many(
            reader, [{"next_attempt_at": now + LEASE_SECONDS, "delivery_id": r.delivery_id} for r in rows]
        )
    return rows


def _lease_due(reader: Reader, *, now: float, limit: int) -> list[Any]:
    return _lease(reader, reader.all(_DUE, {"now": now, "pass_size": limit}), now=now)


def lease_alert_deliveries(reader: Reader, *, alert_id: str, now: float) -> list[Any]:
    """Lease the due deliveries of one alert, inside the transaction that created (or updated)
    it, so that its consumer sends the first pushes right after the commit (`send_leased`)
    instead of waking the worker for another lease transaction. Should the process die before
    they are sent, the lease runs out and the worker's pass sends them."""
    return _lease(reader, reader.all(_DUE_OF_ALERT, {"alert_id": alert_id, "now": now}), now=now)


def _record_outcomes(
    reader: Reader, outcomes: list[tuple[str, int, str, str, str, float | None]], *, max_attempts: int
) -> dict[str, float]:
    """Each (delivery id, attempts, device id, status, detail, retry-after) as its delivery's new
    state; returns {delivery id: accepted at} of the pushes accepted.

    Rows are updated in one global order, deliveries by id and then devices by id: consumers
    record their alerts' outcomes concurrently, and on PostgreSQL two transactions that
    update the same devices in different orders deadlock (one is aborted)."""
    accepted: dict[str, float] = {}
    touched: dict[str, tuple[str, float]] = {}  # device id -> (accepted | gone, at)
    for delivery_id, attempts, device_id, status, detail, retry_after in sorted(outcomes):
        done = time.time()
        change: dict[str, Any] = {"attempts": attempts}
        if status == "accepted":
            change.update(status="accepted", accepted_at=done)
        elif status == "gone":
            change.update(status="gone", last_error=detail[:300])
        elif status == "retry" and attempts < max_attempts:
            change.update(
                next_attempt_at=done + backoff_delay(attempts, retry_after), last_error=detail[:300]
            )
        else:
            change.update(status="failed", last_error=detail[:300])
        if not _OUTCOME.execute(reader, {**change, "delivery_id": delivery_id}):
            continue  # no longer pending
        if status == "accepted":
            accepted[delivery_id] = done
            if touched.get(device_id, ("",))[0] != "gone":
                touched[device_id] = ("accepted", done)
        elif status == "gone":
            touched[device_id] = ("gone", done)
    for device_id, (what, at) in sorted(touched.items()):
        if what == "accepted":
            _DEVICE_SUCCESS.execute(reader, {"last_success_at": at, "device_id": device_id})
        else:
            _DEVICE_GONE.execute(reader, {"device_id": device_id})  # the browser dropped it
    return accepted


class DeliveryWorker(PollingWorker):
    pass_size = PASS_SIZE
    name = "delivery"

    def __init__(self, database: Database, sender: WebPushSender, settings: Settings) -> None:
        super().__init__()
        self.database = database
        self.sender = sender
        self.settings = settings
        self.sent = 0

    async def process_due(self, limit: int = PASS_SIZE, *, now: float | None = None) -> int:
        """Send every due delivery once; `now` lets tests and tools look ahead (quiet hours).

        Runs after every new alert, so its reads and writes are prepared statements
        (`voc_platform.dbsync`): one hop to lease the batch, one to record its outcomes."""
        now = now or time.time()
        async with self.database.transaction() as session:
            rows = await session.run_sync(
                lambda s: _lease_due(Reader.of(s.connection()), now=now, limit=limit)
            )
        if not rows:
            return 0
        await self.send_leased(rows)
        return len(rows)

    async def send_leased(self, rows: list[Any]) -> int:
        """Send leased deliveries (rows of `_push_query`) once each and record the outcomes in
        one transaction, with a `voc.alert.delivered` event per accepted push; returns how many
        were accepted."""
        jobs = []
        for row in rows:
            alert = Alert(**{key: getattr(row, key) for key in _ALERT_PUSH_COLUMNS})
            store = (
                Store(**{key: getattr(row, f"store__{key}") for key in STORE_COLUMNS})
                if row.store__id is not None
                else None
            )
            jobs.append(
                (
                    row.delivery_id,
                    row.attempts,
                    row.staff_id,
                    row.id,
                    PushSubscription(endpoint=row.endpoint, p256dh=row.p256dh, auth=row.auth),
                    row.device_id,
                    push_payload(alert, self.settings, store=store, language=row.staff_language),
                    push_ttl(alert, self.settings),
                    URGENCY.get(alert.priority, "normal"),
                    row.traceparent,
                    row.feedback_id or "",
                )
            )
        results = await asyncio.gather(*(self._send(*job) for job in jobs))
        metrics.pushed(status for status, _, _ in results)
        # One transaction for the whole batch's outcomes.
        outcomes = [
            (job[0], job[1] + 1, job[5], status, detail, retry_after)
            for job, (status, detail, retry_after) in zip(jobs, results, strict=True)
        ]

        def record(reader: Reader) -> list[tuple[str, events_pb2.AlertDelivered, str | None]]:
            recorded = _record_outcomes(reader, outcomes, max_attempts=self.settings.delivery_max_attempts)
            delivered: list[tuple[str, events_pb2.AlertDelivered, str | None]] = [
                (
                    "voc.alert.delivered",
                    events_pb2.AlertDelivered(
                        alert_id=job[3],
                        feedback_id=job[10],
                        staff_id=job[2],
                        device_id=job[5],
                        channel="web_push",
                        delivered_at_ms=int(recorded[job[0]] * 1000),
                    ),
                    f"delivered:{job[0]}",
                )
                for job in jobs
                if job[0] in recorded
            ]
            insert_outbox_rows(reader, outbox_table, outbox_rows(delivered))
            return delivered

        # Prepared statements only: one transaction without an ORM session around it. Tried
        # again when it fails (it rolled back whole, e.g. a PostgreSQL deadlock with a repeat
        # complaint's update of the same deliveries): an unrecorded accepted push would be sent
        # once more when its lease runs out.
        for attempt in range(1, OUTCOME_ATTEMPTS + 1):
            try:
                delivered = await dbsync.write(self.database, record)
                break
            except Exception:
                if attempt == OUTCOME_ATTEMPTS:
                    raise
                log.warning("recording push outcomes failed (attempt %d); trying again", attempt)
                await asyncio.sleep(0.05 * attempt)
        if delivered:
            wake_relays()
        self.sent += len(delivered)
        # A retry is due later: the worker's pass (woken at least every second) takes it then.
        return len(delivered)

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


@dataclass(eq=False, slots=True)
class EscalationWorker:
    database: Database
    settings: Settings
    broker: AlertBroker
    on_new_deliveries: Callable[[], None]

    async def run(self) -> None:
        await every(
            self.settings.escalation_poll_seconds, self.fire_due, log=log, failed="escalation pass failed"
        )

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
            kinds: list[str] = []
            for timer in timers:
                result = await lifecycle.escalate(session, timer=timer, now=now)
                if result is not None:
                    kinds.append(timer.kind)
                    alert, _ = result
                    fired.append(
                        (
                            {"type": "alert.escalated", "alert": views.alert_summary(alert)},
                            alert.store_id,
                            alert.area_id,
                        )
                    )
        metrics.escalated(kinds)
        for event, store_id, area_id in fired:
            self.broker.publish(event, store_id=store_id, area_id=area_id)
        if fired:
            self.on_new_deliveries()
        return len(timers)
