"""Store reports: stated revisit intent against actual revisits."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import case, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from voc_profile.models import FeedbackHistory, Visit
from voc_profile.settings import Settings

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class StoreRevisit:
    store_id: str
    stated_intent: int
    returned: int
    returned_any_store: int
    revisit_rate: float | None
    window_days: int


async def revisit_report(
    session: AsyncSession,
    *,
    settings: Settings,
    lookback_days: int,
    now: float | None = None,
    stores: tuple[str, ...] | None = None,
) -> list[StoreRevisit]:
    """Per store: how many said they would come back, and how many did within the window.

    Only statements older than the window count (each had its full chance to come true);
    `stores` limits the report to those stores (None: every store).
    """
    now = now or time.time()
    window = settings.churn_window_days * DAY
    h = FeedbackHistory
    came_back = (Visit.customer_id == h.customer_id, Visit.visited_at > h.occurred_at)
    in_window = Visit.visited_at <= h.occurred_at + window
    same_store = exists().where(*came_back, Visit.store_id == h.store_id, in_window)
    any_store = exists().where(*came_back, in_window)
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
                h.store_id.in_(stores) if stores is not None else true(),
            )
            .group_by(h.store_id)
            .order_by(h.store_id)
        )
    ).all()
    return [
        StoreRevisit(
            store_id=store_id,
            stated_intent=int(stated),
            returned=int(returned or 0),
            returned_any_store=int(returned_any or 0),
            revisit_rate=round(int(returned or 0) / stated, 3) if stated else None,
            window_days=settings.churn_window_days,
        )
        for store_id, stated, returned, returned_any in rows
    ]
