"""The customer's timeline across channels: feedback, visits, and the alerts raised about their
feedback with their outcomes (recorded from `voc.alert.*`, one prepared statement per event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, String, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.records import fields_of
from voc_profile import crm
from voc_profile.models import AlertHistory, FeedbackHistory, Visit, alerts_table, history_table

# ---------------------------------------------------------------------------------------------
# Recording alerts

# The customer of a feedback item, for an alert that does not name one.
_FEEDBACK_OWNER = (
    select(history_table.c.customer_id)
    .where(history_table.c.feedback_id == bindparam("owner_of"))
    .scalar_subquery()
)
# The rank of each alert status: an event never moves an alert back (they may arrive out of order).
_STATUS_RANK = {"open": 0, "escalated": 0, "acknowledged": 1, "resolved": 2}
_FORWARD = bindparam("rank", type_=Integer) >= case(
    *((alerts_table.c.status == name, rank) for name, rank in _STATUS_RANK.items() if rank), else_=0
)
_PROGRESS = update(alerts_table).where(alerts_table.c.alert_id == bindparam("progressed_id"))
_PROGRESS_VALUES = {
    "status": case((_FORWARD, bindparam("new_status", type_=String)), else_=alerts_table.c.status),
    "updated_at": case((_FORWARD, bindparam("new_at", type_=Float)), else_=alerts_table.c.updated_at),
}
_PROGRESS_KEEP_OUTCOME = Prepared(_PROGRESS.values(_PROGRESS_VALUES))
_PROGRESS_WITH_OUTCOME = Prepared(
    _PROGRESS.values({**_PROGRESS_VALUES, "outcome": bindparam("new_outcome", type_=String)})
)
_INSERT_ALERT = Prepared(lambda dialect: insert_ignore(dialect, alerts_table))
_INSERT_ALERT_OF_FEEDBACK = Prepared(
    lambda dialect: insert_ignore(dialect, alerts_table).values(customer_id=_FEEDBACK_OWNER)
)


def record_alert(
    reader: Reader,
    *,
    alert_id: str,
    feedback_id: str,
    customer_id: str | None,
    store_id: str,
    priority: str,
    at: float,
) -> None:
    """Add an alert to its customer's timeline (the feedback's customer when the alert names
    none); nothing when it is already there. One statement, in the caller's `dbsync` hop."""
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "feedback_id": feedback_id,
        "store_id": store_id,
        "priority": priority,
        "status": "open",
        "created_at": at,
        "updated_at": at,
    }
    if customer_id:
        reader.execute(_INSERT_ALERT, {**values, "customer_id": customer_id})
    else:
        reader.execute(_INSERT_ALERT_OF_FEEDBACK, {**values, "owner_of": feedback_id})


def alert_progress(reader: Reader, *, alert_id: str, status: str, outcome: str | None, at: float) -> bool:
    """Move an alert forward (open -> acknowledged -> resolved); False when not yet known.
    One statement: the status only moves forward, an outcome is kept once given."""
    params: dict[str, Any] = {
        "rank": _STATUS_RANK.get(status, 0),
        "new_status": status,
        "new_at": at,
        "progressed_id": alert_id,
    }
    stmt = _PROGRESS_KEEP_OUTCOME
    if outcome:
        stmt, params = _PROGRESS_WITH_OUTCOME, {**params, "new_outcome": outcome[:64]}
    return bool(reader.execute(stmt, params))


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, slots=True)
class Timeline:
    customer_id: str  # the customer the entries are of (the survivor, after a merge)
    entries: list[dict[str, Any]]  # JSON: {"kind": "feedback" | "visit" | "alert", "at", ...}


# A feedback item of the history as the API answers it (timeline, subject export).
HISTORY_OUT_FIELDS = (
    "feedback_id",
    "store_id",
    "channel",
    "category",
    "sentiment",
    "csat",
    "nps",
    "occurred_at",
    "revisit_intent",
    "severity",
    "excerpt",
    "reopens_id",
)


def history_out(h: FeedbackHistory) -> dict[str, Any]:
    return fields_of(h, HISTORY_OUT_FIELDS)


async def timeline_of(session: AsyncSession, *, customer_id: str, limit: int) -> Timeline:
    """Feedback from every channel, visits and alerts with their outcomes, newest first, of the
    customer (or the one it was merged into). NotFound / Gone as `crm.get_customer`."""
    await crm.get_customer(session, customer_id=customer_id)
    live = await crm.live_customer(session, customer_id=customer_id)
    assert live is not None
    history = await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id == live.id)
        .order_by(FeedbackHistory.occurred_at.desc())
        .limit(limit)
    )
    entries = [{"kind": "feedback", "at": h.occurred_at, **history_out(h)} for h in history]
    visits = await session.scalars(
        select(Visit).where(Visit.customer_id == live.id).order_by(Visit.visited_at.desc()).limit(limit)
    )
    entries += [
        {"kind": "visit", "at": v.visited_at, "store_id": v.store_id, "amount": v.amount} for v in visits
    ]
    alerts = await session.scalars(
        select(AlertHistory)
        .where(AlertHistory.customer_id == live.id)
        .order_by(AlertHistory.created_at.desc())
        .limit(limit)
    )
    entries += [_alert_out(a) for a in alerts]
    entries.sort(key=lambda e: e["at"], reverse=True)
    return Timeline(live.id, entries[:limit])


def _alert_out(a: AlertHistory) -> dict[str, Any]:
    return {
        "kind": "alert",
        "at": a.created_at,
        "alert_id": a.alert_id,
        "feedback_id": a.feedback_id,
        "store_id": a.store_id,
        "priority": a.priority,
        "status": a.status,
        "outcome": a.outcome,
        "updated_at": a.updated_at,
    }
