"""Migrations that rebuild a table on SQLite (Alembic batch mode: copy, DROP, rename) keep the
rows that reference it. Notify's 0010 rebuilt `alerts`; with foreign keys on, the DROP
cascade-deleted every alert's recipients, deliveries and timers (found 2026-12-07, when profile's
0012 emptied the customers' history the same way). The runner now turns foreign keys off around
migrations, as SQLite's procedure for schema changes says."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

import voc_notify.alerts
from tests.conftest import DatabaseFactory
from voc_platform import migrations
from voc_platform.db import Database

NOTIFY = Path(voc_notify.alerts.__file__).parent / "migrations"


async def test_notify_from_its_first_schema_to_head_keeps_each_alert_s_rows(
    databases: DatabaseFactory,
) -> None:
    database = Database(databases.url("notify_rebuild"))
    try:
        await migrations.upgrade(database, NOTIFY, name="notify", revision="0001")
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO alerts (id, feedback_id, store_id, category, priority, status, title, body, "
                    "feedback, context, plan, degraded, escalation_level, created_at) VALUES ('a1', 'f1', "
                    "'s1', 'hygiene', 'normal', 'open', 't', 'b', '{}', '{}', '{}', '[]', 0, 0)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO alert_recipients (alert_id, staff_id, level, added_at) "
                    "VALUES ('a1', 'lead', 0, 0)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO deliveries (id, alert_id, device_id, staff_id, level, status, attempts, "
                    "next_attempt_at, created_at) VALUES ('d1', 'a1', 'dev1', 'lead', 0, 'accepted', 1, 0, 0)"
                )
            )
        await migrations.upgrade(database, NOTIFY, name="notify")
        async with database.engine.begin() as conn:
            recipients = (await conn.execute(text("SELECT staff_id FROM alert_recipients"))).scalars().all()
            deliveries = (await conn.execute(text("SELECT id FROM deliveries"))).scalars().all()
        assert (recipients, deliveries) == (["lead"], ["d1"])
    finally:
        await database.dispose()
