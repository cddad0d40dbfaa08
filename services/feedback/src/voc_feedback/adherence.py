"""Plan adherence (#18): how many of a plan's steps staff ticked done before resolving its alert,
per store and per playbook, from the `voc.alert.resolved` events notify publishes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_feedback.listing import FeedbackFilter
from voc_feedback.models import PlanAdherence, Store
from voc_feedback.stores import store_names


async def record(session: AsyncSession, resolved: events_pb2.AlertResolved) -> None:
    """One row per alert (the event comes once per feedback item the alert answers): the first
    one counts. Events from before #18 carry no plan size and are skipped."""
    if not resolved.alert_id or not resolved.steps_total:
        return
    dialect = (await session.connection()).dialect.name
    builder: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        builder(PlanAdherence)
        .values(
            alert_id=resolved.alert_id,
            kind=resolved.kind or "feedback",
            store_id=resolved.store_id,
            playbook_id=resolved.playbook_id[:80],
            steps_done=min(resolved.steps_done, resolved.steps_total),
            steps_total=resolved.steps_total,
            resolved_at=resolved.resolved_at_ms / 1000,
        )
        .on_conflict_do_nothing(index_elements=["alert_id"])
    )


def _rate(done: int, total: int) -> float | None:
    return round(done / total, 4) if total else None


def _group(rows: list[PlanAdherence], key: str) -> dict[str, list[PlanAdherence]]:
    groups: dict[str, list[PlanAdherence]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, key)].append(row)
    return groups


def _line(rows: list[PlanAdherence]) -> dict[str, Any]:
    done, total = sum(r.steps_done for r in rows), sum(r.steps_total for r in rows)
    return {
        "alerts": len(rows),
        "steps_done": done,
        "steps_total": total,
        "rate": _rate(done, total),
        "fully_followed": sum(1 for r in rows if r.steps_done >= r.steps_total),
    }


async def summary(session: AsyncSession, *, where: FeedbackFilter) -> dict[str, Any]:
    """Adherence of the alerts resolved in the period and place (the analytics' filter): overall,
    per store and per playbook (busiest first)."""
    query = select(PlanAdherence)
    if where.scope_store_ids is not None:
        query = query.where(PlanAdherence.store_id.in_(where.scope_store_ids))
    if where.store_id:
        query = query.where(PlanAdherence.store_id == where.store_id)
    if where.area_id:
        query = query.where(
            PlanAdherence.store_id.in_(select(Store.id).where(Store.area_id == where.area_id))
        )
    if where.since is not None:
        query = query.where(PlanAdherence.resolved_at >= where.since)
    if where.until is not None:
        query = query.where(PlanAdherence.resolved_at < where.until)
    rows = list(await session.scalars(query))
    names = await store_names(session)
    stores = _group(rows, "store_id")
    playbooks = _group(rows, "playbook_id")
    return {
        **_line(rows),
        "by_store": [
            {"store_id": sid, "store_name": names.get(sid, sid), **_line(items)}
            for sid, items in sorted(stores.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        "by_playbook": [
            {"playbook_id": pid, "kind": items[0].kind, **_line(items)}
            for pid, items in sorted(playbooks.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
    }
