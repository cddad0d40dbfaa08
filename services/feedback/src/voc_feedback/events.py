"""What the feedback service does with other services' events: each one decoded into a case step
(`cases`), recorded once per event id (`processed_events`, in the step's own transaction)."""

from __future__ import annotations

from dataclasses import replace

from nats.aio.msg import Msg

from voc.events.v1 import events_pb2
from voc_feedback import adherence, cases
from voc_feedback.cases import CaseEvent
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.models import processed_table
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Reader
from voc_platform.outbox import mark_processed, mark_processed_sync

CONSUMER = "feedback-case"
SUBJECTS = [
    "voc.alert.created",
    "voc.alert.acknowledged",
    "voc.alert.resolved",
    "voc.alert.escalated",
    "voc.profile.feedback_linked",
    "voc.profile.customer_erased",
    "voc.notify.follow_up_sent",
]


def consumers(database: Database, links: FollowUpLinks) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        event_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        processed_id = event_id or f"{msg.subject}:{msg.reply}"
        subject = msg.subject
        # The frequent and the simple events: prepared statements in one dbsync hop, no session.
        if subject == "voc.alert.created":
            created = events_pb2.AlertCreated.FromString(msg.data)
            if not created.feedback_id:
                return  # a pattern or heads-up alert: no case moves (#18)
            await dbsync.write(
                database, _alerted, processed_id, alerted(created, event_id), created.customer_id
            )
        elif subject == "voc.profile.feedback_linked":
            linked = events_pb2.FeedbackLinked.FromString(msg.data)
            await dbsync.write(database, _linked, processed_id, linked.feedback_id, linked.customer_id)
        elif subject == "voc.profile.customer_erased":
            erased = events_pb2.CustomerErased.FromString(msg.data)
            await dbsync.write(database, _erased, processed_id, erased.customer_id, list(erased.feedback_ids))
        elif subject == "voc.notify.follow_up_sent":
            sent = events_pb2.FollowUpSent.FromString(msg.data)
            await dbsync.write(database, _step, processed_id, follow_up_message(sent, event_id))
        elif (step := case_step(subject, msg.data, event_id)) is not None:
            # A resolution may open the follow-up survey (ORM rows and an event): a session.
            async with database.transaction() as session:
                if await mark_processed(session, processed_table, consumer=CONSUMER, event_id=processed_id):
                    surveys = True
                    if subject == "voc.alert.resolved":  # how the plan was carried out (#18)
                        resolved = events_pb2.AlertResolved.FromString(msg.data)
                        await adherence.record(session, resolved)
                        # Another item of the same alert asks the customer (one survey).
                        surveys = not resolved.follow_up_elsewhere
                    if not surveys:  # said on the timeline, so the case's missing survey is not a gap
                        step = replace(step, detail={**step.detail, "follow_up": FOLLOW_UP_ON_LATEST})
                    if step.feedback_id:  # a pattern or heads-up alert answers no feedback item
                        await cases.record_case_event(session, step, follow_up=links if surveys else None)

    return [ConsumerSpec(durable=CONSUMER, subjects=SUBJECTS, handler=handle)]


def alerted(created: events_pb2.AlertCreated, event_id: str) -> CaseEvent:
    detail = {
        "alert_id": created.alert_id,
        "priority": created.priority,
        "playbook_id": created.playbook_id,
        "recipients": len(created.recipient_staff_ids),
        "degraded": list(created.degraded),
    }
    return CaseEvent(created.feedback_id, "alerted", created.created_at_ms / 1000, "notify", detail, event_id)


