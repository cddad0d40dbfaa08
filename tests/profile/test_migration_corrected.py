"""Migrations of the corrected labels (#18 with #17): profile 0010 adds feedback_history.corrected_at
and notify 0015 adds pattern_items.corrected_at, keeping the rows on file (NULL: never corrected);
each matches its models exactly and downgrades back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

import voc_notify.models
import voc_profile.models
from tests.conftest import DatabaseFactory
from tests.support.schema import drift
from voc_platform import migrations
from voc_platform.db import Database

PROFILE = Path(voc_profile.models.__file__).parent / "migrations"
NOTIFY = Path(voc_notify.models.__file__).parent / "migrations"


def columns(connection: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(table)}


async def check(
    databases: DatabaseFactory,
    *,
    name: str,
    location: Path,
    before: str,
    table: str,
    inserts: list[str],
    metadata: MetaData,
) -> None:
    database = Database(databases.url(f"{name}_corrected"))
    try:
        await migrations.upgrade(database, location, name=name, revision=before)
        async with database.engine.begin() as conn:
            for insert in inserts:
                await conn.execute(text(insert))
        await migrations.upgrade(database, location, name=name)
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, metadata) == []
            kept = (await conn.execute(text(f"SELECT category, corrected_at FROM {table}"))).one()
            assert kept.category == "wait_time" and kept.corrected_at is None
        await migrations.downgrade(database, location, name=name, revision=before)
        async with database.engine.begin() as conn:
            assert "corrected_at" not in await conn.run_sync(columns, table)
            assert (await conn.execute(text(f"SELECT category FROM {table}"))).scalar_one() == "wait_time"
    finally:
        await database.dispose()


async def test_profile_0010(databases: DatabaseFactory) -> None:
    await check(
        databases,
        name="profile",
        location=PROFILE,
        before="0007",
        table="feedback_history",
        inserts=[
            "INSERT INTO customers (id, tier, lifetime_value, contact_consent, attributes, created_at, "
            "updated_at) VALUES ('c1', 'basic', 0, false, '{}', 0, 0)",
            "INSERT INTO feedback_history (feedback_id, customer_id, store_id, channel, category, "
            "sentiment, severity, occurred_at) VALUES ('f1', 'c1', 's1', 'kiosk', 'wait_time', "
            "'negative', 'low', 0)",
        ],
        metadata=voc_profile.models.Base.metadata,
    )


async def test_notify_0015(databases: DatabaseFactory) -> None:
    await check(
        databases,
        name="notify",
        location=NOTIFY,
        before="0013",
        table="pattern_items",
        inserts=[
            "INSERT INTO pattern_items (feedback_id, store_id, category, customer_key, at, excerpt) "
            "VALUES ('f1', 's1', 'wait_time', 'k1', 0, '')"
        ],
        metadata=voc_notify.models.Base.metadata,
    )
