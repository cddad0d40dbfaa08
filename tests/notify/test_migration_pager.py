"""Migration 0011 (#23): from 0006 with a device and a delivery on file, the upgrade adds the
session, install and fallback tables and the new columns (existing rows keep their values, the
new columns start empty), matches the models exactly, and downgrades back to 0006."""

from __future__ import annotations

import time

from sqlalchemy import inspect, text

from tests.conftest import DatabaseFactory
from tests.notify.conftest import MIGRATIONS
from tests.support.schema import drift
from voc_notify.models import Base
from voc_platform import migrations
from voc_platform.db import Database

NEW_TABLES = {"refresh_tokens", "app_installs", "fallback_pages"}


async def test_0011_upgrades_keeps_rows_matches_the_models_and_downgrades(databases: DatabaseFactory) -> None:
    database = Database(databases.url("notify_0011"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0006")
        now = time.time()
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO staff (id, name, email, password_hash, role, store_ids, language, active) "
                    "VALUES ('lead', 'Lead', 'lead@x.demo', 'x', 'shift_lead', '[\"s1\"]', 'ko', true)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO devices (id, staff_id, endpoint, endpoint_hash, p256dh, auth, created_at) "
                    "VALUES ('dev-1', 'lead', 'https://push.example/1', 'h1', 'k', 'a', :now)"
                ),
                {"now": now},
            )
        await migrations.upgrade(database, MIGRATIONS, name="notify")
        async with database.engine.begin() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            assert tables >= NEW_TABLES
            row = (
                await conn.execute(
                    text("SELECT endpoint, created_at, suspect_since, last_shown_at FROM devices")
                )
            ).one()
            assert row.endpoint == "https://push.example/1" and row.created_at == now
            assert row.suspect_since is None and row.last_shown_at is None
            assert await conn.run_sync(drift, Base.metadata) == []
        await migrations.downgrade(database, MIGRATIONS, name="notify", revision="0006")
        async with database.engine.begin() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            assert not NEW_TABLES & tables
            columns = {c["name"] for c in await conn.run_sync(lambda c: inspect(c).get_columns("devices"))}
            assert "suspect_since" not in columns and "endpoint" in columns
    finally:
        await database.dispose()
