"""Profile's consumers: each feedback item joins its customer's history (signals follow), and
alerts about it join the customer's timeline with their outcome."""

from __future__ import annotations

import logging
import time

from nats.aio.msg import Msg

from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.outbox import (
    add_events,
    insert_outbox_rows,
    mark_processed,
    mark_processed_sync,
    outbox_rows,
    wake_relays,
)
from voc_profile import service
from voc_profile.grpc_server import current_facts
from voc_profile.identity import normalize_lenient
from voc_profile.models import outbox_table, processed_table
from voc_profile.settings import Settings

log = logging.getLogger(__name__)
CONSUMER = "profile-history"
ALERTS_CONSUMER = "profile-alerts"


class AlertNotYetKnown(RuntimeError):
    """A later alert event overtook `alert.created`: NAK it, the redelivery will find it."""


def consumers(database: Database, settings: Settings) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        event = events_pb2.FeedbackReceived.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", event.facts.feedback_id)
        c = event.customer
        ids, bad = normalize_lenient(
            loyalty_id=c.loyalty_id,
            phone=c.phone,
            email=c.email,
            channel_user_id=c.channel_user_id,
            channel=c.channel,
            region=settings.default_region,
        )
        if bad:
            # Only the field names: the raw values are personal data and never go to the logs.
            log.info("feedback %s: malformed identifier ignored (%s)", event.facts.feedback_id, ",".join(bad))
        if not ids:
            # Anonymous feedback stays anonymous: nothing to write, so nothing to make idempotent
            # (half of all feedback; it used to cost a transaction each).
            return
        current = current_facts(event.facts)
        assert current is not None
        facts = {
            **current,
            "store_id": event.facts.store_id,
            "channel": event.facts.channel,
            "severity": event.facts.severity,
        }
        name = event.customer.name or None
        feedback_id = event.facts.feedback_id

        def linked(customer_id: str) -> tuple[str, events_pb2.FeedbackLinked, str]:
            return (
                "voc.profile.feedback_linked",
                events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=customer_id),
                f"linked:{feedback_id}",
            )

        def history(reader: Reader) -> None:
            if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
                return
            customer_id = service.resolve_and_record_sync(
                reader, identifiers=ids, name=name, facts=facts, settings=settings, now=time.time()
            )
            insert_outbox_rows(reader, outbox_table, outbox_rows([linked(customer_id)]))

        try:
            # One known customer or a new one (nearly always): prepared statements, one hop.
            await dbsync.write(database, history)
            wake_relays()
            return
        except service.NeedsSession:
            pass  # a merge or a raced first contact: rolled back, done on an ORM session below
        async with database.transaction() as session:
            if not await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                return
            res = await service.resolve(
                session,
                identifiers=ids,
                name=name,
                create_if_missing=True,
                trigger=f"feedback {feedback_id}",
            )
            assert res.customer_id is not None
            await service.record_feedback(
                session, customer_id=res.customer_id, facts=facts, settings=settings
            )
            await add_events(session, outbox_table, [linked(res.customer_id)])

    def apply_alert_event(reader: Reader, *, subject: str, data: bytes, event_id: str) -> None:
        if event_id and not mark_processed_sync(
            reader, processed_table, consumer=ALERTS_CONSUMER, event_id=event_id
        ):
            return
        if subject == "voc.alert.created":
            created = events_pb2.AlertCreated.FromString(data)
            service.record_alert_sync(
                reader,
                alert_id=created.alert_id,
                feedback_id=created.feedback_id,
                customer_id=created.customer_id or None,
                store_id=created.store_id,
                priority=created.priority,
                at=created.created_at_ms / 1000,
            )
            return
        if subject == "voc.alert.acknowledged":
            ack = events_pb2.AlertAcknowledged.FromString(data)
            alert_id, status, outcome, at = ack.alert_id, "acknowledged", None, ack.acknowledged_at_ms
        elif subject == "voc.alert.resolved":
            res = events_pb2.AlertResolved.FromString(data)
            alert_id, status, outcome, at = res.alert_id, "resolved", res.outcome, res.resolved_at_ms
        else:
            esc = events_pb2.AlertEscalated.FromString(data)
            alert_id, status, outcome, at = esc.alert_id, "escalated", None, esc.escalated_at_ms
        progressed = service.alert_progress_sync(
            reader, alert_id=alert_id, status=status, outcome=outcome, at=at / 1000
        )
        if not progressed:
            raise AlertNotYetKnown(alert_id)  # rolls back the processed mark too

    async def handle_alert(msg: Msg) -> None:
        # Two prepared statements per event (one for every alert): one `dbsync` write hop.
        await dbsync.write(
            database,
            apply_alert_event,
            subject=msg.subject,
            data=msg.data,
            event_id=(msg.headers or {}).get("Nats-Msg-Id", ""),
        )

    return [
        ConsumerSpec(durable=CONSUMER, subjects=["voc.feedback.received"], handler=handle),
        ConsumerSpec(
            durable=ALERTS_CONSUMER,
            subjects=[
                "voc.alert.created",
                "voc.alert.acknowledged",
                "voc.alert.resolved",
                "voc.alert.escalated",
            ],
            handler=handle_alert,
        ),
    ]
