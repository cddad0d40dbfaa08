"""What the feedback service does with other services' events: the case lifecycle."""

from __future__ import annotations

from nats.aio.msg import Msg

from voc.events.v1 import events_pb2
from voc_feedback import service
from voc_feedback.models import processed_table
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.outbox import mark_processed, mark_processed_sync

CONSUMER = "feedback-case"


def consumers(database: Database, links: service.FollowUpLinks) -> list[ConsumerSpec]:
    def link(reader: Reader, *, event_id: str, feedback_id: str, customer_id: str) -> None:
        if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
            service.link_customer_sync(reader, feedback_id=feedback_id, customer_id=customer_id)

    def alerted(
        reader: Reader, *, processed_id: str, event_id: str, created: events_pb2.AlertCreated
    ) -> None:
        if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=processed_id):
            return
        # The "alerted" step and the customer link in one hop.
        service.record_alert_sync(
            reader,
            feedback_id=created.feedback_id,
            at=created.created_at_ms / 1000,
            actor="notify",
            detail={
                "alert_id": created.alert_id,
                "priority": created.priority,
                "playbook_id": created.playbook_id,
                "recipients": len(created.recipient_staff_ids),
                "degraded": list(created.degraded),
            },
            event_id=event_id,
            customer_id=created.customer_id or None,
        )

    def erased(reader: Reader, *, event_id: str, customer_id: str) -> None:
        if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=event_id):
            service.redact_customer_sync(reader, customer_id=customer_id)

    async def handle(msg: Msg) -> None:
        event_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        processed_id = event_id or f"{msg.subject}:{msg.reply}"
        if msg.subject == "voc.profile.feedback_linked":
            # One per identified feedback item, two prepared statements: no ORM session.
            linked = events_pb2.FeedbackLinked.FromString(msg.data)
            await dbsync.write(
                database,
                link,
                event_id=processed_id,
                feedback_id=linked.feedback_id,
                customer_id=linked.customer_id,
            )
            return
        if msg.subject == "voc.alert.created":
            # One per alert, prepared statements only: one dbsync write hop, no ORM session.
            await dbsync.write(
                database,
                alerted,
                processed_id=processed_id,
                event_id=event_id,
                created=events_pb2.AlertCreated.FromString(msg.data),
            )
            return
        if msg.subject == "voc.profile.customer_erased":
            erasure = events_pb2.CustomerErased.FromString(msg.data)
            await dbsync.write(database, erased, event_id=processed_id, customer_id=erasure.customer_id)
            return
        async with database.transaction() as session:
            if not await mark_processed(session, processed_table, consumer=CONSUMER, event_id=processed_id):
                return
            subject = msg.subject
            if subject == "voc.alert.acknowledged":
                ack = events_pb2.AlertAcknowledged.FromString(msg.data)
                await service.record_case_event(
                    session,
                    feedback_id=ack.feedback_id,
                    status="acknowledged",
                    at=ack.acknowledged_at_ms / 1000,
                    actor=f"staff:{ack.staff_id}",
                    detail={"alert_id": ack.alert_id},
                    event_id=event_id,
                )
            elif subject == "voc.alert.resolved":
                res = events_pb2.AlertResolved.FromString(msg.data)
                await service.record_case_event(
                    session,
                    feedback_id=res.feedback_id,
                    status="resolved",
                    at=res.resolved_at_ms / 1000,
                    actor=f"staff:{res.staff_id}",
                    detail={"alert_id": res.alert_id, "outcome": res.outcome, "note": res.note},
                    event_id=event_id,
                    follow_up=links,
                )
            elif subject == "voc.alert.escalated":
                esc = events_pb2.AlertEscalated.FromString(msg.data)
                await service.record_case_event(
                    session,
                    feedback_id=esc.feedback_id,
                    status="escalated",
                    at=esc.escalated_at_ms / 1000,
                    actor="notify",
                    detail={"alert_id": esc.alert_id, "level": esc.level, "roles": list(esc.roles)},
                    event_id=event_id,
                )

    return [
        ConsumerSpec(
            durable=CONSUMER,
            subjects=[
                "voc.alert.created",
                "voc.alert.acknowledged",
                "voc.alert.resolved",
                "voc.alert.escalated",
                "voc.profile.feedback_linked",
                "voc.profile.customer_erased",
            ],
            handler=handle,
        )
    ]
