"""Targets (#20 §5): per store and per area, for NPS, CSAT, time to acknowledge and to resolve
and recovery rate; a store's own target overrides its area's. The analytics answer each metric of
each place against its target, with a weekly trend, measured by the loop KPIs' own functions
(`voc_feedback.analytics`)."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback.analytics import (
    csat,
    nps,
    percentile,
    recovery_rate,
    times_to_acknowledge,
    times_to_resolve,
)
from voc_feedback.listing import FeedbackFilter, Scope, apply_filter
from voc_feedback.models import Feedback, FollowUp, Store, Target
from voc_feedback.schemas import TargetMetric
from voc_platform.errors import FieldError, Invalid, NotFound

PlaceKind = Literal["store", "area"]
Metric = TargetMetric
Direction = Literal["at_least", "at_most"]


@dataclass(frozen=True, slots=True)
class MetricRule:
    direction: Direction
    low: float
    high: float


#: Each metric: which way is better, and the values a target may take.
METRICS: dict[str, MetricRule] = {
    "nps": MetricRule("at_least", -100.0, 100.0),
    "csat": MetricRule("at_least", 1.0, 5.0),
    "ack_minutes": MetricRule("at_most", 0.1, 7 * 24 * 60.0),
    "resolve_minutes": MetricRule("at_most", 0.1, 30 * 24 * 60.0),
    "recovery_rate": MetricRule("at_least", 0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class Place:
    kind: PlaceKind
    id: str

    @property
    def field(self) -> str:
        return f"body.{self.kind}_id"


def target_out(t: Target) -> dict[str, Any]:
    return {
        f"{t.place_kind}_id": t.place_id,
        "metric": t.metric,
        "value": t.value,
        "direction": METRICS[t.metric].direction,
        "updated_by": t.updated_by,
        "updated_at": t.updated_at,
    }


async def check_place(session: AsyncSession, *, place: Place) -> None:
    """Invalid naming the field for a store the directory does not have, or an area none of its
    stores is in."""
    column = Store.id if place.kind == "store" else Store.area_id
    if await session.scalar(select(Store.id).where(column == place.id).limit(1)) is None:
        raise Invalid(
            f"No {place.kind} '{place.id}'.", errors=[FieldError(place.field, f"unknown {place.kind}")]
        )


def check_value(metric: str, value: float) -> None:
    rule = METRICS[metric]
    if not rule.low <= value <= rule.high:
        raise Invalid(
            f"A {metric} target is between {rule.low:g} and {rule.high:g}.",
            errors=[FieldError("body.value", f"{rule.low:g}..{rule.high:g}")],
        )


async def put_target(
    session: AsyncSession, *, place: Place, metric: str, value: float, actor: str, now: float | None = None
) -> Target:
    """Set (or replace) one target of a place."""
    check_value(metric, value)
    await check_place(session, place=place)
    now = time.time() if now is None else now
    row = await session.get(Target, (place.kind, place.id, metric))
    if row is None:
        row = Target(place_kind=place.kind, place_id=place.id, metric=metric)
        session.add(row)
    row.value, row.updated_by, row.updated_at = float(value), actor, now
    await session.flush()
    return row


async def delete_target(session: AsyncSession, *, place: Place, metric: str) -> None:
    """Remove one target of a place (NotFound when it has none)."""
    result = await session.execute(
        delete(Target).where(
            Target.place_kind == place.kind, Target.place_id == place.id, Target.metric == metric
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"No {metric} target for {place.kind} '{place.id}'.")


async def visible_targets(session: AsyncSession, *, scope: Scope) -> list[Target]:
    """The targets of the stores in scope and of their areas (a store manager reads the area
    target that applies to their store); every target for None."""
    query = select(Target).order_by(Target.place_kind, Target.place_id, Target.metric)
    if scope is not None:
        areas = select(Store.area_id).where(Store.id.in_(scope), Store.area_id.is_not(None))
        query = query.where(
            ((Target.place_kind == "store") & Target.place_id.in_(scope))
            | ((Target.place_kind == "area") & Target.place_id.in_(areas))
        )
    return list(await session.scalars(query))


# --- against the targets ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the metrics read of one feedback item (a slim row: a period of a chain's feedback is
    tens of thousands of items)."""

    store_id: str
    received_at: float
    alerted_at: float | None
    acknowledged_at: float | None
    resolved_at: float | None
    nps: int | None
    csat: int | None
    priority: str | None  # FYI items (praise) are no cases: not in the times (`analytics.is_case`)


