"""Signals: computed from a customer's feedback items, each with its reason; stored per customer
and kept current as feedback is recorded (the one place a feedback item joins the history).

The hot paths (each event, each context call) are prepared statements run in one `dbsync` hop:
only the columns they use, no ORM objects. Signals read the customer's summary
(`voc_profile.summary`), which each recorded item updates in place, never the whole history;
the history is read only when the summary is missing or no longer describes it (a merge moved
items, the oldest item left the year).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, select, update

from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.dbsync import Prepared, Reader, insert_ignore
from voc_platform.records import fields_of
from voc_platform.taxonomy import label
from voc_profile import summary
from voc_profile.facts import CustomerFacts, FeedbackItem, Reason, VisitFacts
from voc_profile.models import customers_table, history_table, signals_table, visits_table
from voc_profile.settings import Settings

DAY = 86400.0
_CSAT, _NPS = attrgetter("csat"), attrgetter("nps")
SIGNALS = ("repeat_issue", "score_swing", "chronic_complainer", "low_satisfaction", "churn_risk", "vip")
# What the REST context answers of `Signals` besides the reasons; the other fields are kept for
# the stored row (gRPC builds its message from the same fields, by hand: it is the hot path).
ANSWERED_FIELDS = (
    "repeat_issue",
    "repeat_counts",
    "score_swing",
    "score_swing_delta",
    "complaint_count_90d",
    "chronic_complainer",
    "chronic_rank",
    "low_satisfaction",
    "churn_risk",
    "vip",
)


@dataclass(slots=True)
class Signals:
    """A customer's signals at one moment, each set one with its reason (filled in step by step)."""

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
    reasons: list[Reason] = field(default_factory=list)
    satisfaction_mean: float | None = None
    pending_intent_at: float | None = None
    refresh_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The REST context's `signals` (`ANSWERED_FIELDS` and the reasons)."""
        return {**fields_of(self, ANSWERED_FIELDS), "reasons": [r.to_dict() for r in self.reasons]}


# ---------------------------------------------------------------------------------------------
# Computing


def compute_signals(
    items: list[FeedbackItem],
    *,
    customer: CustomerFacts | None,
    visits: Sequence[VisitFacts],
    settings: Settings,
    now: float,
    current_id: str | None,
) -> Signals:
    """Every signal but the chronic rank (which needs the other customers), each with its reason.

    `items` are this customer's feedback facts in time order (the whole history of the year, or
    the part of it its summary keeps: the result is the same). Without a customer, no `vip`.
    """
    s = Signals()
    upcoming: list[float] = []  # when a window next moves: the stored signals need a refresh then
    # A follow-up answer is not a complaint of its own (`voc_platform.taxonomy.is_complaint`).
    complaints = [i for i in items if i.complaint]
    # The steps take their values by position: this runs on every context call and event.
    _repeat_issue(s, complaints, settings, now, upcoming)
    _score_swing(s, items, settings)
    window = [i for i in complaints if i.occurred_at >= now - settings.chronic_window_days * DAY]
    s.complaint_count_90d = len(window)
    upcoming += [i.occurred_at + settings.chronic_window_days * DAY for i in window[:1]]
    _low_satisfaction(s, items, settings)
    _churn_risk(s, items, visits, settings, now, current_id, upcoming)
    if customer is not None and is_vip(customer, settings=settings):
        s.vip = True
        s.reasons.append(vip_reason(customer))
    s.refresh_at = min(upcoming) if upcoming else None
    return s


def _repeat_issue(
    s: Signals, complaints: list[FeedbackItem], settings: Settings, now: float, upcoming: list[float]
) -> None:
    """Complaints about one category within the repeat window."""
    recent = [i for i in complaints if i.occurred_at >= now - settings.repeat_window_days * DAY]
    upcoming += [i.occurred_at + settings.repeat_window_days * DAY for i in recent[:1]]
    counts = Counter(i.category for i in recent)
    s.repeat_counts = dict(counts)
    for category, count in sorted(counts.items()):
        if count >= settings.repeat_min_count:
            s.repeat_issue = True
            s.reasons.append(
                Reason(
                    "repeat_issue",
                    f"{count} complaints in {settings.repeat_window_days} days: {label(category, 'en')}",
                    [i.feedback_id for i in recent if i.category == category],
                    f"{settings.repeat_window_days}일 동안 {label(category, 'ko')} 불만 {count}건",
                )
            )


