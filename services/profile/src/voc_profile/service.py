"""Profile domain logic: resolution and merges, history, signals, lists, timeline, erasure.

Keyword-only functions on an AsyncSession; no transport. Errors are the exceptions below, which
the REST and gRPC layers translate.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_platform.ids import uuid7
from voc_platform.outbox import add_event
from voc_profile.identity import mask_name, mask_phone, normalize
from voc_profile.models import (
    AlertHistory,
    AuditEntry,
    Customer,
    CustomerMerge,
    CustomerSignals,
    FeedbackHistory,
    Identifier,
    Visit,
    outbox_table,
)
from voc_profile.settings import Settings

DAY = 86400.0
SIGNALS = ("repeat_issue", "score_swing", "chronic_complainer", "low_satisfaction", "churn_risk", "vip")
STORED_FLAGS = ("repeat_issue", "score_swing", "low_satisfaction", "churn_risk")
MERGE_FILLABLE = ("name", "preferred_language", "home_store_id", "household_id", "household_relation")


class NotFound(LookupError):
    pass


class Gone(LookupError):
    pass


class Conflict(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# Audit


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    customer_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction (ids and counts only, never the data)."""
    session.add(
        AuditEntry(at=time.time(), actor=actor, action=action, customer_id=customer_id, detail=detail or {})
    )


# ---------------------------------------------------------------------------------------------
# Resolution and merges


@dataclass(frozen=True)
class Resolution:
    customer_id: str | None
    created: bool
    merged_ids: tuple[str, ...] = ()


