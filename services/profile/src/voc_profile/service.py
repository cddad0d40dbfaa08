"""Profile domain logic: resolution, history and signals. Keyword-only, no transport."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.ids import uuid7
from voc_profile.identity import mask_name, mask_phone, normalize
from voc_profile.models import Customer, FeedbackHistory, Identifier, Visit
from voc_profile.settings import Settings

DAY = 86400.0


@dataclass(frozen=True)
class Resolution:
    customer_id: str | None
    created: bool


async def resolve(
    session: AsyncSession,
    *,
    identifiers: list[tuple[str, str]],
    name: str | None = None,
    create_if_missing: bool,
) -> Resolution:
    """One customer for these identifiers; anonymous (None) when there are none.

    When identifiers point at different customers, the oldest customer wins deterministically
    and the other identifiers are attached to it.
    """
    if not identifiers:
        return Resolution(None, created=False)
    rows = list(
        await session.scalars(
            select(Identifier).where(
                Identifier.kind.in_({k for k, _ in identifiers}),
                Identifier.value.in_({v for _, v in identifiers}),
            )
        )
    )
    known = {(r.kind, r.value): r.customer_id for r in rows if (r.kind, r.value) in identifiers}
    created = False
    if known:
        customer_ids = sorted(set(known.values()))
        customer_id = customer_ids[0]  # uuid7 ids sort by creation time: the oldest wins
    elif create_if_missing:
        now = time.time()
        customer_id = uuid7()
        session.add(
            Customer(
                id=customer_id,
                name=name,
                tier="basic",
                lifetime_value=0.0,
                attributes={},
                created_at=now,
                updated_at=now,
            )
        )
        created = True
    else:
        return Resolution(None, created=False)
    for kind, value in identifiers:
        if (kind, value) not in known and (created or create_if_missing):
            try:
                async with session.begin_nested():
                    session.add(Identifier(kind=kind, value=value, customer_id=customer_id))
            except IntegrityError:
                pass  # a concurrent resolution attached it first
    await session.flush()
    return Resolution(customer_id, created=created)


async def record_feedback(session: AsyncSession, *, customer_id: str, facts: dict[str, Any]) -> bool:
    if await session.get(FeedbackHistory, facts["feedback_id"]) is not None:
        return False
    session.add(FeedbackHistory(customer_id=customer_id, **facts))
    await session.flush()
    return True


@dataclass
class Signals:
    repeat_issue: bool = False
    repeat_counts: dict[str, int] = field(default_factory=dict)
    score_swing: bool = False
    score_swing_delta: float = 0.0
    complaint_count_90d: int = 0
    chronic_complainer: bool = False
    low_satisfaction: bool = False
    churn_risk: bool = False
    vip: bool = False
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Context:
    customer: Customer | None
    signals: Signals
    visits: list[Visit]
    feedback_count: int
    mean_csat: float | None
    phone: str | None

    def to_dict(self) -> dict[str, Any]:
        c = self.customer
        return {
            "customer_id": c.id if c else None,
            "found": c is not None,
            "name": c.name if c else None,
            "masked_name": mask_name(c.name) if c else "",
            "masked_phone": mask_phone(self.phone),
            "tier": c.tier if c else None,
            "lifetime_value": c.lifetime_value if c else 0.0,
            "preferred_language": c.preferred_language if c else None,
            "home_store_id": c.home_store_id if c else None,
            "feedback_count": self.feedback_count,
            "mean_csat": self.mean_csat,
            "last_visits": [
                {"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in self.visits
            ],
            "signals": {
                "repeat_issue": self.signals.repeat_issue,
                "repeat_counts": self.signals.repeat_counts,
                "score_swing": self.signals.score_swing,
                "score_swing_delta": self.signals.score_swing_delta,
                "complaint_count_90d": self.signals.complaint_count_90d,
                "chronic_complainer": self.signals.chronic_complainer,
                "low_satisfaction": self.signals.low_satisfaction,
                "churn_risk": self.signals.churn_risk,
                "vip": self.signals.vip,
                "reasons": self.signals.reasons,
            },
        }


async def customer_context(
    session: AsyncSession,
    *,
    customer_id: str,
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """Attributes, last visits and signals; `current` (a feedback not yet recorded) counts too."""
    now = now or time.time()
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return Context(None, Signals(), [], 0, None, None)
    history = list(
        await session.scalars(
            select(FeedbackHistory)
            .where(FeedbackHistory.customer_id == customer_id, FeedbackHistory.occurred_at >= now - 365 * DAY)
            .order_by(FeedbackHistory.occurred_at)
        )
    )
    items: list[dict[str, Any]] = [
        {
            "feedback_id": h.feedback_id,
            "category": h.category,
            "sentiment": h.sentiment,
            "csat": h.csat,
            "nps": h.nps,
            "occurred_at": h.occurred_at,
            "revisit_intent": h.revisit_intent,
        }
        for h in history
    ]
    if current and all(i["feedback_id"] != current["feedback_id"] for i in items):
        items.append(current)
    visits = list(
        await session.scalars(
            select(Visit).where(Visit.customer_id == customer_id).order_by(Visit.visited_at.desc()).limit(5)
        )
    )
    phone = await session.scalar(
        select(Identifier.value).where(Identifier.customer_id == customer_id, Identifier.kind == "phone")
    )
    signals = compute_signals(
        items,
        customer=customer,
        visits=visits,
        settings=settings,
        now=now,
        current_id=current["feedback_id"] if current else None,
    )
    csats = [i["csat"] for i in items if i.get("csat") is not None]
    return Context(
        customer, signals, visits, len(items), round(sum(csats) / len(csats), 2) if csats else None, phone
    )


def compute_signals(
    items: list[dict[str, Any]],
    *,
    customer: Customer,
    visits: list[Visit],
    settings: Settings,
    now: float,
    current_id: str | None,
) -> Signals:
    s = Signals()
    complaints = [i for i in items if i["sentiment"] == "negative"]
    recent = [i for i in complaints if i["occurred_at"] >= now - settings.repeat_window_days * DAY]
    counts = Counter(i["category"] for i in recent)
    s.repeat_counts = dict(counts)
    for category, count in counts.items():
        if count >= settings.repeat_min_count:
            s.repeat_issue = True
            s.reasons.append(
                {
                    "signal": "repeat_issue",
                    "reason": f"{count} complaints about {category} in {settings.repeat_window_days} days",
                    "feedback_ids": [i["feedback_id"] for i in recent if i["category"] == category],
                }
            )
    # Score swing: the latest score against the rolling mean of the ones before it.
    scored = [i for i in items if i.get("csat") is not None]
    if len(scored) >= 2:
        last, before = scored[-1], scored[:-1]
        mean = sum(i["csat"] for i in before) / len(before)
        delta = last["csat"] - mean
        if -delta >= settings.swing_csat_points:
            s.score_swing, s.score_swing_delta = True, round(delta, 2)
            s.reasons.append(
                {
                    "signal": "score_swing",
                    "reason": f"CSAT {last['csat']} vs mean {mean:.1f}",
                    "feedback_ids": [last["feedback_id"]],
                }
            )
    npsd = [i for i in items if i.get("nps") is not None]
    if not s.score_swing and len(npsd) >= 2:
        last, before = npsd[-1], npsd[:-1]
        mean = sum(i["nps"] for i in before) / len(before)
        if mean - last["nps"] >= settings.swing_nps_points:
            s.score_swing, s.score_swing_delta = True, round(last["nps"] - mean, 2)
            s.reasons.append(
                {
                    "signal": "score_swing",
                    "reason": f"NPS {last['nps']} vs mean {mean:.1f}",
                    "feedback_ids": [last["feedback_id"]],
                }
            )
    window = [i for i in complaints if i["occurred_at"] >= now - settings.chronic_window_days * DAY]
    s.complaint_count_90d = len(window)
    if len(window) >= settings.chronic_min_count:
        s.chronic_complainer = True
        s.reasons.append(
            {
                "signal": "chronic_complainer",
                "reason": f"{len(window)} complaints in {settings.chronic_window_days} days",
                "feedback_ids": [i["feedback_id"] for i in window],
            }
        )
    if scored:
        recent_scores = [i["csat"] for i in scored[-5:]]
        mean_recent = sum(recent_scores) / len(recent_scores)
        if mean_recent < settings.low_satisfaction_csat:
            s.low_satisfaction = True
            s.reasons.append(
                {
                    "signal": "low_satisfaction",
                    "reason": f"mean CSAT {mean_recent:.1f} over last {len(recent_scores)}",
                    "feedback_ids": [i["feedback_id"] for i in scored[-5:]],
                }
            )
    intents = [i for i in items if i.get("revisit_intent") and i["feedback_id"] != current_id]
    if intents:
        said = intents[-1]
        came_back = any(v.visited_at > said["occurred_at"] for v in visits)
        if not came_back and now - said["occurred_at"] > settings.churn_window_days * DAY:
            s.churn_risk = True
            s.reasons.append(
                {
                    "signal": "churn_risk",
                    "reason": f"said they would return, no visit in {settings.churn_window_days} days",
                    "feedback_ids": [said["feedback_id"]],
                }
            )
    if customer.tier in settings.vip_tiers or customer.lifetime_value >= settings.vip_lifetime_value:
        s.vip = True
        s.reasons.append(
            {
                "signal": "vip",
                "reason": f"tier {customer.tier}, lifetime value {customer.lifetime_value:,.0f}",
                "feedback_ids": [],
            }
        )
    return s


async def upsert_customer(session: AsyncSession, *, data: dict[str, Any], region: str) -> tuple[str, bool]:
    """Create or update a CRM customer by its identifiers (used by import and seeding)."""
    identifiers = normalize(
        loyalty_id=data.get("loyalty_id") or "",
        phone=data.get("phone") or "",
        email=data.get("email") or "",
        region=region,
    )
    resolution = await resolve(
        session, identifiers=identifiers, name=data.get("name"), create_if_missing=True
    )
    if resolution.customer_id is None:
        raise ValueError("a customer needs at least one identifier")
    customer = await session.get(Customer, resolution.customer_id)
    assert customer is not None
    for key in ("name", "tier", "lifetime_value", "preferred_language", "home_store_id", "contact_consent"):
        if data.get(key) is not None:
            setattr(customer, key, data[key])
    customer.updated_at = time.time()
    await session.flush()
    return customer.id, resolution.created