def _score_swing(s: Signals, items: list[FeedbackItem], settings: Settings) -> None:
    """The latest score against the rolling mean of the ones just before it (CSAT, then NPS)."""
    for scale, score, threshold in (
        ("CSAT", _CSAT, settings.swing_csat_points),
        ("NPS", _NPS, settings.swing_nps_points),
    ):
        scored = [i for i in items if score(i) is not None]
        if s.score_swing or len(scored) < 2:
            continue
        last, before = scored[-1], scored[-1 - settings.swing_window : -1]
        mean = sum(score(i) for i in before) / len(before)
        delta = score(last) - mean
        if -delta >= threshold:
            s.score_swing, s.score_swing_delta = True, round(delta, 2)
            s.reasons.append(
                Reason(
                    "score_swing",
                    f"{scale} {score(last)} vs rolling mean {mean:.1f} of {len(before)}",
                    [last.feedback_id] + [i.feedback_id for i in before],
                    f"{scale} {score(last)}점, 직전 {len(before)}건 평균 {mean:.1f}점에서 급락",
                )
            )


def _low_satisfaction(s: Signals, items: list[FeedbackItem], settings: Settings) -> None:
    """The mean of the latest CSAT scores under the threshold."""
    rated = [i for i in items if i.csat is not None]
    if not rated:
        return
    latest = rated[-settings.low_satisfaction_window :]
    s.satisfaction_mean = round(sum(i.csat or 0 for i in latest) / len(latest), 2)
    if s.satisfaction_mean < settings.low_satisfaction_csat:
        s.low_satisfaction = True
        s.reasons.append(
            Reason(
                "low_satisfaction",
                f"mean CSAT {s.satisfaction_mean:.1f} over the last {len(latest)}",
                [i.feedback_id for i in latest],
                f"최근 {len(latest)}건 평균 CSAT {s.satisfaction_mean:.1f}점",
            )
        )


def _churn_risk(
    s: Signals,
    items: list[FeedbackItem],
    visits: Sequence[VisitFacts],
    settings: Settings,
    now: float,
    current_id: str | None,
    upcoming: list[float],
) -> None:
    """Said they would come back (not in the feedback being handled) and have not, in time."""
    intents = [i for i in items if i.revisit_intent and i.feedback_id != current_id]
    if not intents:
        return
    said = intents[-1]
    if any(v.visited_at > said.occurred_at for v in visits):
        return
    s.pending_intent_at = said.occurred_at
    due = said.occurred_at + settings.churn_window_days * DAY
    if now < due:
        upcoming.append(due)
        return
    s.churn_risk = True
    s.reasons.append(
        Reason(
            "churn_risk",
            f"said they would return, no visit in {settings.churn_window_days} days",
            [said.feedback_id],
            f"재방문하겠다고 했으나 {settings.churn_window_days}일 동안 방문 없음",
        )
    )


def is_vip(customer: CustomerFacts, *, settings: Settings) -> bool:
    """A VIP tier, or a lifetime value at the VIP threshold (the CRM attributes, read live)."""
    return customer.tier in settings.vip_tiers or customer.lifetime_value >= settings.vip_lifetime_value


def vip_reason(customer: CustomerFacts) -> Reason:
    """Why a customer is a VIP."""
    tier = TIER_LABELS.get(customer.tier, {"en": customer.tier, "ko": customer.tier})
    return Reason(
        "vip",
        f"{tier['en']} tier, lifetime value {customer.lifetime_value:,.0f}",
        [],
        f"{tier['ko']} 등급, 누적 구매 {customer.lifetime_value:,.0f}",
    )


#: The CRM tiers (`schemas.Tier`) as a reason reads them; another tier shows as it is stored.
TIER_LABELS: dict[str, dict[str, str]] = {
    "basic": {"en": "Basic", "ko": "일반"},
    "silver": {"en": "Silver", "ko": "실버"},
    "gold": {"en": "Gold", "ko": "골드"},
    "vip": {"en": "VIP", "ko": "VIP"},
}


def chronic_reason(*, rank: int, complaint_count: int, settings: Settings, feedback_ids: list[str]) -> Reason:
    """Why a customer is a chronic complainer."""
    return Reason(
        "chronic_complainer",
        f"rank {rank}: {complaint_count} complaints in {settings.chronic_window_days} days",
        feedback_ids,
        f"불만 순위 {rank}위: {settings.chronic_window_days}일 동안 {complaint_count}건",
    )


_RANK = Prepared(
    select(func.count())
    .select_from(signals_table)
    .where(signals_table.c.complaint_count_90d > bindparam("count"))
)


def chronic_rank(reader: Reader, *, complaint_count: int, settings: Settings) -> int:
    """1 + the customers with strictly more complaints in the window; 0 below the minimum."""
    if complaint_count < settings.chronic_min_count:
        return 0
    return 1 + int(reader.scalar(_RANK, {"count": complaint_count}) or 0)


