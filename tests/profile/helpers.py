"""Small builders shared by the profile tests."""

from __future__ import annotations

import time
from typing import Any

from voc_profile import service
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
) -> dict[str, Any]:
    return {
        "feedback_id": feedback_id,
        "store_id": store_id,
        "channel": "kiosk",
        "category": category,
        "sentiment": sentiment,
        "severity": "medium",
        "csat": csat,
        "nps": nps,
        "revisit_intent": revisit_intent,
        "occurred_at": (now or time.time()) - days_ago * DAY,
    }


async def customer_with(database: Any, settings: Settings, **identifiers: str) -> str:
    async with database.transaction() as session:
        res = await service.resolve(
            session, identifiers=normalize(region="KR", **identifiers), create_if_missing=True
        )
    assert res.customer_id is not None
    return res.customer_id


async def give_feedback(database: Any, settings: Settings, customer_id: str, *items: dict[str, Any]) -> None:
    async with database.transaction() as session:
        for item in items:
            await service.record_feedback(session, customer_id=customer_id, facts=item, settings=settings)