_FACTS = (
    Feedback.store_id,
    Feedback.received_at,
    Feedback.alerted_at,
    Feedback.acknowledged_at,
    Feedback.resolved_at,
    Feedback.nps,
    Feedback.csat,
    Feedback.priority,
)


def measure(rows: Sequence[CaseFacts], follow_ups: Sequence[tuple[FollowUp, str]]) -> dict[str, Any]:
    """Each metric of a set of feedback items: NPS score, CSAT average, p50 minutes to
    acknowledge and to resolve, recovery rate (None without data), as the loop KPIs measure."""

    def p50_minutes(seconds: list[float]) -> float | None:
        p50 = percentile(seconds, 50)
        return None if p50 is None else round(p50 / 60, 1)

    return {
        "nps": nps(r.nps for r in rows if r.nps is not None)["score"],
        "csat": csat(r.csat for r in rows if r.csat is not None)["average"],
        "ack_minutes": p50_minutes(times_to_acknowledge(rows)),
        "resolve_minutes": p50_minutes(times_to_resolve(rows)),
        "recovery_rate": recovery_rate(follow_ups),
    }


def met(metric: str, value: float | None, target: float | None) -> bool | None:
    if value is None or target is None:
        return None
    return value >= target if METRICS[metric].direction == "at_least" else value <= target


MAX_WEEKS = 26  # the longest trend asked for (`weeks`, or a period `from`)


