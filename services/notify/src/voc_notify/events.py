"""Notify's consumer: a received feedback item becomes an alert on the right phones."""

from __future__ import annotations

import logging
import time
from typing import Any

from google.protobuf.json_format import MessageToDict
from nats.aio.msg import Msg
from sqlalchemy import bindparam, select

from voc.events.v1 import events_pb2
from voc_notify import service
from voc_notify.clients import Upstreams, context_dict
from voc_notify.models import Alert, Store, processed_table
from voc_notify.stream import AlertBroker
from voc_notify.workers import DeliveryWorker, lease_alert_deliveries
from voc_platform import dbsync, telemetry
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.outbox import mark_processed, mark_processed_sync, wake_relays

log = logging.getLogger(__name__)
CONSUMER = "notify-alerts"

_ALERT_FOR_FEEDBACK = Prepared(select(Alert.id).where(Alert.feedback_id == bindparam("feedback_id")))
_STORE = Prepared(
    select(
        Store.id,
        Store.name,
        Store.area_id,
        Store.format,
        Store.region,
        Store.timezone,
        Store.language,
        Store.quiet_start,
        Store.quiet_end,
    ).where(Store.id == bindparam("store_id"))
)


def _before_upstreams(reader: Reader, feedback_id: str, store_id: str) -> tuple[bool, Store | None]:
    """(the feedback already has its alert, the store as a transient object) in one hop."""
    if reader.scalar(_ALERT_FOR_FEEDBACK, {"feedback_id": feedback_id}) is not None:
        return True, None
    row = reader.first(_STORE, {"store_id": store_id})
    return False, (Store(**row._asdict()) if row is not None else None)


def consumers(
    database: Database,
    upstreams: Upstreams,
    broker: AlertBroker,
    delivery: DeliveryWorker,
    *,
    dedupe_window: float = service.DEFAULT_DEDUPE_WINDOW_SECONDS,
) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        event = events_pb2.FeedbackReceived.FromString(msg.data)
        facts = event.facts
        event_id = (msg.headers or {}).get("Nats-Msg-Id", facts.feedback_id)
        has_alert, store = await dbsync.read(database, _before_upstreams, facts.feedback_id, facts.store_id)
        if has_alert:
            return  # redelivery of an event that already made its alert
        store_info = (
            {"format": store.format, "region": store.region, "name": store.name, "timezone": store.timezone}
            if store
            else {}
        )
        language = store.language if store else (facts.language or "ko")
        # Profile first: the plan depends on who the customer is (tier, signals).
        context, profile_down = await upstreams.customer_context(identifiers=event.customer, facts=facts)
        plan, actions_down = await upstreams.action_plan(
            facts=facts, context=context, store=store_info, language=language
        )
        degraded = [
            name
            for name, down in (("profile_unavailable", profile_down), ("actions_unavailable", actions_down))
            if down
        ]
        feedback = {
            "id": facts.feedback_id,
            "store_id": facts.store_id,
            "channel": facts.channel,
            "text": event.text,
            "category": facts.category,
            "severity": facts.severity,
            "sentiment": facts.sentiment,
            "score": facts.score,
            "language": facts.language,
            "touchpoint": facts.touchpoint,
            "ratings": MessageToDict(facts.ratings, preserving_proto_field_name=True),
            "received_at_ms": event.received_at_ms,
        }
        carrier: dict[str, str] = {}
        telemetry.inject(carrier)
        # The store read before the gRPC calls (read-only here; stores change rarely).
        row_store = store or Store(
            id=facts.store_id, name=facts.store_id, area_id=None, timezone="UTC", language=language
        )
        alert_facts: dict[str, Any] = {
            "feedback": feedback,
            "store": row_store,
            "context": context_dict(context),
            "plan": plan,
            "degraded": degraded,
            "language": language,
            "dedupe_window": dedupe_window,
            "traceparent": carrier.get("traceparent"),
        }

        def new_alert(reader: Reader, *, now: float) -> tuple[service.NewAlert | None, list[Any]]:
            if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
                return None, []
            created = service.new_alert_sync(reader, now=now, merge=True, **alert_facts)
            if created is None or not created.deliveries:
                return created, []
            # The first pushes are leased here and sent right after the commit, by this
            # handler: no worker wake and no separate lease transaction on the critical path.
            return created, lease_alert_deliveries(reader, alert_id=created.alert.id, now=now)

        try:
            # A new alert (most feedback), or a repeat complaint folded into its open alert, is
            # prepared statements only: one dbsync write hop.
            created, leased = await dbsync.write(database, new_alert, now=time.time())
            if created is not None:
                wake_relays()
        except service.OpenAlertFound:
            # Rare: the open alert vanished or changed while the repeat was being folded in. On
            # an ORM session, which reads it afresh (rolled back above, the processed mark too).
            async with database.transaction() as session:
                if not await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                    return
                created = await service.create_alert(session, **alert_facts)
                merged_id = created.alert.id if created is not None and created.deliveries else None
                leased = (
                    await session.run_sync(
                        lambda s: lease_alert_deliveries(
                            Reader.of(s.connection()), alert_id=merged_id, now=time.time()
                        )
                    )
                    if merged_id is not None
                    else []
                )
        if created is None:
            return
        broker.publish(
            {
                "type": "alert.updated" if created.merged else "alert.created",
                "alert": service.alert_summary(created.alert),
            },
            store_id=created.alert.store_id,
            area_id=created.alert.area_id,
        )
        log.info(
            "alert %s %s feedback %s: %d recipients, %d pushes%s",
            created.alert.id,
            "updated by" if created.merged else "for",
            facts.feedback_id,
            len(created.recipients),
            created.deliveries,
            f" (degraded: {', '.join(degraded)})" if degraded else "",
        )
        if len(leased) < created.deliveries:
            delivery.wake()  # held for quiet hours: the worker sends them when they are due
        if leased:
            try:
                await delivery.send_leased(leased)
            except Exception:
                # The alert is committed; its leased pushes go out with the worker's retry
                # when the lease runs out. Redelivering the event would change nothing.
                log.exception("first pushes of alert %s failed; the worker retries them", created.alert.id)

    return [ConsumerSpec(durable=CONSUMER, subjects=["voc.feedback.received"], handler=handle)]