def apply_chronic(signals: Signals, *, rank: int, settings: Settings, feedback_ids: list[str]) -> None:
    """Set the chronic rank, and the signal with its reason when the rank is in the top N."""
    signals.chronic_rank = rank
    if rank and rank <= settings.chronic_top_n:
        signals.chronic_complainer = True
        signals.reasons.append(
            chronic_reason(
                rank=rank,
                complaint_count=signals.complaint_count_90d,
                settings=settings,
                feedback_ids=feedback_ids,
            )
        )


def window_complaints(items: list[FeedbackItem], *, settings: Settings, now: float) -> list[str]:
    """The complaints the chronic count is made of."""
    since = now - settings.chronic_window_days * DAY
    return [i.feedback_id for i in items if i.complaint and i.occurred_at >= since]


# ---------------------------------------------------------------------------------------------
# Reading the history

_HISTORY = Prepared(
    select(*(history_table.c[name] for name in summary.FIELDS))
    .where(
        history_table.c.customer_id == bindparam("customer_id"),
        history_table.c.occurred_at >= bindparam("window_start"),
    )
    .order_by(history_table.c.occurred_at)
)
_LAST_VISITS = Prepared(
    select(visits_table.c.store_id, visits_table.c.visited_at, visits_table.c.amount)
    .where(visits_table.c.customer_id == bindparam("customer_id"))
    .order_by(visits_table.c.visited_at.desc())
    .limit(5)
)


def history(reader: Reader, *, customer_id: str, now: float) -> list[FeedbackItem]:
    """The customer's feedback items of the last 365 days, in time order."""
    rows = reader.all(_HISTORY, {"customer_id": customer_id, "window_start": now - summary.HISTORY_SECONDS})
    make = FeedbackItem._make
    return [make(row) for row in rows]


def last_visits(reader: Reader, *, customer_id: str) -> list[Any]:
    """The customer's last 5 visits, newest first (rows with store_id, visited_at, amount)."""
    return reader.all(_LAST_VISITS, {"customer_id": customer_id})


# ---------------------------------------------------------------------------------------------
# Storing

# Stored signal columns with an index: an UPDATE that sets one rewrites its index entry even to
# the same value, so only those that changed are set.
_INDEXED_SIGNALS = (
    "repeat_issue",
    "score_swing",
    "complaint_count_90d",
    "low_satisfaction",
    "churn_risk",
    "refresh_at",
)
# The stored signals of one customer, for an update. PostgreSQL: the customer row is locked first
# (concurrent events of one customer update its summary one after the other), then the state is
# read by a statement of its own, which sees what the previous holder of the lock committed.
_SIGNAL_STATE = Prepared(
    select(
        customers_table.c.erased_at,
        customers_table.c.merged_into,
        signals_table.c.customer_id.label("signals_row"),
        signals_table.c.summary,
        *(signals_table.c[name] for name in _INDEXED_SIGNALS),
        # Any history besides the item just added (a first feedback needs no history read).
        exists()
        .where(
            history_table.c.customer_id == customers_table.c.id,
            history_table.c.feedback_id != bindparam("added_id"),
            history_table.c.occurred_at >= bindparam("window_start"),
        )
        .label("other_history"),
    )
    .select_from(
        customers_table.outerjoin(signals_table, signals_table.c.customer_id == customers_table.c.id)
    )
    .where(customers_table.c.id == bindparam("customer_id"))
)
_LOCK_CUSTOMER = Prepared(
    select(customers_table.c.id)
    .where(customers_table.c.id == bindparam("customer_id"))
    # FOR NO KEY UPDATE: the history insert before it holds the customer row FOR KEY SHARE
    # (foreign key), which FOR UPDATE would wait on; two such events would deadlock.
    .with_for_update(key_share=True)
)
_UPDATE_SIGNALS = Prepared(
    update(signals_table).where(signals_table.c.customer_id == bindparam("b_customer_id"))
)
_INSERT_SIGNALS = Prepared(insert(signals_table))
_DELETE_SIGNALS = Prepared(
    delete(signals_table).where(signals_table.c.customer_id == bindparam("customer_id"))
)
_INSERT_FEEDBACK = Prepared(lambda dialect: insert_ignore(dialect, history_table))
_DUE = Prepared(
    select(signals_table.c.customer_id)
    .where(signals_table.c.refresh_at.is_not(None), signals_table.c.refresh_at <= bindparam("now"))
    .limit(500)
)


