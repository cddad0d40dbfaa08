"""Feedback migration 0010: from 0009 the upgrade adds `feedback.priority` (the plan priority of an
item's alert: info is FYI, no open case), fills it in from the "alerted" steps already on the
timelines (the highest when an item has several), matches the models exactly, and downgrades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, column, insert, inspect, select, table

import voc_feedback
from tests.conftest import DatabaseFactory
from tests.support.schema import drift
from voc_feedback.models import Base
from voc_platform import migrations
from voc_platform.db import Database

MIGRATIONS = Path(voc_feedback.__file__).parent / "migrations"
# The tables as 0009 left them (the models have moved on).
FEEDBACK = table(
    "feedback",
    *(column(name, String) for name in ("id", "store_id", "channel", "language", "sentiment", "category")),
    *(column(name, String) for name in ("severity", "status", "api_key_id")),
    column("score", Float),
    column("explanation", JSON),
    column("customer", JSON),
    column("occurred_at", Float),
    column("received_at", Float),
)
TIMELINE = table(
    "feedback_timeline",
    column("id", Integer),
    column("feedback_id", String),
    column("at", Float),
    column("kind", String),
    column("actor", String),
    column("detail", JSON),
)


def item(feedback_id: str) -> dict[str, Any]:
    return {
        "id": feedback_id, "store_id": "s1", "channel": "kiosk", "language": "en", "sentiment": "positive",
        "category": "praise", "severity": "low", "status": "alerted", "api_key_id": "k", "score": 0.8,
        "explanation": [], "customer": {}, "occurred_at": 1.0, "received_at": 1.0,
    }  # fmt: skip


def alerted(feedback_id: str, at: float, detail: dict[str, Any]) -> dict[str, Any]:
    return {"feedback_id": feedback_id, "at": at, "kind": "alerted", "actor": "notify", "detail": detail}


async def columns(database: Database) -> list[str]:
    async with database.engine.begin() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns("feedback"))
    return [c["name"] for c in found]


async def test_0010_fills_in_the_alerts_priorities_matches_the_models_and_downgrades(
    databases: DatabaseFactory,
) -> None:
    database = Database(databases.url("feedback_0010"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="feedback", revision="0009")
        assert "priority" not in await columns(database)
        async with database.engine.begin() as conn:
            await conn.execute(insert(FEEDBACK), [item(i) for i in ("praise", "merged", "unalerted", "odd")])
            await conn.execute(
                insert(TIMELINE),
                [
                    alerted("praise", 2.0, {"alert_id": "a1", "priority": "info"}),
                    # Merged into an alert whose priority then rose: the highest seen.
                    alerted("merged", 2.0, {"alert_id": "a2", "priority": "urgent"}),
                    alerted("merged", 3.0, {"alert_id": "a3", "priority": "normal"}),
                    alerted("odd", 2.0, {"alert_id": "a4", "priority": ""}),  # an event without one
                    {**alerted("unalerted", 2.0, {"priority": "info"}), "kind": "received"},
                ],
            )
        await migrations.upgrade(database, MIGRATIONS, name="feedback")
        async with database.engine.begin() as conn:
            priorities = dict(
                (
                    await conn.execute(
                        select(column("id"), column("priority")).select_from(table("feedback"))
                    )
                ).all()
            )
            assert await conn.run_sync(drift, Base.metadata) == []
        assert priorities == {"praise": "info", "merged": "urgent", "unalerted": None, "odd": None}
        await migrations.downgrade(database, MIGRATIONS, name="feedback", revision="0009")
        assert "priority" not in await columns(database)
    finally:
        await database.dispose()
