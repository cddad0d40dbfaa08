"""Profile migration 0012 lets `customers.contact_consent` be NULL (never stated), keeping the
agreed and opted-out rows (and the history that references them: SQLite rebuilds the table) as
they were; it matches the models exactly and downgrades back (a NULL becomes false: not
agreed)."""

from __future__ import annotations

from sqlalchemy import text

import voc_profile.models
from tests.conftest import DatabaseFactory
from tests.profile.test_migration_corrected import PROFILE
from tests.support.schema import drift
from voc_platform import migrations
from voc_platform.db import Database

INSERT = (
    "INSERT INTO customers (id, tier, lifetime_value, contact_consent, attributes, created_at, "
    "updated_at) VALUES (:id, 'basic', 0, :consent, '{}', 0, 0)"
)


async def test_profile_0012(databases: DatabaseFactory) -> None:
    database = Database(databases.url("profile_consent"))
    try:
        await migrations.upgrade(database, PROFILE, name="profile", revision="0011")
        async with database.engine.begin() as conn:
            await conn.execute(
                text(INSERT), [{"id": "agreed", "consent": True}, {"id": "out", "consent": False}]
            )
            await conn.execute(
                text(
                    "INSERT INTO feedback_history (feedback_id, customer_id, store_id, channel, category, "
                    "sentiment, severity, occurred_at) VALUES ('f1', 'out', 's1', 'kiosk', 'hygiene', "
                    "'negative', 'high', 0)"
                )
            )
        await migrations.upgrade(database, PROFILE, name="profile")
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, voc_profile.models.Base.metadata) == []
            # SQLite rebuilds `customers`; the history that references it is not cascade-deleted
            kept = await conn.execute(text("SELECT customer_id FROM feedback_history"))
            assert kept.scalar_one() == "out"
            await conn.execute(text(INSERT), {"id": "unsaid", "consent": None})
            rows = dict((await conn.execute(text("SELECT id, contact_consent FROM customers"))).all())
            assert {k: None if v is None else bool(v) for k, v in rows.items()} == {
                "agreed": True,
                "out": False,
                "unsaid": None,
            }
        await migrations.downgrade(database, PROFILE, name="profile", revision="0011")
        async with database.engine.begin() as conn:
            rows = dict((await conn.execute(text("SELECT id, contact_consent FROM customers"))).all())
            assert {k: bool(v) for k, v in rows.items()} == {"agreed": True, "out": False, "unsaid": False}
            refused = False
            try:
                async with conn.begin_nested():
                    await conn.execute(text(INSERT), {"id": "again", "consent": None})
            except Exception:  # the NOT NULL is back
                refused = True
            assert refused
    finally:
        await database.dispose()
