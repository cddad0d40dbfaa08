"""What happens to an alert after it went out: acknowledged, resolved, escalated when nobody
answers, and its pushes reported shown or opened."""

from __future__ import annotations

import time
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify.alerts import add_recipients_sync
from voc_notify.errors import AlreadyAcknowledged
from voc_notify.models import Alert, Delivery, EscalationTimer, Store, outbox_table
from voc_notify.routing import Candidate, staff_for_roles
from voc_platform.dbsync import Reader
from voc_platform.errors import Conflict
from voc_platform.identity import Principal
from voc_platform.outbox import add_event, add_events

OUTCOMES = ("resolved", "compensated", "referred", "no_action_needed", "customer_unreachable")
# The alert events each case hears (one per feedback item the alert answers).
_CaseStep = TypeVar("_CaseStep", events_pb2.AlertAcknowledged, events_pb2.AlertResolved)


def feedback_ids(alert: Alert) -> list[str]:
    """Every feedback item this alert answers: its own and the merged repeats (each has a case)."""
    return [alert.feedback_id, *(str(item["id"]) for item in alert.related_feedback or [])]


async def acknowledge(
    session: AsyncSession, *, alert: Alert, principal: Principal, now: float | None = None
) -> Alert:
    """The alert is taken: paging stops at once (pending ack timers and unsent pushes)."""
    now = now or time.time()
    if alert.status != "open":
        raise AlreadyAcknowledged(
            f"The alert is already {alert.status}.", acknowledged_by=alert.acknowledged_by
        )
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = principal.staff_id
    await session.execute(
        update(EscalationTimer)
        .where(
            EscalationTimer.alert_id == alert.id,
            EscalationTimer.kind == "ack",
            EscalationTimer.status == "pending",
        )
        .values(status="cancelled")
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.status == "pending", Delivery.attempts == 0)
        .values(status="cancelled")
    )
    acknowledged = events_pb2.AlertAcknowledged(
        alert_id=alert.id, staff_id=principal.staff_id, acknowledged_at_ms=int(now * 1000)
    )
    await _tell_cases(session, alert, "voc.alert.acknowledged", acknowledged)
    return alert


async def resolve(
    session: AsyncSession,
    *,
    alert: Alert,
    principal: Principal,
    outcome: str,
    note: str,
    now: float | None = None,
) -> Alert:
    """The alert is closed with an outcome; an open one is acknowledged first."""
    now = now or time.time()
    if alert.status == "resolved":
        raise Conflict("The alert is already resolved.")
    if alert.status == "open":
        # Resolving implies acknowledging; record both so the loop KPIs stay honest.
        await acknowledge(session, alert=alert, principal=principal, now=now)
    alert.status = "resolved"
    alert.resolved_at = now
    alert.resolved_by = principal.staff_id
    alert.outcome = outcome
    alert.note = note
    await session.execute(
        update(EscalationTimer)
        .where(EscalationTimer.alert_id == alert.id, EscalationTimer.status == "pending")
        .values(status="cancelled")
    )
    resolved = events_pb2.AlertResolved(
        alert_id=alert.id,
        staff_id=principal.staff_id,
        outcome=outcome,
        note=note,
        resolved_at_ms=int(now * 1000),
    )
    await _tell_cases(session, alert, "voc.alert.resolved", resolved)
    return alert


async def _tell_cases(session: AsyncSession, alert: Alert, subject: str, message: _CaseStep) -> None:
    """`message` once for each feedback item the alert answers (each has a case), with its id."""
    events: list[tuple[str, Message, str | None]] = []
    for feedback_id in feedback_ids(alert):
        event = type(message)()
        event.CopyFrom(message)
        event.feedback_id = feedback_id
        events.append((subject, event, None))
    await add_events(session, outbox_table, events)


async def escalate(
    session: AsyncSession, *, timer: EscalationTimer, now: float
) -> tuple[Alert, list[Candidate]] | None:
    """Fire one due timer: page the next roles, or tell the manager the resolve SLA passed."""
    alert = await session.get(Alert, timer.alert_id)
    timer.status = "fired"
    if alert is None:
        return None
    if timer.kind == "ack" and alert.status != "open":
        timer.status = "cancelled"
        return None
    if timer.kind == "resolve" and alert.status == "resolved":
        timer.status = "cancelled"
        return None
    store = await session.get(Store, alert.store_id)
    if store is None:
        return None
    staff = await staff_for_roles(session, store=store, wanted=list(timer.roles), now=now)
    if timer.kind == "ack":
        alert.escalation_level = max(alert.escalation_level, timer.level)
    await session.flush()  # the alert and timer rows first, as one flush wrote them with the rest
    await session.run_sync(
        lambda s: add_recipients_sync(
            Reader.of(s.connection()),
            alert=alert,
            staff_ids=[p.id for p in staff],
            level=timer.level,
            store=store,
            now=now,
        )
    )
    await add_event(
        session,
        outbox_table,
        subject="voc.alert.escalated",
        message=events_pb2.AlertEscalated(
            alert_id=alert.id,
            feedback_id=alert.feedback_id,
            level=timer.level if timer.kind == "ack" else -1,
            roles=list(timer.roles),
            recipient_staff_ids=[s.id for s in staff],
            escalated_at_ms=int(now * 1000),
        ),
        event_id=f"escalated:{timer.id}",
    )
    return alert, staff


async def record_receipt(
    session: AsyncSession, *, alert_id: str, staff_id: str, kind: str, device_id: str | None, now: float
) -> None:
    """A push of the alert to this staff member (on `device_id`, or any of theirs) was shown or
    opened; the first time counts."""
    rows = await session.scalars(
        select(Delivery).where(Delivery.alert_id == alert_id, Delivery.staff_id == staff_id)
    )
    for delivery in rows:
        if device_id and delivery.device_id != device_id:
            continue
        if kind == "shown" and delivery.shown_at is None:
            delivery.shown_at = now
        if kind == "opened" and delivery.opened_at is None:
            delivery.opened_at = now
