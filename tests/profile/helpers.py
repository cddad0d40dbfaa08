"""Small builders shared by the profile tests."""

from __future__ import annotations

import time
from typing import Any

from voc_platform import dbsync
from voc_platform.dbsync import Reader
from voc_profile import resolution, signals
from voc_profile.facts import FeedbackItem
from voc_profile.identity import normalize
from voc_profile.settings import Settings

DAY = 86400.0


def facts(
    feedback_id: str,
    *,
    category: str = "food_quality",
    sentiment: str = "negative",
    csat: int | None = None,
    nps: int | None = None,
    days_ago: float = 0.0,
    revisit_intent: bool | None = None,
    store_id: str = "store-gangnam",
    now: float | None = None,
) -> FeedbackItem:
    return FeedbackItem(
        feedback_id=feedback_id,
        store_id=store_id,
        channel="kiosk",
        category=category,
        sentiment=sentiment,
        csat=csat,
        nps=nps,
        revisit_intent=revisit_intent,
        occurred_at=(now or time.time()) - days_ago * DAY,
    )


async def customer_with(database: Any, settings: Settings, **identifiers: str) -> str:
    async with database.transaction() as session:
        res = await resolution.resolve(
            session, identifiers=normalize(region="KR", **identifiers), create_if_missing=True
        )
    assert res.customer_id is not None
    return res.customer_id


async def give_feedback(database: Any, settings: Settings, customer_id: str, *items: FeedbackItem) -> None:
    """The items join the customer's history (and signals), in one transaction."""

    def record(reader: Reader) -> None:
        for item in items:
            signals.record_feedback(
                reader,
                customer_id=customer_id,
                item=item,
                severity="medium",
                settings=settings,
                now=time.time(),
            )

    await dbsync.write(database, record)
