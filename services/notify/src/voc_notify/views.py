"""Alerts as staff see them: which alerts a principal may see, the inbox page, an alert's
summary and detail, and its delivery receipts (the JSON the REST API and the live stream serve)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import Alert, Delivery
from voc_notify.routing import ROLE_LEVEL
from voc_platform.errors import Forbidden, NotFound
from voc_platform.identity import Principal
from voc_platform.records import fields_of

# What a receipt shows of a delivery (before `acknowledged_at` and `last_error`), and what the
# detail adds to the summary of an alert besides its feedback, customer and related feedback.
RECEIPT_FIELDS = (
    "id",
    "staff_id",
    "device_id",
    "level",
    "status",
    "attempts",
    "created_at",
    "held_until",
    "accepted_at",
    "shown_at",
    "opened_at",
)
DETAIL_FIELDS = ("plan", "degraded", "acknowledged_by", "resolved_by", "outcome", "note")


def visible_to(principal: Principal, *, store_id: str, area_id: str | None) -> bool:
    """Admins see every store, area managers their area, everyone else their stores."""
    if principal.role == "cx_admin":
        return True
    if principal.role == "area_manager" and area_id is not None and area_id == principal.area_id:
        return True
    return store_id in principal.store_ids


def _scope(principal: Principal) -> ColumnElement[bool]:
    """`visible_to` as a filter on alerts."""
    if principal.role == "cx_admin":
        return true()
    clauses: list[ColumnElement[bool]] = (
        [Alert.store_id.in_(principal.store_ids)] if principal.store_ids else []
    )
    if principal.role == "area_manager" and principal.area_id:
        clauses.append(Alert.area_id == principal.area_id)
    return or_(*clauses) if clauses else false()


async def visible_alert(session: AsyncSession, *, alert_id: str, principal: Principal) -> Alert:
    """The alert, if the principal may see it; another store's is answered like a missing one."""
    alert = await session.get(Alert, alert_id)
    if alert is None or not visible_to(principal, store_id=alert.store_id, area_id=alert.area_id):
        raise NotFound(f"No alert '{alert_id}'.")
    return alert


async def inbox(
    session: AsyncSession, *, principal: Principal, status: str | None, limit: int, before: str | None
) -> dict[str, Any]:
    """A page of the alerts the principal may see, newest first; `next_before` continues it."""
    query = select(Alert).where(_scope(principal))
    if status:
        query = query.where(Alert.status == status)
    if before:
        query = query.where(Alert.id < before)  # uuid7 ids sort by time
    rows = list(await session.scalars(query.order_by(Alert.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return {
        "alerts": [alert_summary(a) for a in page],
        "next_before": page[-1].id if len(rows) > limit else None,
    }


async def receipts(session: AsyncSession, *, alert_id: str, principal: Principal) -> dict[str, Any]:
    """Delivery receipts per device: accepted by the push service, shown, opened, acknowledged."""
    alert = await visible_alert(session, alert_id=alert_id, principal=principal)
    if ROLE_LEVEL.get(principal.role, 0) < ROLE_LEVEL["store_manager"]:
        raise Forbidden("Delivery receipts are for store managers and above.")
    rows = await session.scalars(
        select(Delivery).where(Delivery.alert_id == alert.id).order_by(Delivery.created_at, Delivery.id)
    )
    return {"alert_id": alert.id, "deliveries": [delivery_receipt(d, alert) for d in rows]}


def delivery_receipt(delivery: Delivery, alert: Alert) -> dict[str, Any]:
    """The delivery's own columns (`RECEIPT_FIELDS`), then whether its staff member acknowledged."""
    acknowledged = alert.acknowledged_at if alert.acknowledged_by == delivery.staff_id else None
    return {
        **fields_of(delivery, RECEIPT_FIELDS),
        "acknowledged_at": acknowledged,
        "last_error": delivery.last_error,
    }


def alert_summary(alert: Alert) -> dict[str, Any]:
    """An inbox row and a live-stream event: a literal, as the stream serves one per alert."""
    return {
        "id": alert.id,
        "feedback_id": alert.feedback_id,
        "store_id": alert.store_id,
        "category": alert.category,
        "priority": alert.priority,
        "status": alert.status,
        "title": alert.title,
        "body": alert.body,
        "created_at": alert.created_at,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
        "escalation_level": alert.escalation_level,
        "updates": alert.updates or 0,
        "updated_at": alert.updated_at,
        "classification": classification(alert),
    }


def classification(alert: Alert) -> dict[str, Any]:
    """What the classifier said of the alert's feedback and how sure it was (#17); `uncertain`
    alerts are shown as such. An alert made before confidences were carried: no confidence,
    not flagged."""
    if alert.classification:
        return alert.classification
    return {
        "sentiment": (alert.feedback or {}).get("sentiment") or None,
        "category": alert.category,
        "confidence": None,
        "category_confidence": None,
        "model_version": None,
        "uncertain": False,
    }


def alert_detail(alert: Alert) -> dict[str, Any]:
    """The summary, what the alert was made from (its `context` answered as `customer`) and how
    it was handled (`DETAIL_FIELDS`)."""
    return {
        **alert_summary(alert),
        "feedback": alert.feedback,
        "customer": alert.context,
        **fields_of(alert, DETAIL_FIELDS),
        "related_feedback": alert.related_feedback or [],
    }