async def known_customers(
    session: AsyncSession, *, identifiers: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(kind, value) -> customer id for the identifiers already on file."""
    if not identifiers:
        return {}
    rows = (
        await session.execute(
            select(Identifier.kind, Identifier.value, Identifier.customer_id).where(
                Identifier.kind.in_({k for k, _ in identifiers}),
                Identifier.value.in_({v for _, v in identifiers}),
            )
        )
    ).all()
    wanted = set(identifiers)
    return {(r.kind, r.value): r.customer_id for r in rows if (r.kind, r.value) in wanted}


async def lookup(session: AsyncSession, *, identifiers: list[tuple[str, str]]) -> str | None:
    """Read-only resolution: the customer when every identifier is on file for one customer."""
    known = await known_customers(session, identifiers=identifiers)
    owners = set(known.values())
    if len(known) == len(set(identifiers)) and len(owners) == 1:
        return owners.pop()
    return None


async def resolve(
    session: AsyncSession,
    *,
    identifiers: list[tuple[str, str]],
    name: str | None = None,
    create_if_missing: bool,
    trigger: str = "resolve",
) -> Resolution:
    """One customer for these identifiers; anonymous (None) when there are none.

    When the identifiers belong to two or more known customers they are the same person: the
    oldest customer (uuid7 ids sort by creation time) survives and the others merge into it,
    recorded in `customer_merges` so an admin can undo. A pair an admin separated is never
    merged again; the oldest is used without moving anything.
    """
    if not identifiers:
        return Resolution(None, created=False)
    known = await known_customers(session, identifiers=identifiers)
    created = False
    merged: list[str] = []
    if known:
        customer_ids = sorted(set(known.values()))
        customer_id = customer_ids[0]
        for other in customer_ids[1:]:
            if await _separated(session, customer_id, other):
                continue
            await merge_customers(session, survivor_id=customer_id, merged_id=other, trigger=trigger)
            merged.append(other)
            known = {key: customer_id if owner == other else owner for key, owner in known.items()}
    elif create_if_missing:
        now = time.time()
        customer_id = uuid7()
        session.add(
            Customer(
                id=customer_id,
                name=name,
                tier="basic",
                lifetime_value=0.0,
                contact_consent=False,
                attributes={},
                created_at=now,
                updated_at=now,
            )
        )
        created = True
    else:
        return Resolution(None, created=False)
    conflicts = False
    for kind, value in identifiers:
        if (kind, value) not in known and (created or create_if_missing):
            try:
                async with session.begin_nested():
                    session.add(Identifier(kind=kind, value=value, customer_id=customer_id))
            except IntegrityError:
                conflicts = True  # a concurrent resolution attached it first
    await session.flush()
    if created and conflicts:
        # Two resolutions of a new person raced (PostgreSQL runs them in parallel): the one
        # whose identifiers committed first owns the person; this fresh duplicate folds into it.
        owners = await known_customers(session, identifiers=identifiers)
        others = sorted({owner for owner in owners.values() if owner != customer_id})
        if others:
            winner = others[0]
            await session.execute(
                update(Identifier).where(Identifier.customer_id == customer_id).values(customer_id=winner)
            )
            await session.execute(delete(Customer).where(Customer.id == customer_id))
            customer_id, created = winner, False
    return Resolution(customer_id, created=created, merged_ids=tuple(merged))


async def _separated(session: AsyncSession, a: str, b: str) -> bool:
    found = await session.scalar(
        select(CustomerMerge.id)
        .where(
            CustomerMerge.undone_at.is_not(None),
            or_(
                and_(CustomerMerge.survivor_id == a, CustomerMerge.merged_id == b),
                and_(CustomerMerge.survivor_id == b, CustomerMerge.merged_id == a),
            ),
        )
        .limit(1)
    )
    return found is not None


async def merge_customers(
    session: AsyncSession, *, survivor_id: str, merged_id: str, trigger: str
) -> CustomerMerge:
    """Move everything of `merged_id` to `survivor_id`, listing what moved so it can be undone."""
    survivor = await session.get(Customer, survivor_id)
    merged = await session.get(Customer, merged_id)
    if survivor is None or merged is None:
        raise NotFound("both customers must exist")
    identifiers = [
        [r.kind, r.value]
        for r in (
            await session.execute(
                select(Identifier.kind, Identifier.value).where(Identifier.customer_id == merged_id)
            )
        ).all()
    ]
    feedback_ids = list(
        await session.scalars(
            select(FeedbackHistory.feedback_id).where(FeedbackHistory.customer_id == merged_id)
        )
    )
    visit_ids = list(await session.scalars(select(Visit.id).where(Visit.customer_id == merged_id)))
    await session.execute(
        update(Identifier).where(Identifier.customer_id == merged_id).values(customer_id=survivor_id)
    )
    await session.execute(
        update(FeedbackHistory)
        .where(FeedbackHistory.customer_id == merged_id)
        .values(customer_id=survivor_id)
    )
    await session.execute(update(Visit).where(Visit.customer_id == merged_id).values(customer_id=survivor_id))
    await session.execute(
        update(AlertHistory).where(AlertHistory.customer_id == merged_id).values(customer_id=survivor_id)
    )
    filled: dict[str, Any] = {}
    for key in MERGE_FILLABLE:
        if getattr(survivor, key) is None and getattr(merged, key) is not None:
            filled[key] = getattr(merged, key)
            setattr(survivor, key, filled[key])
    merged.merged_into = survivor_id
    merged.updated_at = survivor.updated_at = time.time()
    await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id == merged_id))
    record = CustomerMerge(
        id=uuid7(),
        survivor_id=survivor_id,
        merged_id=merged_id,
        identifiers=identifiers,
        feedback_ids=feedback_ids,
        visit_ids=visit_ids,
        filled=filled,
        trigger=trigger[:100],
        created_at=time.time(),
    )
    session.add(record)
    for feedback_id in feedback_ids:
        # The feedback service keeps the customer id of each item: tell it who it is now.
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.feedback_linked",
            message=events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=survivor_id),
            event_id=f"linked:{feedback_id}:{record.id}",
        )
    await audit(
        session,
        actor="system",
        action="merge",
        customer_id=survivor_id,
        detail={"merge_id": record.id, "merged_id": merged_id, "trigger": record.trigger},
    )
    await session.flush()
    return record


async def undo_merge(session: AsyncSession, *, merge_id: str, actor: str) -> CustomerMerge:
    """Give the merged customer back what was moved; the pair is never merged again."""
    record = await session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge '{merge_id}'.")
    if record.undone_at is not None:
        raise Conflict(f"Merge '{merge_id}' was already undone.")
    survivor = await session.get(Customer, record.survivor_id)
    merged = await session.get(Customer, record.merged_id)
    if survivor is None or merged is None or survivor.erased_at or merged.erased_at:
        raise Conflict("A customer of this merge was erased; it cannot be undone.")
    for kind, value in record.identifiers:
        await session.execute(
            update(Identifier)
            .where(Identifier.kind == kind, Identifier.value == value, Identifier.customer_id == survivor.id)
            .values(customer_id=merged.id)
        )
    if record.feedback_ids:
        await session.execute(
            update(FeedbackHistory)
            .where(
                FeedbackHistory.feedback_id.in_(record.feedback_ids),
                FeedbackHistory.customer_id == survivor.id,
            )
            .values(customer_id=merged.id)
        )
        await session.execute(
            update(AlertHistory)
            .where(AlertHistory.feedback_id.in_(record.feedback_ids))
            .values(customer_id=merged.id)
        )
    if record.visit_ids:
        await session.execute(
            update(Visit)
            .where(Visit.id.in_(record.visit_ids), Visit.customer_id == survivor.id)
            .values(customer_id=merged.id)
        )
    for key, value in record.filled.items():
        if getattr(survivor, key) == value:
            setattr(survivor, key, None)
    merged.merged_into = None
    merged.updated_at = survivor.updated_at = time.time()
    record.undone_at = time.time()
    record.undone_by = actor[:100]
    for feedback_id in record.feedback_ids:
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.feedback_linked",
            message=events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id=merged.id),
            event_id=f"unlinked:{feedback_id}:{record.id}",
        )
    await audit(
        session,
        actor=actor,
        action="merge_undo",
        customer_id=survivor.id,
        detail={"merge_id": record.id, "merged_id": merged.id},
    )
    await session.flush()
    return record


def merge_out(record: CustomerMerge) -> dict[str, Any]:
    return {
        "id": record.id,
        "survivor_id": record.survivor_id,
        "merged_id": record.merged_id,
        "identifier_kinds": sorted({kind for kind, _ in record.identifiers}),
        "feedback_ids": record.feedback_ids,
        "visit_count": len(record.visit_ids),
        "trigger": record.trigger,
        "created_at": record.created_at,
        "undone_at": record.undone_at,
        "undone_by": record.undone_by,
    }


async def merges_of(session: AsyncSession, *, customer_id: str) -> list[CustomerMerge]:
    return list(
        await session.scalars(
            select(CustomerMerge)
            .where(or_(CustomerMerge.survivor_id == customer_id, CustomerMerge.merged_id == customer_id))
            .order_by(CustomerMerge.created_at)
        )
    )


async def live_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """The customer, following merges to the survivor (a few hops at most)."""
    customer = await session.get(Customer, customer_id)
    for _ in range(5):
        if customer is None or customer.merged_into is None:
            break
        customer = await session.get(Customer, customer.merged_into)
    return customer


# ---------------------------------------------------------------------------------------------
# Feedback history and signals


async def record_feedback(
    session: AsyncSession, *, customer_id: str, facts: dict[str, Any], settings: Settings
) -> bool:
    """Add one feedback item to the history and update the customer's stored signals."""
    if await session.get(FeedbackHistory, facts["feedback_id"]) is not None:
        return False
    session.add(FeedbackHistory(customer_id=customer_id, **facts))
    await session.flush()
    await refresh_signals(session, customer_id=customer_id, settings=settings)
    return True


@dataclass
class Signals:
    repeat_issue: bool = False
    repeat_counts: dict[str, int] = field(default_factory=dict)
    score_swing: bool = False
    score_swing_delta: float = 0.0
    complaint_count_90d: int = 0
    chronic_complainer: bool = False
    chronic_rank: int = 0
    low_satisfaction: bool = False
    churn_risk: bool = False
    vip: bool = False
    reasons: list[dict[str, Any]] = field(default_factory=list)
    satisfaction_mean: float | None = None
    pending_intent_at: float | None = None
    refresh_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat_issue": self.repeat_issue,
            "repeat_counts": self.repeat_counts,
            "score_swing": self.score_swing,
            "score_swing_delta": self.score_swing_delta,
            "complaint_count_90d": self.complaint_count_90d,
            "chronic_complainer": self.chronic_complainer,
            "chronic_rank": self.chronic_rank,
            "low_satisfaction": self.low_satisfaction,
            "churn_risk": self.churn_risk,
            "vip": self.vip,
            "reasons": self.reasons,
        }


