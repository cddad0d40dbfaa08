"""Analytics by store / area / period: volume, sentiment index, NPS, CSAT, category mix, loop
KPIs and top recurring issues. Computed from slim rows of the period in one pass (a period of a
chain's feedback is tens of thousands of rows; pre-aggregated tables are the next step at scale)."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from voc_feedback.cases import OPEN_CASE, is_fyi, is_open_case
from voc_feedback.listing import FeedbackFilter, apply_filter
from voc_feedback.models import ClassificationCorrection, Feedback, FollowUp, TimelineEntry
from voc_feedback.settings import Settings
from voc_feedback.stores import store_names
from voc_platform.masking import mask_text
from voc_platform.taxonomy import is_complaint


@dataclass(frozen=True, slots=True)
class Sla:
    """The loop SLA the KPIs measure against (the playbook's own SLA drives escalation)."""

    ack_seconds: float
    resolve_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> Sla:
        return cls(ack_seconds=settings.sla_ack_seconds, resolve_seconds=settings.sla_resolve_seconds)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def sentiment_index(sentiments: Iterable[str]) -> float | None:
    """(positive - negative) / all, as -100..100."""
    counts = Counter(sentiments)
    total = sum(counts.values())
    return round((counts["positive"] - counts["negative"]) / total * 100, 1) if total else None


def nps(scores: Iterable[int]) -> dict[str, Any]:
    values = list(scores)
    promoters = sum(1 for v in values if v >= 9)
    detractors = sum(1 for v in values if v <= 6)
    return {
        "score": round((promoters - detractors) / len(values) * 100, 1) if values else None,
        "responses": len(values),
        "promoters": promoters,
        "detractors": detractors,
    }


def csat(scores: Iterable[int]) -> dict[str, Any]:
    values = list(scores)
    return {
        "average": round(sum(values) / len(values), 2) if values else None,
        "satisfied_share": _ratio(sum(1 for v in values if v >= 4), len(values)),  # top-2-box
        "responses": len(values),
    }


class CaseTimes(Protocol):
    """What the loop's times read of a feedback item (a `Feedback` row, or a slim row of it)."""

    @property
    def priority(self) -> str | None: ...
    @property
    def received_at(self) -> float: ...
    @property
    def alerted_at(self) -> float | None: ...
    @property
    def acknowledged_at(self) -> float | None: ...
    @property
    def resolved_at(self) -> float | None: ...


def is_case(row: CaseTimes) -> bool:
    """An item the loop measures: alerted, and not FYI (`cases.is_fyi`: praise is no case)."""
    return row.alerted_at is not None and not is_fyi(row.priority)


def times_to_acknowledge(rows: Iterable[CaseTimes]) -> list[float]:
    """Seconds from receipt to acknowledgement of the cases acknowledged."""
    return [r.acknowledged_at - r.received_at for r in rows if is_case(r) and r.acknowledged_at is not None]


def times_to_resolve(rows: Iterable[CaseTimes]) -> list[float]:
    """Seconds from receipt to resolution of the cases resolved."""
    return [r.resolved_at - r.received_at for r in rows if is_case(r) and r.resolved_at is not None]


def answered_complaints(follow_ups: Iterable[tuple[FollowUp, str]]) -> list[FollowUp]:
    """The answered follow-ups of complaints (negative feedback): what the recovery rate is of."""
    return [f for f, sentiment in follow_ups if f.answered_at is not None and sentiment == "negative"]


def recovery_rate(follow_ups: Iterable[tuple[FollowUp, str]]) -> float | None:
    """Of the answered follow-ups of complaints, the share answered satisfied."""
    complaints = answered_complaints(follow_ups)
    return _ratio(sum(1 for f in complaints if f.satisfied), len(complaints))


def loop_kpis(
    rows: Sequence[Feedback],
    follow_ups: Sequence[tuple[FollowUp, str]],
    *,
    sla: Sla,
    now: float,
    messaged: frozenset[str] = frozenset(),
    undelivered: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The loop's KPIs; `messaged` is the items whose customers got the follow-up link by e-mail
    or SMS (notify's `follow_up_sent` on their timelines, #19), `undelivered` those of them a
    bounce or a gateway's report says the link never reached (no message sent after the report):
    the answer rate is of the others (`answer_rate`). FYI items (praise) are
    no cases: counted apart as `fyi`, outside `cases`, `open`, the times and the SLA."""
    cases = [r for r in rows if is_case(r)]
    to_ack = times_to_acknowledge(cases)
    to_resolve = times_to_resolve(cases)

    def breached(r: Feedback) -> bool:
        acked = r.acknowledged_at if r.acknowledged_at is not None else now
        resolved = r.resolved_at if r.resolved_at is not None else now
        return (
            r.escalated
            or acked - r.received_at > sla.ack_seconds
            or resolved - r.received_at > sla.resolve_seconds
        )

    answered = [(f, sentiment) for f, sentiment in follow_ups if f.answered_at is not None]
    # Said at intake or in the follow-up answer. An unhappy answer's is its reopening item's, a
    # row here already (`follow_ups.answer_follow_up` copies it), so only the others' are added.
    intents = [r.revisit_intent for r in rows if r.revisit_intent is not None]
    intents += [
        f.revisit_intent for f, _ in answered if f.revisit_intent is not None and not f.reopened_feedback_id
    ]
    return {
        "cases": len(cases),
        "open": sum(1 for r in rows if is_open_case(r.status, r.priority)),
        "fyi": sum(1 for r in rows if r.alerted_at is not None and is_fyi(r.priority)),
        "time_to_acknowledge_seconds": {
            "p50": percentile(to_ack, 50),
            "p90": percentile(to_ack, 90),
            "n": len(to_ack),
        },
        "time_to_resolve_seconds": {
            "p50": percentile(to_resolve, 50),
            "p90": percentile(to_resolve, 90),
            "n": len(to_resolve),
        },
        "sla": {"ack_seconds": sla.ack_seconds, "resolve_seconds": sla.resolve_seconds},
        "sla_breach_rate": _ratio(sum(1 for r in cases if breached(r)), len(cases)),
        "follow_ups_sent": len(follow_ups),
        "follow_ups_messaged": len(messaged),
        "follow_ups_undelivered": len(undelivered),
        "follow_ups_answered": len(answered),
        "follow_up_answer_rate": answer_rate(
            frozenset(f.feedback_id for f, _ in answered), messaged=messaged, undelivered=undelivered
        ),
        "recovery_rate": recovery_rate(answered),
        "recovery_answers": len(answered_complaints(answered)),  # how many answers the rate is of
        "reopened": sum(1 for f, _ in answered if f.reopened_feedback_id),
        "revisit_intent_rate": _ratio(sum(1 for v in intents if v), len(intents)),
    }


def answer_rate(
    answered: frozenset[str], *, messaged: frozenset[str], undelivered: frozenset[str]
) -> float | None:
    """The share of the follow-up messages that reached their customers which were answered (item
    ids). An answer proves its link arrived, whatever a report said; an answer to a link never
    messaged (shown at the counter, in the store's app) is no answer to a message. So it never
    passes 1, as answered / (messaged - undelivered) did."""
    reached = messaged - (undelivered - answered)
    return _ratio(len(answered & reached), len(reached))


def top_recurring_issues(
    rows: Sequence[Feedback], names: dict[str, str], limit: int = 10
) -> list[dict[str, Any]]:
    """Complaints of one category at one store that keep coming (two or more in the period). A
    follow-up answer that reopened a case is not another complaint (`taxonomy.is_complaint`)."""
    groups: dict[tuple[str, str], list[Feedback]] = defaultdict(list)
    for r in rows:
        if is_complaint(r.sentiment, r.reopens_id):
            groups[(r.store_id, r.category)].append(r)
    issues: list[dict[str, Any]] = []
    for (store_id, category), items in groups.items():
        if len(items) < 2:
            continue
        customers = Counter(r.customer_id for r in items if r.customer_id)
        issues.append(
            {
                "store_id": store_id,
                "store_name": names.get(store_id, store_id),
                "category": category,
                "count": len(items),
                "customers": len(customers),
                "repeat_customers": sum(1 for n in customers.values() if n > 1),
                "last_at": max(r.received_at for r in items),
            }
        )
    issues.sort(key=lambda i: (-int(i["count"]), -float(i["last_at"])))
    return issues[:limit]


async def analytics(
    session: AsyncSession, *, where: FeedbackFilter, sla: Sla, timezone: ZoneInfo, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows = list(await session.scalars(apply_filter(select(Feedback), where)))
    joined = select(FollowUp, Feedback.sentiment).join(Feedback, FollowUp.feedback_id == Feedback.id)
    follow_ups: list[tuple[FollowUp, str]] = [
        (f, sentiment) for f, sentiment in (await session.execute(apply_filter(joined, where))).tuples()
    ]
    steps = (
        select(TimelineEntry.feedback_id).distinct().join(Feedback, TimelineEntry.feedback_id == Feedback.id)
    )
    messaged = frozenset(
        await session.scalars(apply_filter(steps.where(TimelineEntry.kind == "follow_up_sent"), where))
    )
    # Not delivered, and not sent again after (a bounced e-mail followed by an SMS reached them).
    later = aliased(TimelineEntry)
    resent = (
        select(later.id)
        .where(
            later.feedback_id == TimelineEntry.feedback_id,
            later.kind == "follow_up_sent",
            later.at > TimelineEntry.at,
        )
        .exists()
    )
    undelivered = frozenset(
        await session.scalars(
            apply_filter(steps.where(TimelineEntry.kind == "follow_up_undelivered", ~resent), where)
        )
    )
    names = await store_names(session)

    trend: dict[str, list[Feedback]] = defaultdict(list)
    by_store: dict[str, list[Feedback]] = defaultdict(list)
    for r in rows:
        trend[datetime.fromtimestamp(r.received_at, timezone).date().isoformat()].append(r)
        by_store[r.store_id].append(r)
    return {
        "period": {"from": where.since, "to": where.until, "timezone": str(timezone)},
        "volume": len(rows),
        # Items whose classification is a guess the model is not sure of (#17): read the text.
        "uncertain": sum(1 for r in rows if r.uncertain),
        "sentiment": dict(Counter(r.sentiment for r in rows)),
        "sentiment_index": sentiment_index(r.sentiment for r in rows),
        "nps": nps(r.nps for r in rows if r.nps is not None),
        "csat": csat(r.csat for r in rows if r.csat is not None),
        "category_mix": dict(Counter(r.category for r in rows).most_common()),
        "channel_mix": dict(Counter(r.channel for r in rows).most_common()),
        "severity_mix": dict(Counter(r.severity for r in rows).most_common()),
        "trend": [
            {
                "date": day,
                "volume": len(items),
                "sentiment_index": sentiment_index(r.sentiment for r in items),
            }
            for day, items in sorted(trend.items())
        ],
        "by_store": [
            {
                "store_id": store_id,
                "store_name": names.get(store_id, store_id),
                "volume": len(items),
                "sentiment_index": sentiment_index(r.sentiment for r in items),
                "nps": nps(r.nps for r in items if r.nps is not None)["score"],
                "csat": csat(r.csat for r in items if r.csat is not None)["average"],
            }
            for store_id, items in sorted(by_store.items(), key=lambda kv: -len(kv[1]))
        ],
        "loop": loop_kpis(
            rows,
            follow_ups,
            sla=sla,
            now=now,
            messaged=messaged,
            undelivered=undelivered,
        ),
        "top_issues": top_recurring_issues(rows, names),
    }


async def open_cases(
    session: AsyncSession,
    *,
    where: FeedbackFilter,
    limit: int,
    now: float | None = None,
    personal: bool = True,
) -> list[dict[str, Any]]:
    """Cases still waiting for the frontline (`cases.OPEN_CASE`: not FYI items), oldest first,
    with their age and whether a person corrected their labels (#17); `personal` False: the
    phone numbers and e-mails in the texts masked (`Access.personal_data`)."""
    now = time.time() if now is None else now
    names = await store_names(session)
    query = apply_filter(select(Feedback), where).where(OPEN_CASE)
    rows = list(await session.scalars(query.order_by(Feedback.received_at).limit(limit)))
    corrected = (
        set(
            await session.scalars(
                select(ClassificationCorrection.feedback_id)
                .where(ClassificationCorrection.feedback_id.in_([r.id for r in rows]))
                .distinct()
            )
        )
        if rows
        else set()
    )
    return [
        {
            "id": r.id,
            "store_id": r.store_id,
            "store_name": names.get(r.store_id, r.store_id),
            "status": r.status,
            "category": r.category,
            "severity": r.severity,
            "sentiment": r.sentiment,
            "confidence": r.confidence,
            "uncertain": r.uncertain,
            "corrected": r.id in corrected,
            "text": (r.text or "")[:140] if personal else mask_text(r.text or "", limit=140),
            "received_at": r.received_at,
            "age_seconds": round(now - r.received_at, 1),
            "escalated": r.escalated,
            "reopens_id": r.reopens_id,
        }
        for r in rows
    ]