FOLLOW_UP_ON_LATEST = "asked once for the alert, with its latest feedback"
FOLLOW_UP_NOTES = {
    "sent": "follow-up sent by {channel}",
    "retrying": "follow-up by {channel} not delivered yet: {reason}; trying again",
    "failed": "follow-up by {channel} failed: {reason}",
    "not_sent": "follow-up not sent: {reason}",
    "held": "follow-up held: {reason}; sent when they end",
    # What a delivery report (a bounce, an SMS gateway's report) later said of a sent one.
    "delivered": "follow-up by {channel} delivered",
    "undelivered": "follow-up by {channel} not delivered: {reason}",
}
# Before any channel was chosen (profile unreachable, say): no "by none".
FOLLOW_UP_NOTES_NO_CHANNEL = {
    "retrying": "follow-up not sent yet: {reason}; trying again",
    "failed": "follow-up failed: {reason}",
}


def follow_up_message(sent: events_pb2.FollowUpSent, event_id: str) -> CaseEvent:
    """Notify's attempt to send the follow-up link (or its decision not to) as a case step:
    kind `follow_up_<outcome>`, with a one-line `note` a person reads on the timeline."""
    chosen = sent.channel not in ("", "none")
    template = (None if chosen else FOLLOW_UP_NOTES_NO_CHANNEL.get(sent.outcome)) or FOLLOW_UP_NOTES.get(
        sent.outcome, "follow-up {outcome}: {reason}"
    )
    note = template.format(channel=sent.channel, reason=sent.reason, outcome=sent.outcome)
    detail: dict[str, object] = {
        "note": note,
        "channel": sent.channel,
        "outcome": sent.outcome,
        "reason": sent.reason,
        "attempt": sent.attempt,
    }
    if sent.recipient:
        detail["recipient"] = sent.recipient  # masked by notify
    if sent.next_attempt_at_ms:
        detail["next_attempt_at"] = sent.next_attempt_at_ms / 1000
    return CaseEvent(
        sent.feedback_id, f"follow_up_{sent.outcome}", sent.at_ms / 1000, "notify", detail, event_id or None
    )


def case_step(subject: str, data: bytes, event_id: str) -> CaseEvent | None:
    """An alert's acknowledgement, resolution or escalation as a case step (its kind is the
    subject's last word)."""
    if subject == "voc.alert.acknowledged":
        ack = events_pb2.AlertAcknowledged.FromString(data)
        feedback_id, at_ms, actor = ack.feedback_id, ack.acknowledged_at_ms, f"staff:{ack.staff_id}"
        detail: dict[str, object] = {"alert_id": ack.alert_id}
    elif subject == "voc.alert.resolved":
        res = events_pb2.AlertResolved.FromString(data)
        feedback_id, at_ms, actor = res.feedback_id, res.resolved_at_ms, f"staff:{res.staff_id}"
        detail = {"alert_id": res.alert_id, "outcome": res.outcome, "note": res.note}
        if res.priority:
            detail["priority"] = res.priority
    elif subject == "voc.alert.escalated":
        esc = events_pb2.AlertEscalated.FromString(data)
        feedback_id, at_ms, actor = esc.feedback_id, esc.escalated_at_ms, "notify"
        detail = {"alert_id": esc.alert_id, "level": esc.level, "roles": list(esc.roles)}
    else:
        return None
    return CaseEvent(feedback_id, subject.removeprefix("voc.alert."), at_ms / 1000, actor, detail, event_id)


def _alerted(reader: Reader, processed_id: str, step: CaseEvent, customer_id: str) -> None:
    """The "alerted" step and the customer link in one hop."""
    if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=processed_id):
        cases.record_alert(reader, step, customer_id=customer_id or None)


def _step(reader: Reader, processed_id: str, step: CaseEvent) -> None:
    if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=processed_id):
        cases.record_step(reader, step)


def _linked(reader: Reader, processed_id: str, feedback_id: str, customer_id: str) -> None:
    if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=processed_id):
        cases.link_customer(reader, feedback_id=feedback_id, customer_id=customer_id)


def _erased(reader: Reader, processed_id: str, customer_id: str, feedback_ids: list[str]) -> None:
    if mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=processed_id):
        cases.redact_customer(reader, customer_id=customer_id, feedback_ids=feedback_ids)