@dataclass
class Context:
    customer: Customer | None
    signals: Signals
    visits: list[Visit]
    feedback: list[dict[str, Any]]
    mean_csat: float | None
    phone: str | None
    household: list[Customer] = field(default_factory=list)

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
            "contact_consent": c.contact_consent if c else False,
            "household_relation": c.household_relation if c else None,
            "household": [
                {
                    "customer_id": m.id,
                    "masked_name": mask_name(m.name),
                    "relation": m.household_relation,
                    "tier": m.tier,
                }
                for m in self.household
            ],
            "feedback_count": len(self.feedback),
            "mean_csat": self.mean_csat,
            "recent_feedback": [
                {
                    "feedback_id": i["feedback_id"],
                    "store_id": i.get("store_id", ""),
                    "channel": i.get("channel", ""),
                    "category": i["category"],
                    "sentiment": i["sentiment"],
                    "csat": i.get("csat"),
                    "occurred_at": i["occurred_at"],
                }
                for i in reversed(self.feedback[-5:])
            ],
            "last_visits": [
                {"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in self.visits
            ],
            "signals": self.signals.to_dict(),
        }


def _history_item(h: FeedbackHistory) -> dict[str, Any]:
    return {
        "feedback_id": h.feedback_id,
        "store_id": h.store_id,
        "channel": h.channel,
        "category": h.category,
        "sentiment": h.sentiment,
        "csat": h.csat,
        "nps": h.nps,
        "occurred_at": h.occurred_at,
        "revisit_intent": h.revisit_intent,
    }


