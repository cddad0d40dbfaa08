"""Heads-up on arrival (#18): a customer with recent trouble checks in at a store, and its staff
on duty get one alert with the plan from a `heads_up` playbook, before the customer says a word.

At most one per customer, store and local day: the alert's `dedupe_key` is unique, so whatever
replica consumes a second check-in, the database refuses a second heads-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from voc.events.v1 import events_pb2
from voc_notify import duty, masking
from voc_notify.alerts import NewAlert, create_alert_sync
from voc_notify.facts import CustomerContext, Plan
from voc_notify.models import Alert, Store
from voc_notify.routing import route_sync
from voc_notify.words import OUTCOME
from voc_platform.dbsync import Prepared, Reader
from voc_platform.ids import uuid7
from voc_platform.taxonomy import label


@dataclass(frozen=True, slots=True)
class LastContact:
    feedback_id: str
    category: str
    sentiment: str
    channel: str
    store_id: str
    occurred_at: float
    status: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Arrival:
    """A check-in staff should be ready for (`CustomerArrived`)."""

    visit_id: str
    customer_id: str
    store_id: str
    channel: str
    occurred_at: float
    masked_name: str
    name: str
    tier: str
    vip: bool
    churn_risk: bool
    repeat_issue: bool
    chronic_complainer: bool
    unresolved: bool
    last_contact: LastContact | None

    @property
    def category(self) -> str:
        return self.last_contact.category if self.last_contact else "other"


def arrival_of(event: events_pb2.CustomerArrived) -> Arrival:
    last = event.last_contact if event.HasField("last_contact") else None
    return Arrival(
        visit_id=event.visit_id,
        customer_id=event.customer_id,
        store_id=event.store_id,
        channel=event.channel,
        occurred_at=event.occurred_at_ms / 1000,
        masked_name=event.masked_name,
        name=event.name,
        tier=event.tier,
        vip=event.vip,
        churn_risk=event.churn_risk,
        repeat_issue=event.repeat_issue,
        chronic_complainer=event.chronic_complainer,
        unresolved=event.unresolved,
        last_contact=LastContact(
            last.feedback_id, last.category or "other", last.sentiment, last.channel, last.store_id,
            last.occurred_at_ms / 1000, last.status, last.outcome,
        ) if last is not None and last.feedback_id else None,
    )  # fmt: skip


def reasons(arrival: Arrival, language: str, *, now: float | None = None) -> list[str]:
    """Why staff are told, in the staff member's language: the last negative contact (what, when,
    how it ended or that it is still open), VIP, churn risk, repeat issue."""
    ko = language == "ko"
    out: list[str] = []
    last = arrival.last_contact
    if last is not None:
        days = max(0, int(((now or time.time()) - last.occurred_at) // 86400))
        when = ("오늘" if ko else "today") if days == 0 else (f"{days}일 전" if ko else f"{days} days ago")
        ended = (
            ("미해결" if ko else "unresolved")
            if arrival.unresolved
            else OUTCOME["ko" if ko else "en"].get(last.outcome, last.status or "")
        )
        what = label(last.category, "ko" if ko else "en")
        head = "지난 불만" if ko else "last visit"
        out.append(f"{head}: {what} ({', '.join(p for p in (when, ended) if p)})")
    if arrival.vip:
        out.append("VIP")
    if arrival.churn_risk:
        out.append("이탈 위험" if ko else "churn risk")
    if arrival.repeat_issue:
        out.append("반복 불만" if ko else "repeat issue")
    return out


def day_key(arrival: Arrival, store: Store) -> str:
    """`heads_up:<customer>:<store>:<local date of the check-in>`: one heads-up a day."""
    zone = duty.zone(store.timezone)
    day = datetime.fromtimestamp(arrival.occurred_at or time.time(), zone).date().isoformat()
    return f"heads_up:{arrival.customer_id}:{store.id}:{day}"


_BY_KEY = Prepared(select(Alert.id).where(Alert.dedupe_key == bindparam("key")))


def heads_up_sync(
    reader: Reader,
    *,
    arrival: Arrival,
    store: Store,
    plan: Plan,
    language: str,
    now: float,
    customer: CustomerContext | None = None,
    degraded: tuple[str, ...] = (),
) -> NewAlert | None:
    """The heads-up alert, its recipients (the plan's roles on duty at the store), pushes and
    `voc.alert.created`, in the caller's transaction; None when the customer already had one at
    this store today (a concurrent one fails on the unique key and its event is redelivered).
    `customer`: profile's context (visits, contacts, signals), the story a complaint's alert
    shows; without it (profile down), what the check-in's event says."""
    key = day_key(arrival, store)
    if reader.scalar(_BY_KEY, {"key": key}) is not None:
        return None
    recipients = route_sync(reader, store=store, wanted=list(plan.notify_roles) or ["shift_lead"], now=now)
    why = {lang: reasons(arrival, lang, now=now) for lang in ("ko", "en")}
    title, body = masking.heads_up_text(
        store_name=store.name, masked_name=arrival.masked_name, tier=arrival.tier,
        reasons=why[language if language in why else "en"], language=language,
    )  # fmt: skip
    item: dict[str, Any] = {
        "visit_id": arrival.visit_id,
        "channel": arrival.channel,
        "occurred_at": arrival.occurred_at,
        "masked_name": arrival.masked_name,
        "tier": arrival.tier,
        "reasons_ko": why["ko"],
        "reasons_en": why["en"],
        "unresolved": arrival.unresolved,
        "last_contact": None
        if arrival.last_contact is None
        else {
            "feedback_id": arrival.last_contact.feedback_id,
            "category": arrival.last_contact.category,
            "channel": arrival.last_contact.channel,
            "store_id": arrival.last_contact.store_id,
            "occurred_at": arrival.last_contact.occurred_at,
            "status": arrival.last_contact.status,
            "outcome": arrival.last_contact.outcome,
        },
    }
    alert = Alert(
        id=uuid7(), kind="heads_up", feedback_id=None, store_id=store.id, area_id=store.area_id,
        customer_id=arrival.customer_id, category=arrival.category, priority=plan.priority, status="open",
        title=title, body=body, feedback={},
        context=customer.as_stored() if customer is not None else
                {"known": True, "customer_id": arrival.customer_id, "masked_name": arrival.masked_name,
                 "tier": arrival.tier, "signals": {"vip": arrival.vip, "churn_risk": arrival.churn_risk,
                                                   "repeat_issue": arrival.repeat_issue,
                                                   "chronic_complainer": arrival.chronic_complainer}},
        plan=plan.as_stored(), customer_name=arrival.name[:100] or None, degraded=list(degraded),
        classification=None,
        escalation_level=0, created_at=now,
        traceparent=None, related_feedback=[], updates=0, items=[item], dedupe_key=key, pushed_at=now,
    )  # fmt: skip
    deliveries = create_alert_sync(
        reader, alert=alert, plan=plan, store=store, recipients=recipients, now=now,
        escalate=False,  # a heads-up is a moment's notice: no escalation ladder, no resolve SLA
    )  # fmt: skip
    return NewAlert(alert, recipients, deliveries)
