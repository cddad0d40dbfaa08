"""Notify's consumer: a received feedback item becomes an alert on the right phones."""

from __future__ import annotations

import logging
import time
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import bindparam, select

from voc.events.v1 import events_pb2
from voc_notify import alerts, metrics, views
from voc_notify.alerts import NewAlert
from voc_notify.clients import Upstreams, customer_from_proto
from voc_notify.facts import AlertInput, Feedback
from voc_notify.models import STORE_COLUMNS, Alert, Store, processed_table
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.enqueue import enqueue_sync
from voc_notify.workers import DeliveryWorker, lease_alert_deliveries
from voc_platform import dbsync, telemetry
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.outbox import mark_processed_sync, wake_relays

log = logging.getLogger(__name__)
CONSUMER = "notify-alerts"

_ALERT_FOR_FEEDBACK = Prepared(select(Alert.id).where(Alert.feedback_id == bindparam("feedback_id")))
_STORE = Prepared(
    select(*(getattr(Store, key) for key in STORE_COLUMNS)).where(Store.id == bindparam("store_id"))
)


def _before_upstreams(reader: Reader, feedback_id: str, store_id: str) -> tuple[bool, Store | None]:
    """(the feedback already has its alert, the store as a transient object) in one hop."""
    if reader.scalar(_ALERT_FOR_FEEDBACK, {"feedback_id": feedback_id}) is not None:
        return True, None
    row = reader.first(_STORE, {"store_id": store_id})
    return False, (Store(**row._asdict()) if row is not None else None)


def feedback_of(event: events_pb2.FeedbackReceived) -> Feedback:
    facts = event.facts
    return Feedback(
        id=facts.feedback_id,
        store_id=facts.store_id,
        channel=facts.channel,
        text=event.text,
        category=facts.category,
        severity=facts.severity,
        sentiment=facts.sentiment,
        score=facts.score,
        language=facts.language,
        touchpoint=facts.touchpoint,
        ratings={f.name: value for f, value in facts.ratings.ListFields()},
        received_at_ms=event.received_at_ms,
        confidence=event.confidence if event.HasField("confidence") else None,
        category_confidence=event.category_confidence if event.HasField("category_confidence") else None,
        model_version=event.model_version,
        uncertain=event.uncertain,
    )


class AlertConsumer:
    """`voc.feedback.received` → customer context and plan from upstream → the alert (or the
    repeat folded into its open alert) in one write hop → live event and first pushes."""

    def __init__(
        self,
        database: Database,
        upstreams: Upstreams,
        broker: AlertBroker,
        delivery: DeliveryWorker,
        *,
        dedupe_window: float,
    ) -> None:
        self.database, self.upstreams, self.broker, self.delivery = database, upstreams, broker, delivery
        self.dedupe_window = dedupe_window

    async def handle(self, msg: Msg) -> None:
        event = events_pb2.FeedbackReceived.FromString(msg.data)
        facts = event.facts
        event_id = (msg.headers or {}).get("Nats-Msg-Id", facts.feedback_id)
        has_alert, store = await dbsync.read(
            self.database, _before_upstreams, facts.feedback_id, facts.store_id
        )
        if has_alert:
            return  # redelivery of an event that already made its alert
        given = await self._gather(event, store)
        # A new alert (most feedback), or a repeat complaint folded into its open alert, is
        # prepared statements only: one dbsync write hop.
        created, leased = await alerts.write_alert(
            self.database, self._write, facts=given, event=event, event_id=event_id, now=time.time()
        )
        if created is None:
            return
        metrics.alert_written(priority=created.alert.priority, merged=created.merged, degraded=given.degraded)
        wake_relays()
        self._announce(created, given)
        await self._send_first_pushes(created, leased)

    async def _gather(self, event: events_pb2.FeedbackReceived, store: Store | None) -> AlertInput:
        """The alert's input: the customer (profile first: the plan depends on who it is), the
        plan, and what was degraded on the way."""
        facts = event.facts
        language = store.language if store else (facts.language or "ko")
        context, profile_down = await self.upstreams.customer_context(identifiers=event.customer, facts=facts)
        plan, actions_down = await self.upstreams.action_plan(
            facts=facts, context=context, store=store, language=language
        )
        carrier: dict[str, str] = {}
        telemetry.inject(carrier)
        return AlertInput(
            feedback=feedback_of(event),
            # The store read before the gRPC calls (read-only here; stores change rarely).
            store=store
            or Store(id=facts.store_id, name=facts.store_id, area_id=None, timezone="UTC", language=language),
            customer=customer_from_proto(context),
            plan=plan,
            language=language,
            degraded=tuple(
                name
                for name, down in (
                    ("profile_unavailable", profile_down),
                    ("actions_unavailable", actions_down),
                )
                if down
            ),
            traceparent=carrier.get("traceparent"),
        )

    def _write(
        self,
        reader: Reader,
        *,
        facts: AlertInput,
        event: events_pb2.FeedbackReceived,
        event_id: str,
        now: float,
    ) -> tuple[NewAlert | None, list[Any]]:
        """The hop: the event marked processed, its webhook deliveries (feedback.received and
        .classified) enqueued, the alert written, its first pushes leased."""
        if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
            return None, []
        enqueue_sync(reader, [("voc.feedback.received", event)], now=now)
        created = alerts.new_alert_sync(reader, facts=facts, now=now, dedupe_window=self.dedupe_window)
        if created is None or not created.deliveries:
            return created, []
        # The first pushes are leased here and sent right after the commit, by this handler:
        # no worker wake and no separate lease transaction on the critical path.
        return created, lease_alert_deliveries(reader, alert_id=created.alert.id, now=now)

    def _announce(self, created: NewAlert, given: AlertInput) -> None:
        alert = created.alert
        self.broker.publish(
            {
                "type": "alert.updated" if created.merged else "alert.created",
                "alert": views.alert_summary(alert),
            },
            store_id=alert.store_id,
            area_id=alert.area_id,
        )
        log.info(
            "alert %s %s feedback %s: %d recipients, %d pushes%s",
            alert.id,
            "updated by" if created.merged else "for",
            given.feedback.id,
            len(created.recipients),
            created.deliveries,
            f" (degraded: {', '.join(given.degraded)})" if given.degraded else "",
        )

    async def _send_first_pushes(self, created: NewAlert, leased: list[Any]) -> None:
        if len(leased) < created.deliveries:
            self.delivery.wake()  # held for quiet hours: the worker sends them when they are due
        if leased:
            try:
                await self.delivery.send_leased(leased)
            except Exception:
                # The alert is committed; its leased pushes go out with the worker's retry
                # when the lease runs out. Redelivering the event would change nothing.
                log.exception("first pushes of alert %s failed; the worker retries them", created.alert.id)


def consumers(
    database: Database,
    upstreams: Upstreams,
    broker: AlertBroker,
    delivery: DeliveryWorker,
    *,
    dedupe_window: float = alerts.DEFAULT_DEDUPE_WINDOW_SECONDS,
) -> list[ConsumerSpec]:
    consumer = AlertConsumer(database, upstreams, broker, delivery, dedupe_window=dedupe_window)
    return [ConsumerSpec(durable=CONSUMER, subjects=["voc.feedback.received"], handler=consumer.handle)]