async def _history(session: AsyncSession, customer_id: str, now: float) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id == customer_id, FeedbackHistory.occurred_at >= now - 365 * DAY)
        .order_by(FeedbackHistory.occurred_at)
    )
    return [_history_item(h) for h in rows]


async def _last_visits(session: AsyncSession, customer_id: str) -> list[Visit]:
    return list(
        await session.scalars(
            select(Visit).where(Visit.customer_id == customer_id).order_by(Visit.visited_at.desc()).limit(5)
        )
    )


async def chronic_rank(session: AsyncSession, *, complaint_count: int, settings: Settings) -> int:
    """1 + the customers with strictly more complaints in the window; 0 below the minimum."""
    if complaint_count < settings.chronic_min_count:
        return 0
    above = await session.scalar(
        select(func.count())
        .select_from(CustomerSignals)
        .where(CustomerSignals.complaint_count_90d > complaint_count)
    )
    return 1 + int(above or 0)


def apply_chronic(signals: Signals, *, rank: int, settings: Settings, feedback_ids: list[str]) -> None:
    signals.chronic_rank = rank
    if rank and rank <= settings.chronic_top_n:
        signals.chronic_complainer = True
        signals.reasons.append(
            {
                "signal": "chronic_complainer",
                "reason": (
                    f"rank {rank}: {signals.complaint_count_90d} complaints in "
                    f"{settings.chronic_window_days} days"
                ),
                "feedback_ids": feedback_ids,
            }
        )


async def customer_context(
    session: AsyncSession,
    *,
    customer_id: str,
    settings: Settings,
    current: dict[str, Any] | None = None,
    now: float | None = None,
) -> Context:
    """Attributes, last visits, household and signals; `current` (a feedback not yet recorded)
    counts too."""
    now = now or time.time()
    customer = await live_customer(session, customer_id=customer_id)
    if customer is None or customer.erased_at is not None:
        return Context(None, Signals(), [], [], None, None)
    items = await _history(session, customer.id, now)
    if current and all(i["feedback_id"] != current["feedback_id"] for i in items):
        items.append(current)
    visits = await _last_visits(session, customer.id)
    phone = await session.scalar(
        select(Identifier.value)
        .where(Identifier.customer_id == customer.id, Identifier.kind == "phone")
        .limit(1)
    )
    signals = compute_signals(
        items,
        customer=customer,
        visits=visits,
        settings=settings,
        now=now,
        current_id=current["feedback_id"] if current else None,
    )
    rank = await chronic_rank(session, complaint_count=signals.complaint_count_90d, settings=settings)
    apply_chronic(
        signals, rank=rank, settings=settings, feedback_ids=_window_complaints(items, settings, now)
    )
    household: list[Customer] = []
    if customer.household_id:
        household = list(
            await session.scalars(
                select(Customer)
                .where(
                    Customer.household_id == customer.household_id,
                    Customer.id != customer.id,
                    Customer.erased_at.is_(None),
                    Customer.merged_into.is_(None),
                )
                .limit(10)
            )
        )
    csats = [i["csat"] for i in items if i.get("csat") is not None]
    return Context(
        customer,
        signals,
        visits,
        items,
        round(sum(csats) / len(csats), 2) if csats else None,
        phone,
        household,
    )


def _window_complaints(items: list[dict[str, Any]], settings: Settings, now: float) -> list[str]:
    since = now - settings.chronic_window_days * DAY
    return [i["feedback_id"] for i in items if i["sentiment"] == "negative" and i["occurred_at"] >= since]


