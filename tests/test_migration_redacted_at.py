"""Feedback migration 0011 and notify migration 0020: `redacted_at` and the retention index on
`feedback` and `alerts` (built CONCURRENTLY on PostgreSQL, so the intake and the alert writers
are not held off), and again after a build that failed half way. Rows before them stay,
counted as kept; the schemas match the models; the way back removes both."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import voc_feedback.models
import voc_notify.models
from tests.conftest import DatabaseFactory
from tests.support.schema import drift
from voc_feedback.__main__ import MIGRATIONS as FEEDBACK
from voc_notify.__main__ import MIGRATIONS as NOTIFY
from voc_platform import migrations
from voc_platform.db import Database

CASES = {
    "feedback": (
        FEEDBACK, "0010", "0011", voc_feedback.models.Base.metadata, "feedback", "ix_feedback_retention",
        "INSERT INTO feedback (id, store_id, channel, text, language, sentiment, score, category, "
        "severity, explanation, occurred_at, received_at, customer, status, api_key_id, escalated) "
        "VALUES ('f1', 's1', 'kiosk', 'cold soup', 'en', 'negative', -0.8, 'food_quality', 'medium', "
        "'[]', 0, 0, '{}', 'received', 'k1', false)",
    ),
    "notify": (
        NOTIFY, "0019", "0020", voc_notify.models.Base.metadata, "alerts", "ix_alerts_retention",
        "INSERT INTO alerts (id, store_id, category, priority, title, body, feedback, context, plan, "
        "degraded, status, escalation_level, created_at, kind, updates) VALUES ('a1', 's1', 'food_quality', "
        "'urgent', 't', 'b', '{}', '{}', '{}', '[]', 'open', 0, 0, 'feedback', 0)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("service", list(CASES))
async def test_redacted_at_and_the_retention_index(databases: DatabaseFactory, service: str) -> None:
    scripts, before, after, metadata, table, index, insert = CASES[service]
    assert isinstance(scripts, Path)
    database = Database(databases.url(f"{service}_redacted_at"))
    try:
        await migrations.upgrade(database, scripts, name=service, revision=before)
        async with database.engine.begin() as conn:
            await conn.execute(text(insert))
            # As a PostgreSQL build that failed half way leaves it: the column added, no index,
            # the revision not stamped. The next start builds the rest.
            await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN redacted_at FLOAT"))
        await migrations.upgrade(database, scripts, name=service)  # to head, through `after`
        async with database.engine.begin() as conn:
            applied = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert applied >= after
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, metadata) == []
            assert (await conn.execute(text(f"SELECT redacted_at FROM {table}"))).scalar_one() is None
        await migrations.downgrade(database, scripts, name=service, revision=before)
        async with database.engine.begin() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})
            indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes(table)})
            assert "redacted_at" not in columns and index not in indexes
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 1
    finally:
        await database.dispose()
