"""Profile's consumers: each feedback item joins its customer's history (signals follow), and
alerts about it join the customer's timeline with their outcome."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

from nats.aio.msg import Msg
from sqlalchemy import bindparam, select

from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader
from voc_platform.masking import mask_names, mask_text
from voc_platform.outbox import (
    insert_outbox_rows,
    mark_processed,
    mark_processed_sync,
    outbox_rows,
    wake_relays,
)
from voc_profile import resolution, signals, timeline
from voc_profile.facts import FeedbackItem, feedback_item
from voc_profile.identity import of_message
from voc_profile.models import customers_table, outbox_table, processed_table
from voc_profile.resolution import Identifiers, NeedsSession
from voc_profile.sessions import in_session
from voc_profile.settings import Settings

log = logging.getLogger(__name__)
CONSUMER = "profile-history"
ALERTS_CONSUMER = "profile-alerts"
EXCERPT_LIMIT = 80
ALERT_SUBJECTS = ["voc.alert.created", "voc.alert.acknowledged", "voc.alert.resolved", "voc.alert.escalated"]


class AlertNotYetKnown(RuntimeError):
    """A later alert event overtook `alert.created`: NAK it, the redelivery will find it."""


def consumers(database: Database, settings: Settings) -> list[ConsumerSpec]:
    """The service's two durable consumers."""
    return [
        ConsumerSpec(
            durable=CONSUMER,
            subjects=["voc.feedback.received"],
            handler=partial(handle_received, database, settings),
        ),
        ConsumerSpec(
            durable=ALERTS_CONSUMER, subjects=ALERT_SUBJECTS, handler=partial(handle_alert, database)
        ),
    ]


# ---------------------------------------------------------------------------------------------
# voc.feedback.received


@dataclass(frozen=True, slots=True)
class Received:
    """What profile keeps of a `voc.feedback.received`: who gave it and its facts."""

    event_id: str
    identifiers: Identifiers
    name: str | None
    item: FeedbackItem
    severity: str
    text: str = ""


def received_of(msg: Msg, *, region: str) -> Received | None:
    """The event as profile reads it; None for anonymous feedback."""
    event = events_pb2.FeedbackReceived.FromString(msg.data)
    facts, c = event.facts, event.customer
    bad: list[str] = []
    ids = of_message(c, region=region, dropped=bad)
    if bad:
        # Only the field names: the raw values are personal data and never go to the logs.
        log.info("feedback %s: malformed identifier ignored (%s)", facts.feedback_id, ",".join(bad))
    if not ids:
        return None
    item = feedback_item(facts, store_id=facts.store_id, channel=facts.channel, reopens_id=event.reopens_id)
    assert item is not None
    event_id = (msg.headers or {}).get("Nats-Msg-Id", facts.feedback_id)
    return Received(event_id, ids, c.name or None, item, facts.severity, event.text)


_CUSTOMER_NAME = Prepared(
    select(customers_table.c.name).where(customers_table.c.id == bindparam("customer_id"))
)


def _excerpt(reader: Reader, received: Received, customer_id: str) -> str | None:
    """The item's excerpt, masking the name the submission gave and the one on file."""
    if not received.text.strip():
        return None
    on_file = reader.scalar(_CUSTOMER_NAME, {"customer_id": customer_id})
    return excerpt_of(received.text, received.name, on_file)


def excerpt_of(text: str, *names: str | None) -> str | None:
    """What staff may see of an earlier contact's text: the customer's names (whole and each
    part) masked as the context masks them, e-mails and long numbers masked, on one line, at
    most `EXCERPT_LIMIT` characters."""
    text = " ".join(text.split())
    if not text:
        return None
    return mask_text(mask_names(text, *names), EXCERPT_LIMIT)


async def handle_received(database: Database, settings: Settings, msg: Msg) -> None:
    """The feedback joins its customer's history; feedback is told whose it is."""
    received = received_of(msg, region=settings.default_region)
    if received is None:
        # Anonymous feedback stays anonymous: nothing to write, so nothing to make idempotent
        # (half of all feedback; it used to cost a transaction each).
        return
    try:
        # One known customer or a new one (nearly always): prepared statements, one hop.
        await dbsync.write(database, _record_resolved, received, settings, time.time())
    except NeedsSession:
        # A merge or a raced first contact: rolled back; resolved on an ORM session, then the
        # same `record_received` in its transaction.
        async with database.transaction() as session:
            if not await mark_processed(
                session, processed_table, consumer=CONSUMER, event_id=received.event_id
            ):
                return
            res = await resolution.resolve(
                session,
                identifiers=received.identifiers,
                name=received.name,
                create_if_missing=True,
                trigger=f"feedback {received.item.feedback_id}",
            )
            assert res.customer_id is not None
            await in_session(
                session,
                record_received,
                received=received,
                customer_id=res.customer_id,
                settings=settings,
                now=time.time(),
            )
    wake_relays()


def _record_resolved(reader: Reader, received: Received, settings: Settings, now: float) -> None:
    if not mark_processed_sync(reader, processed_table, consumer=CONSUMER, event_id=received.event_id):
        return
    resolved = resolution.resolve_one(reader, identifiers=received.identifiers, name=received.name)
    assert resolved.customer_id is not None
    record_received(reader, received=received, customer_id=resolved.customer_id, settings=settings, now=now)


def record_received(
    reader: Reader, *, received: Received, customer_id: str, settings: Settings, now: float
) -> None:
    """The feedback joins `customer_id`'s history (the stored signals follow), and a
    `feedback_linked` event tells the feedback service whose it is."""
    signals.record_feedback(
        reader,
        customer_id=customer_id,
        item=received.item,
        severity=received.severity,
        settings=settings,
        now=now,
        excerpt=_excerpt(reader, received, customer_id),
    )
    feedback_id = received.item.feedback_id
    linked = events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=customer_id)
    insert_outbox_rows(
        reader, outbox_table, outbox_rows([("voc.profile.feedback_linked", linked, f"linked:{feedback_id}")])
    )


# ---------------------------------------------------------------------------------------------
# voc.alert.*


async def handle_alert(database: Database, msg: Msg) -> None:
    """Two prepared statements per event (one for every alert): one `dbsync` write hop."""
    await dbsync.write(
        database,
        apply_alert_event,
        subject=msg.subject,
        data=msg.data,
        event_id=(msg.headers or {}).get("Nats-Msg-Id", ""),
    )


def apply_alert_event(reader: Reader, *, subject: str, data: bytes, event_id: str) -> None:
    """An alert joins its customer's timeline, or moves forward there."""
    if event_id and not mark_processed_sync(
        reader, processed_table, consumer=ALERTS_CONSUMER, event_id=event_id
    ):
        return
    if subject == "voc.alert.created":
        created = events_pb2.AlertCreated.FromString(data)
        if created.kind == "pattern":
            return  # a store-level alert: on no customer's timeline (#18)
        timeline.record_alert(
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
        if res.kind == "pattern":
            return  # a store-level alert: on no customer's timeline (#18)
        alert_id, status, outcome, at = res.alert_id, "resolved", res.outcome, res.resolved_at_ms
    else:
        esc = events_pb2.AlertEscalated.FromString(data)
        alert_id, status, outcome, at = esc.alert_id, "escalated", None, esc.escalated_at_ms
    if not timeline.alert_progress(reader, alert_id=alert_id, status=status, outcome=outcome, at=at / 1000):
        raise AlertNotYetKnown(alert_id)  # rolls back the processed mark too