def compute_signals(
    items: list[dict[str, Any]],
    *,
    customer: Customer,
    visits: list[Visit],
    settings: Settings,
    now: float,
    current_id: str | None,
) -> Signals:
    """Every signal but the chronic rank (which needs the other customers), each with its reason.

    `items` are this customer's feedback facts in time order.
    """
    s = Signals()
    upcoming: list[float] = []  # when a window next moves: the stored signals need a refresh then
    complaints = [i for i in items if i["sentiment"] == "negative"]
    recent = [i for i in complaints if i["occurred_at"] >= now - settings.repeat_window_days * DAY]
    upcoming += [i["occurred_at"] + settings.repeat_window_days * DAY for i in recent[:1]]
    counts = Counter(i["category"] for i in recent)
    s.repeat_counts = dict(counts)
    for category, count in sorted(counts.items()):
        if count >= settings.repeat_min_count:
            s.repeat_issue = True
            s.reasons.append(
                {
                    "signal": "repeat_issue",
                    "reason": f"{count} complaints about {category} in {settings.repeat_window_days} days",
                    "feedback_ids": [i["feedback_id"] for i in recent if i["category"] == category],
                }
            )
    # Score swing: the latest score against the rolling mean of the ones just before it.
    for scale, threshold in (("csat", settings.swing_csat_points), ("nps", settings.swing_nps_points)):
        scored = [i for i in items if i.get(scale) is not None]
        if s.score_swing or len(scored) < 2:
            continue
        last, before = scored[-1], scored[-1 - settings.swing_window : -1]
        mean = sum(i[scale] for i in before) / len(before)
        delta = last[scale] - mean
        if -delta >= threshold:
            s.score_swing, s.score_swing_delta = True, round(delta, 2)
            s.reasons.append(
                {
                    "signal": "score_swing",
                    "reason": f"{scale.upper()} {last[scale]} vs rolling mean {mean:.1f} of {len(before)}",
                    "feedback_ids": [last["feedback_id"]] + [i["feedback_id"] for i in before],
                }
            )
    window = [i for i in complaints if i["occurred_at"] >= now - settings.chronic_window_days * DAY]
    s.complaint_count_90d = len(window)
    upcoming += [i["occurred_at"] + settings.chronic_window_days * DAY for i in window[:1]]
    rated = [i for i in items if i.get("csat") is not None]
    if rated:
        latest = rated[-settings.low_satisfaction_window :]
        s.satisfaction_mean = round(sum(i["csat"] for i in latest) / len(latest), 2)
        if s.satisfaction_mean < settings.low_satisfaction_csat:
            s.low_satisfaction = True
            s.reasons.append(
                {
                    "signal": "low_satisfaction",
                    "reason": f"mean CSAT {s.satisfaction_mean:.1f} over the last {len(latest)}",
                    "feedback_ids": [i["feedback_id"] for i in latest],
                }
            )
    intents = [i for i in items if i.get("revisit_intent") and i["feedback_id"] != current_id]
    if intents:
        said = intents[-1]
        came_back = any(v.visited_at > said["occurred_at"] for v in visits)
        if not came_back:
            s.pending_intent_at = said["occurred_at"]
            due = said["occurred_at"] + settings.churn_window_days * DAY
            if now >= due:
                s.churn_risk = True
                s.reasons.append(
                    {
                        "signal": "churn_risk",
                        "reason": f"said they would return, no visit in {settings.churn_window_days} days",
                        "feedback_ids": [said["feedback_id"]],
                    }
                )
            else:
                upcoming.append(due)
    if is_vip(customer, settings):
        s.vip = True
        s.reasons.append(
            {
                "signal": "vip",
                "reason": f"tier {customer.tier}, lifetime value {customer.lifetime_value:,.0f}",
                "feedback_ids": [],
            }
        )
    s.refresh_at = min(upcoming) if upcoming else None
    return s


def is_vip(customer: Customer, settings: Settings) -> bool:
    return customer.tier in settings.vip_tiers or customer.lifetime_value >= settings.vip_lifetime_value


async def refresh_signals(
    session: AsyncSession, *, customer_id: str, settings: Settings, now: float | None = None
) -> CustomerSignals | None:
    """Recompute and store one customer's event-derived signals (the lists read these rows)."""
    now = now or time.time()
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None or customer.merged_into is not None:
        await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id == customer_id))
        return None
    items = await _history(session, customer_id, now)
    visits = await _last_visits(session, customer_id)
    s = compute_signals(items, customer=customer, visits=visits, settings=settings, now=now, current_id=None)
    row = await session.get(CustomerSignals, customer_id)
    if row is None:
        row = CustomerSignals(customer_id=customer_id)
        session.add(row)
    row.repeat_issue = s.repeat_issue
    row.score_swing = s.score_swing
    row.complaint_count_90d = s.complaint_count_90d
    row.low_satisfaction = s.low_satisfaction
    row.churn_risk = s.churn_risk
    row.satisfaction_mean = s.satisfaction_mean
    row.pending_intent_at = s.pending_intent_at
    row.reasons = [r for r in s.reasons if r["signal"] != "vip"]
    row.refresh_at = s.refresh_at
    row.updated_at = now
    await session.flush()
    return row


