"""Feedback migration 0007 (#17): from 0006 the upgrade adds `classification_corrections`,
matches the models exactly (no drift anywhere in feedback's schema), and downgrades back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

import voc_feedback
from tests.conftest import DatabaseFactory
from tests.support.schema import drift
from voc_feedback.models import Base
from voc_platform import migrations
from voc_platform.db import Database

MIGRATIONS = Path(voc_feedback.__file__).parent / "migrations"


async def test_0007_adds_the_corrections_matches_the_models_and_downgrades(
    databases: DatabaseFactory,
) -> None:
    database = Database(databases.url("feedback_0007"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="feedback", revision="0006")
        async with database.engine.begin() as conn:
            assert "classification_corrections" not in await conn.run_sync(
                lambda c: inspect(c).get_table_names()
            )
        await migrations.upgrade(database, MIGRATIONS, name="feedback")
        async with database.engine.begin() as conn:
            assert "classification_corrections" in await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert await conn.run_sync(drift, Base.metadata) == []
        await migrations.downgrade(database, MIGRATIONS, name="feedback", revision="0006")
        async with database.engine.begin() as conn:
            assert "classification_corrections" not in await conn.run_sync(
                lambda c: inspect(c).get_table_names()
            )
    finally:
        await database.dispose()