def record_feedback(
    reader: Reader,
    *,
    customer_id: str,
    item: FeedbackItem,
    severity: str,
    settings: Settings,
    now: float,
    excerpt: str | None = None,
) -> bool:
    """Add one feedback item (with its masked `excerpt`) to the customer's history and update
    their stored signals.

    The signals follow from the customer's summary plus this item: no history read, however
    long the history. False (and nothing written) when the item is already on file.
    """
    values = {**item._asdict(), "customer_id": customer_id, "severity": severity, "excerpt": excerpt}
    if not reader.execute(_INSERT_FEEDBACK, values):
        return False
    _store(reader, customer_id, settings=settings, now=now, added=item)
    return True


def refresh(
    reader: Reader, *, customer_id: str, settings: Settings, now: float | None = None
) -> Signals | None:
    """Recompute one customer's stored signals and summary from the history (the lists read
    these rows); None (and the row removed) for an erased or merged customer."""
    return _store(reader, customer_id, settings=settings, now=now or time.time(), added=None)


def _refresh_all(reader: Reader, customer_ids: list[str], settings: Settings, now: float) -> None:
    # In id order: replicas refreshing overlapping sets lock customers in the same order.
    for customer_id in sorted(customer_ids):
        _store(reader, customer_id, settings=settings, now=now, added=None)


async def refresh_due(database: Database, *, settings: Settings, now: float | None = None) -> int:
    """Recompute the stored signals whose windows have moved (complaints aged out, revisits due)."""
    refreshed = 0
    now = now or time.time()
    while True:
        due = [row.customer_id for row in await dbsync.read(database, _due, now=now)]
        if not due:
            return refreshed
        await dbsync.write(database, _refresh_all, due, settings, now)
        refreshed += len(due)


def _due(reader: Reader, *, now: float) -> list[Any]:
    return reader.all(_DUE, {"now": now})


def _store(
    reader: Reader, customer_id: str, *, settings: Settings, now: float, added: FeedbackItem | None
) -> Signals | None:
    """Write the customer's stored signals: from the summary plus `added` (an item just put in
    the history) when the summary is usable, else rebuilt from the history."""
    params = {"customer_id": customer_id}
    if reader.dialect.name == "postgresql" and reader.first(_LOCK_CUSTOMER, params) is None:
        return None  # no such customer (nothing to lock)
    stored = reader.first(
        _SIGNAL_STATE,
        {
            **params,
            "added_id": added.feedback_id if added else "",
            "window_start": now - summary.HISTORY_SECONDS,
        },
    )
    if stored is None or stored.erased_at is not None or stored.merged_into is not None:
        reader.execute(_DELETE_SIGNALS, params)
        return None
    kept = _kept_summary(reader, customer_id, stored, settings=settings, now=now, added=added)
    items = summary.items(kept)
    # Visits matter only to a stated revisit intent (churn risk).
    visits = last_visits(reader, customer_id=customer_id) if any(i.revisit_intent for i in items) else []
    s = compute_signals(items, customer=None, visits=visits, settings=settings, now=now, current_id=None)
    expiry = summary.expires_at(kept)
    refresh_at = min((t for t in (s.refresh_at, expiry) if t is not None), default=None)
    values = {
        "repeat_issue": s.repeat_issue,
        "score_swing": s.score_swing,
        "complaint_count_90d": s.complaint_count_90d,
        "low_satisfaction": s.low_satisfaction,
        "churn_risk": s.churn_risk,
        "satisfaction_mean": s.satisfaction_mean,
        "pending_intent_at": s.pending_intent_at,
        "reasons": s.reasons,  # never `vip`: that one follows the CRM attributes, read live
        "refresh_at": refresh_at,
        "updated_at": now,
        "summary": kept,
    }
    if stored.signals_row is not None:
        for name in _INDEXED_SIGNALS:
            if values[name] == getattr(stored, name):
                del values[name]
        reader.execute(_UPDATE_SIGNALS, {**values, "b_customer_id": customer_id})
    else:
        reader.execute(_INSERT_SIGNALS, {**values, "customer_id": customer_id})
    return s


def _kept_summary(
    reader: Reader,
    customer_id: str,
    stored: Any,
    *,
    settings: Settings,
    now: float,
    added: FeedbackItem | None,
) -> summary.Summary:
    """The summary to store: the stored one plus `added` when it is usable, else built anew."""
    current: summary.Summary | None = stored.summary if stored.signals_row is not None else None
    shape = summary.Shape.of(settings)
    if added is not None and current is not None and summary.usable(current, shape=shape, now=now):
        return summary.add(current, added, shape=shape, now=now)
    if added is not None and stored.signals_row is None and not stored.other_history:
        return summary.build([added], shape=shape, now=now)  # the customer's first feedback
    return summary.build(history(reader, customer_id=customer_id, now=now), shape=shape, now=now)