def _monday(at: float, timezone: ZoneInfo) -> datetime:
    day = datetime.fromtimestamp(at, timezone).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def week_starts(*, weeks: int, timezone: ZoneInfo, now: float) -> list[datetime]:
    """The Mondays (00:00 local) of the last `weeks` weeks, this one last."""
    monday = _monday(now, timezone)
    return [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def weeks_since(since: float, *, timezone: ZoneInfo, now: float) -> int:
    """How many weeks (Monday to Sunday, local) a period from `since` to now touches, this one
    included: the trend of a period the dashboard picked (30 days touch 5 or 6 weeks)."""
    return (_monday(now, timezone) - _monday(since, timezone)).days // 7 + 1


@dataclass(frozen=True, slots=True)
class PlaceStores:
    kind: PlaceKind
    id: str
    name: str
    area_id: str | None
    store_ids: tuple[str, ...]


async def places_of(
    session: AsyncSession, *, where: FeedbackFilter, area_readable: bool, extra_area: str | None = None
) -> list[PlaceStores]:
    """The stores the filter covers (from the directory, and scoped stores it lacks), then their
    areas when the reader sees whole areas (`area_readable`)."""
    query = select(Store).order_by(Store.id)
    if where.scope_store_ids is not None:
        query = query.where(Store.id.in_(where.scope_store_ids))
    if where.store_id:
        query = query.where(Store.id == where.store_id)
    if where.area_id:
        query = query.where(Store.area_id == where.area_id)
    stores = list(await session.scalars(query))
    known = {s.id for s in stores}
    places = [PlaceStores("store", s.id, s.name, s.area_id, (s.id,)) for s in stores]
    extra = [where.store_id] if where.store_id else list(where.scope_store_ids or ())
    places += [PlaceStores("store", i, i, None, (i,)) for i in extra if i not in known and not where.area_id]
    if area_readable and not where.store_id:
        members: dict[str, list[str]] = defaultdict(list)
        for s in stores:
            if s.area_id:
                members[s.area_id].append(s.id)
        places += [PlaceStores("area", a, a, a, tuple(ids)) for a, ids in sorted(members.items())]
    return places


def effective(targets: Sequence[Target], place: PlaceStores) -> dict[str, tuple[float, PlaceKind]]:
    """metric -> (target, where it comes from) for a place: a store's own, else its area's."""
    found: dict[str, tuple[float, PlaceKind]] = {}
    for t in targets:
        if t.place_kind == "area" and t.place_id == place.area_id:
            found.setdefault(t.metric, (t.value, "area"))
    if place.kind == "store":
        for t in targets:
            if t.place_kind == "store" and t.place_id == place.id:
                found[t.metric] = (t.value, "store")
    return found


async def against_targets(
    session: AsyncSession,
    *,
    where: FeedbackFilter,
    area_readable: bool,
    weeks: int,
    timezone: ZoneInfo,
    since: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Each place's metrics against its targets and the weekly trend: over the last `weeks`
    weeks, or, with `since`, over the period from then (the dashboard's period: its values are
    the board's own numbers) by the `weeks` it touches, the first one counted from `since`."""
    now = time.time() if now is None else now
    starts = week_starts(weeks=weeks, timezone=timezone, now=now)
    since = starts[0].timestamp() if since is None else since
    places = await places_of(session, where=where, area_readable=area_readable)
    every_store = sorted({s for p in places for s in p.store_ids})
    period = FeedbackFilter(scope_store_ids=tuple(every_store), since=since)
    rows = [CaseFacts(*row) for row in await session.execute(apply_filter(select(*_FACTS), period))]
    joined = select(FollowUp, Feedback.sentiment, Feedback.store_id, Feedback.received_at).join(
        Feedback, FollowUp.feedback_id == Feedback.id
    )
    follow_ups = list((await session.execute(apply_filter(joined, period))).all())
    targets = list(await session.scalars(select(Target)))
    bounds = [s.timestamp() for s in starts[1:]]

    def week_of(at: float) -> int:
        return bisect.bisect_right(bounds, at)

    # One pass over the rows: each store's items and answered follow-ups by week.
    by_store: dict[str, list[list[CaseFacts]]] = defaultdict(lambda: [[] for _ in range(weeks)])
    for r in rows:
        by_store[r.store_id][week_of(r.received_at)].append(r)
    answers: dict[str, list[list[tuple[FollowUp, str]]]] = defaultdict(lambda: [[] for _ in range(weeks)])
    for f, sentiment, store, at in follow_ups:
        answers[store][week_of(at)].append((f, sentiment))

    out = []
    for place in places:
        week_rows: list[list[CaseFacts]] = [[] for _ in range(weeks)]
        week_answers: list[list[tuple[FollowUp, str]]] = [[] for _ in range(weeks)]
        for store in place.store_ids:
            for i in range(weeks):
                week_rows[i] += by_store[store][i] if store in by_store else []
                week_answers[i] += answers[store][i] if store in answers else []
        whole = measure([r for week in week_rows for r in week], [a for week in week_answers for a in week])
        by_week = [measure(week_rows[i], week_answers[i]) for i in range(weeks)]
        goals = effective(targets, place)
        metrics = []
        for metric, rule in METRICS.items():
            target, source = goals.get(metric, (None, None))
            metrics.append(
                {
                    "metric": metric,
                    "direction": rule.direction,
                    "value": whole[metric],
                    "target": target,
                    "target_from": source,
                    "met": met(metric, whole[metric], target),
                    "trend": [w[metric] for w in by_week],
                }
            )
        out.append(
            {
                "kind": place.kind,
                "id": place.id,
                "name": place.name,
                "area_id": place.area_id,
                "volume": sum(len(week) for week in week_rows),
                "metrics": metrics,
            }
        )
    return {
        "weeks": [s.date().isoformat() for s in starts],
        "timezone": str(timezone),
        "from": since,
        "places": out,
    }