async def due_for_refresh(session: AsyncSession, *, now: float, limit: int = 500) -> list[str]:
    return list(
        await session.scalars(
            select(CustomerSignals.customer_id)
            .where(CustomerSignals.refresh_at.is_not(None), CustomerSignals.refresh_at <= now)
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------------------------------
# Lists by signal


@dataclass
class ListedCustomer:
    customer: Customer
    complaint_count_90d: int
    chronic_rank: int
    reasons: list[dict[str, Any]]


async def list_by_signal(
    session: AsyncSession,
    *,
    signal: str,
    settings: Settings,
    limit: int,
    after: tuple[int, str] | None,
) -> tuple[list[ListedCustomer], tuple[int, str] | None]:
    """One page of customers with `signal` set, and the keyset cursor of the next page.

    Chronic complainers come by rank (most complaints first); the others by customer id.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal '{signal}'")
    live = and_(Customer.erased_at.is_(None), Customer.merged_into.is_(None))
    listed: list[ListedCustomer] = []
    if signal == "vip":
        vip_query = select(Customer).where(
            live,
            or_(
                Customer.tier.in_(settings.vip_tiers), Customer.lifetime_value >= settings.vip_lifetime_value
            ),
        )
        if after:
            vip_query = vip_query.where(Customer.id > after[1])
        for c in await session.scalars(vip_query.order_by(Customer.id).limit(limit + 1)):
            reason = {
                "signal": "vip",
                "reason": f"tier {c.tier}, lifetime value {c.lifetime_value:,.0f}",
                "feedback_ids": [],
            }
            listed.append(ListedCustomer(c, 0, 0, [reason]))
    elif signal == "chronic_complainer":
        count_col = CustomerSignals.complaint_count_90d
        ranked_query = (
            select(Customer, CustomerSignals)
            .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
            .where(live, count_col >= settings.chronic_min_count)
        )
        if after:
            ranked_query = ranked_query.where(
                or_(count_col < after[0], and_(count_col == after[0], Customer.id > after[1]))
            )
        ordered = ranked_query.order_by(count_col.desc(), Customer.id).limit(limit + 1)
        rows = (await session.execute(ordered)).all()
        ranks: dict[int, int] = {}
        for c, sig in rows:
            if sig.complaint_count_90d not in ranks:
                ranks[sig.complaint_count_90d] = await chronic_rank(
                    session, complaint_count=sig.complaint_count_90d, settings=settings
                )
            rank = ranks[sig.complaint_count_90d]
            if rank > settings.chronic_top_n:
                break
            reason = {
                "signal": "chronic_complainer",
                "reason": (
                    f"rank {rank}: {sig.complaint_count_90d} complaints in "
                    f"{settings.chronic_window_days} days"
                ),
                "feedback_ids": [],
            }
            listed.append(ListedCustomer(c, sig.complaint_count_90d, rank, [reason]))
    else:
        flag = getattr(CustomerSignals, signal)
        flag_query = (
            select(Customer, CustomerSignals)
            .join(CustomerSignals, CustomerSignals.customer_id == Customer.id)
            .where(live, flag.is_(True))
        )
        if after:
            flag_query = flag_query.where(Customer.id > after[1])
        for c, sig in (await session.execute(flag_query.order_by(Customer.id).limit(limit + 1))).all():
            reasons = [r for r in sig.reasons if r["signal"] == signal]
            listed.append(ListedCustomer(c, sig.complaint_count_90d, 0, reasons))
    next_after = None
    if len(listed) > limit:
        listed = listed[:limit]
        last = listed[-1]
        next_after = (last.complaint_count_90d, last.customer.id)
    return listed, next_after


# ---------------------------------------------------------------------------------------------
# Reports and timeline


async def revisit_report(
    session: AsyncSession, *, settings: Settings, lookback_days: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Per store: how many said they would come back, and how many did within the window.

    Only statements older than the window count (each had its full chance to come true).
    """
    now = now or time.time()
    window = settings.churn_window_days * DAY
    h = FeedbackHistory
    same_store = exists().where(
        Visit.customer_id == h.customer_id,
        Visit.store_id == h.store_id,
        Visit.visited_at > h.occurred_at,
        Visit.visited_at <= h.occurred_at + window,
    )
    any_store = exists().where(
        Visit.customer_id == h.customer_id,
        Visit.visited_at > h.occurred_at,
        Visit.visited_at <= h.occurred_at + window,
    )
    rows = (
        await session.execute(
            select(
                h.store_id,
                func.count(),
                func.sum(case((same_store, 1), else_=0)),
                func.sum(case((any_store, 1), else_=0)),
            )
            .where(
                h.revisit_intent.is_(True),
                h.occurred_at >= now - lookback_days * DAY,
                h.occurred_at <= now - window,
            )
            .group_by(h.store_id)
            .order_by(h.store_id)
        )
    ).all()
    report = []
    for store_id, stated, returned, returned_any in rows:
        returned, returned_any = int(returned or 0), int(returned_any or 0)
        report.append(
            {
                "store_id": store_id,
                "stated_intent": int(stated),
                "returned": returned,
                "returned_any_store": returned_any,
                "revisit_rate": round(returned / stated, 3) if stated else None,
                "window_days": settings.churn_window_days,
            }
        )
    return report


async def timeline(session: AsyncSession, *, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """Feedback from every channel, visits and alerts with their outcomes, newest first."""
    entries: list[dict[str, Any]] = []
    for h in await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id == customer_id)
        .order_by(FeedbackHistory.occurred_at.desc())
        .limit(limit)
    ):
        entries.append({"kind": "feedback", "at": h.occurred_at, **_history_item(h), "severity": h.severity})
    for v in await session.scalars(
        select(Visit).where(Visit.customer_id == customer_id).order_by(Visit.visited_at.desc()).limit(limit)
    ):
        entries.append({"kind": "visit", "at": v.visited_at, "store_id": v.store_id, "amount": v.amount})
    for a in await session.scalars(
        select(AlertHistory)
        .where(AlertHistory.customer_id == customer_id)
        .order_by(AlertHistory.created_at.desc())
        .limit(limit)
    ):
        entries.append(
            {
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
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


async def record_alert(
    session: AsyncSession,
    *,
    alert_id: str,
    feedback_id: str,
    customer_id: str | None,
    store_id: str,
    priority: str,
    at: float,
) -> None:
    if await session.get(AlertHistory, alert_id) is not None:
        return
    if not customer_id:
        customer_id = await session.scalar(
            select(FeedbackHistory.customer_id).where(FeedbackHistory.feedback_id == feedback_id)
        )
    session.add(
        AlertHistory(
            alert_id=alert_id,
            feedback_id=feedback_id,
            customer_id=customer_id or None,
            store_id=store_id,
            priority=priority,
            status="open",
            created_at=at,
            updated_at=at,
        )
    )


async def alert_progress(
    session: AsyncSession, *, alert_id: str, status: str, outcome: str | None, at: float
) -> bool:
    """Move an alert forward (open -> acknowledged -> resolved); False when not yet known."""
    row = await session.get(AlertHistory, alert_id)
    if row is None:
        return False
    order = {"open": 0, "escalated": 0, "acknowledged": 1, "resolved": 2}
    if order.get(status, 0) >= order.get(row.status, 0):
        row.status = status
        row.updated_at = at
    if outcome:
        row.outcome = outcome[:64]
    return True


# ---------------------------------------------------------------------------------------------
# CRM upsert


async def upsert_customer(
    session: AsyncSession, *, data: dict[str, Any], region: str, actor: str = "system"
) -> tuple[str, bool]:
    """Create or update a CRM customer by its identifiers (used by the JSON API and seeding)."""
    identifiers = normalize(
        loyalty_id=data.get("loyalty_id") or "",
        phone=data.get("phone") or "",
        email=data.get("email") or "",
        channel_user_id=data.get("app_user_id") or "",
        channel="app" if data.get("app_user_id") else "",
        region=region,
    )
    if not identifiers:
        raise ValueError("a customer needs at least one identifier")
    resolution = await resolve(
        session, identifiers=identifiers, name=data.get("name"), create_if_missing=True, trigger="crm upsert"
    )
    assert resolution.customer_id is not None
    customer = await session.get(Customer, resolution.customer_id)
    assert customer is not None
    for key in CRM_FIELDS:
        if data.get(key) is not None:
            setattr(customer, key, data[key])
    customer.updated_at = time.time()
    await audit(
        session,
        actor=actor,
        action="create" if resolution.created else "update",
        customer_id=customer.id,
        detail={"fields": sorted(k for k in CRM_FIELDS if data.get(k) is not None)},
    )
    await session.flush()
    return customer.id, resolution.created


CRM_FIELDS = (
    "name",
    "tier",
    "lifetime_value",
    "preferred_language",
    "home_store_id",
    "contact_consent",
    "household_id",
    "household_relation",
)


def customer_out(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "tier": customer.tier,
        "lifetime_value": customer.lifetime_value,
        "preferred_language": customer.preferred_language,
        "home_store_id": customer.home_store_id,
        "contact_consent": customer.contact_consent,
        "household_id": customer.household_id,
        "household_relation": customer.household_relation,
        "merged_into": customer.merged_into,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


# ---------------------------------------------------------------------------------------------
# Privacy: erasure and subject access


async def erase_customer(session: AsyncSession, *, customer_id: str, actor: str) -> list[str]:
    """Remove the personal data of this person (and of every record merged into it).

    Identifiers are deleted and attributes cleared; the feedback facts and visits stay as
    anonymous statistics under an id that no longer leads to anyone. One `CustomerErased` event
    per id tells the holders of copies to redact theirs.
    """
    start = await session.get(Customer, customer_id)
    if start is None:
        raise NotFound(f"No customer '{customer_id}'.")
    person = await live_customer(session, customer_id=customer_id)
    assert person is not None
    if person.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
    targets = [person.id]
    frontier = [person.id]
    while frontier:
        children = list(await session.scalars(select(Customer.id).where(Customer.merged_into.in_(frontier))))
        targets += children
        frontier = children
    now = time.time()
    await session.execute(delete(Identifier).where(Identifier.customer_id.in_(targets)))
    await session.execute(delete(CustomerSignals).where(CustomerSignals.customer_id.in_(targets)))
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(targets))
        .values(
            name=None,
            tier="basic",
            lifetime_value=0.0,
            preferred_language=None,
            home_store_id=None,
            contact_consent=False,
            attributes={},
            household_id=None,
            household_relation=None,
            import_id=None,
            erased_at=now,
            updated_at=now,
        )
    )
    # Merge records listed the identifiers that moved: those are personal data too.
    await session.execute(
        update(CustomerMerge)
        .where(or_(CustomerMerge.survivor_id.in_(targets), CustomerMerge.merged_id.in_(targets)))
        .values(identifiers=[], filled={})
    )
    for target in targets:
        await add_event(
            session,
            outbox_table,
            subject="voc.profile.customer_erased",
            message=events_pb2.CustomerErased(customer_id=target, erased_at_ms=int(now * 1000)),
            event_id=f"erased:{target}",
        )
    await audit(session, actor=actor, action="erase", customer_id=person.id, detail={"customer_ids": targets})
    await session.flush()
    return targets


async def subject_export(session: AsyncSession, *, customer_id: str) -> dict[str, Any]:
    """Everything held about this person (GDPR / PIPA subject access)."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer '{customer_id}'.")
    if customer.erased_at is not None:
        raise Gone(f"Customer '{customer_id}' was erased.")
    merged = await session.scalars(select(Customer.id).where(Customer.merged_into == customer.id))
    ids = [customer.id, *merged]
    identifiers = (
        await session.execute(
            select(Identifier.kind, Identifier.value)
            .where(Identifier.customer_id.in_(ids))
            .order_by(Identifier.kind)
        )
    ).all()
    history = await session.scalars(
        select(FeedbackHistory)
        .where(FeedbackHistory.customer_id.in_(ids))
        .order_by(FeedbackHistory.occurred_at)
    )
    visits = await session.scalars(select(Visit).where(Visit.customer_id.in_(ids)).order_by(Visit.visited_at))
    alerts = await session.scalars(
        select(AlertHistory).where(AlertHistory.customer_id.in_(ids)).order_by(AlertHistory.created_at)
    )
    signals = await session.get(CustomerSignals, customer.id)
    audit_rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.customer_id.in_(ids)).order_by(AuditEntry.at)
    )
    return {
        "customer": customer_out(customer),
        "identifiers": [{"kind": k, "value": v} for k, v in identifiers],
        "feedback": [{**_history_item(h), "severity": h.severity} for h in history],
        "visits": [{"store_id": v.store_id, "visited_at": v.visited_at, "amount": v.amount} for v in visits],
        "alerts": [
            {"alert_id": a.alert_id, "feedback_id": a.feedback_id, "status": a.status, "outcome": a.outcome}
            for a in alerts
        ],
        "signals": (
            {
                "repeat_issue": signals.repeat_issue,
                "score_swing": signals.score_swing,
                "complaint_count_90d": signals.complaint_count_90d,
                "low_satisfaction": signals.low_satisfaction,
                "churn_risk": signals.churn_risk,
                "reasons": signals.reasons,
            }
            if signals
            else None
        ),
        "merges": [merge_out(m) for m in await merges_of(session, customer_id=customer.id)],
        "access_log": [
            {"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail} for a in audit_rows
        ],
    }
