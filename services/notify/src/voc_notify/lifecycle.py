"""What happens to an alert after it went out: acknowledged, resolved, escalated when nobody
answers, and its pushes reported shown or opened."""

from __future__ import annotations

import time
from typing import TypeVar, cast

from google.protobuf.message import Message
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify import checklists
from voc_notify.alerts import add_recipients_sync
from voc_notify.errors import AlreadyAcknowledged
from voc_notify.models import Alert, Delivery, Device, EscalationTimer, Store
from voc_notify.publishing import publish
from voc_notify.routing import Candidate, staff_for_roles
from voc_platform.dbsync import Reader
from voc_platform.errors import Conflict
from voc_platform.fields import RESOLUTION_OUTCOMES
from voc_platform.identity import Principal
from voc_platform.masking import mask_inserted_names

OUTCOMES = RESOLUTION_OUTCOMES
# The alert events each case hears (one per feedback item the alert answers).
_CaseStep = TypeVar("_CaseStep", events_pb2.AlertAcknowledged, events_pb2.AlertResolved)


def feedback_ids(alert: Alert) -> list[str]:
    """Every feedback item this alert answers: its own and the merged repeats (each has a case).
    A pattern or heads-up alert answers none."""
    if not alert.feedback_id:
        return []
    return [alert.feedback_id, *(str(item["id"]) for item in alert.related_feedback or [])]


def tells_progress(alert: Alert) -> bool:
    """Whether the alert's acknowledgement and escalations are published: every alert that is
    on someone's timeline (feedback items' cases, a heads-up's customer); a pattern alert is on
    none, and says only its resolution (plan adherence)."""
    return alert.kind != "pattern"


def done_by(alert: Alert, principal: Principal, *, step: str) -> bool:
    """Whether this staff member already took this step (`ack` or `resolve`) of the alert: a
    replay (an offline queue, a notification action sent twice) is answered with the alert as it
    is, 200 and the original time, not 409; nothing changes and no event is repeated."""
    if step == "ack":
        return alert.status != "open" and alert.acknowledged_by == principal.staff_id
    return alert.status == "resolved" and alert.resolved_by == principal.staff_id


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
        alert_id=alert.id,
        staff_id=principal.staff_id,
        acknowledged_at_ms=int(now * 1000),
        store_id=alert.store_id,
    )
    if tells_progress(alert):
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
    done, total = checklists.adherence(alert, await checklists.marks_of(session, alert_id=alert.id))
    resolved = events_pb2.AlertResolved(
        alert_id=alert.id,
        staff_id=principal.staff_id,
        outcome=outcome,
        note=note,
        resolved_at_ms=int(now * 1000),
        kind=alert.kind or "feedback",
        store_id=alert.store_id,
        playbook_id=str((alert.plan or {}).get("playbook_id") or ""),
        playbook_title=mask_inserted_names(str((alert.plan or {}).get("title") or ""), alert.customer_name),
        priority=alert.priority,
        steps_done=done,
        steps_total=total,
    )
    await publish(session, resolved_events(alert, resolved))
    return alert


def resolved_events(
    alert: Alert, resolved: events_pb2.AlertResolved
) -> list[tuple[str, Message, str | None]]:
    """`voc.alert.resolved` for each item the alert answers. One resolution asks the customer
    once: a merged alert's latest item carries the survey, the others say it is asked elsewhere
    (three merged repeats sent the customer three follow-up messages)."""
    events = _case_events(alert, "voc.alert.resolved", resolved)
    for _, event, _ in events[:-1]:
        cast(events_pb2.AlertResolved, event).follow_up_elsewhere = True
    return events


def _case_events(alert: Alert, subject: str, message: _CaseStep) -> list[tuple[str, Message, str | None]]:
    """`message` once for each feedback item the alert answers (each has a case), with its id;
    once without one for a pattern or heads-up alert."""
    events: list[tuple[str, Message, str | None]] = []
    for feedback_id in feedback_ids(alert) or [""]:
        event = type(message)()
        event.CopyFrom(message)
        event.feedback_id = feedback_id
        events.append((subject, event, None))
    return events


async def _tell_cases(session: AsyncSession, alert: Alert, subject: str, message: _CaseStep) -> None:
    await publish(session, _case_events(alert, subject, message))


async def escalate(
    session: AsyncSession, *, timer: EscalationTimer, now: float
) -> tuple[Alert, list[Candidate]] | None:
    """Fire one due timer: page the next roles, or tell the manager the resolve SLA passed.

    On PostgreSQL the alert is locked first, skipping one that an acknowledgement or a resolve
    holds: the timer stays pending and the next pass decides on the alert as that left it. (A
    staff action locks the alert and then its timers; waiting here, with the timer locked, would
    deadlock with it, and not locking would decide on a stale status.)"""
    alert = await session.get(
        Alert,
        timer.alert_id,
        with_for_update={"key_share": True, "skip_locked": True},
        populate_existing=True,
    )
    if alert is None and await session.scalar(select(Alert.id).where(Alert.id == timer.alert_id)):
        return None  # held by a staff action now: the next pass
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
    if not tells_progress(alert):
        return alert, staff
    escalated = events_pb2.AlertEscalated(
        alert_id=alert.id,
        feedback_id=alert.feedback_id or "",
        level=timer.level if timer.kind == "ack" else -1,
        roles=list(timer.roles),
        recipient_staff_ids=[s.id for s in staff],
        escalated_at_ms=int(now * 1000),
        store_id=alert.store_id,
    )
    await publish(session, [("voc.alert.escalated", escalated, f"escalated:{timer.id}")])
    return alert, staff


RECEIPT_COLUMNS = {"shown": "shown_at", "opened": "opened_at", "acknowledged": "notification_ack_at"}


async def record_receipt(
    session: AsyncSession, *, alert_id: str, staff_id: str, kind: str, device_id: str | None, now: float
) -> None:
    """A push of the alert to this staff member (on `device_id`, or any of theirs) was shown,
    opened, or acknowledged from its notification; the first time counts. A shown push also
    clears its device of the watchdog's suspicion (#23)."""
    column = RECEIPT_COLUMNS[kind]
    rows = await session.scalars(
        select(Delivery).where(Delivery.alert_id == alert_id, Delivery.staff_id == staff_id)
    )
    devices: set[str] = set()
    for delivery in rows:
        if device_id and delivery.device_id != device_id:
            continue
        if getattr(delivery, column) is None:
            setattr(delivery, column, now)
        devices.add(delivery.device_id)
    if kind == "shown" and devices:
        await session.execute(
            update(Device).where(Device.id.in_(sorted(devices))).values(last_shown_at=now, suspect_since=None)
        )
