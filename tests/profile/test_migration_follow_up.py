"""Profile migration 0011 adds feedback_history.reopens_id (a follow-up answer's reopened case),
keeping the rows on file (NULL: not a follow-up answer); it matches the models exactly and
downgrades back."""

from __future__ import annotations

from sqlalchemy import text

import voc_profile.models
from tests.conftest import DatabaseFactory
from tests.profile.test_migration_corrected import PROFILE, columns
from tests.support.schema import drift
from voc_platform import migrations
from voc_platform.db import Database


async def test_profile_0011(databases: DatabaseFactory) -> None:
    database = Database(databases.url("profile_follow_up"))
    try:
        await migrations.upgrade(database, PROFILE, name="profile", revision="0010")
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO customers (id, tier, lifetime_value, contact_consent, attributes, "
                    "created_at, updated_at) VALUES ('c1', 'basic', 0, false, '{}', 0, 0)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO feedback_history (feedback_id, customer_id, store_id, channel, category, "
                    "sentiment, severity, occurred_at) VALUES ('f1', 'c1', 's1', 'kiosk', 'food_safety', "
                    "'negative', 'high', 0)"
                )
            )
        await migrations.upgrade(database, PROFILE, name="profile")
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, voc_profile.models.Base.metadata) == []
            kept = (await conn.execute(text("SELECT category, reopens_id FROM feedback_history"))).one()
            assert kept.category == "food_safety" and kept.reopens_id is None
        await migrations.downgrade(database, PROFILE, name="profile", revision="0010")
        async with database.engine.begin() as conn:
            assert "reopens_id" not in await conn.run_sync(columns, "feedback_history")
            assert (
                await conn.execute(text("SELECT category FROM feedback_history"))
            ).scalar_one() == "food_safety"
    finally:
        await database.dispose()
