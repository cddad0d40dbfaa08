"""Notify migration 0021: `follow_up_messages.undelivered_channel` (the channel a bounce said a
follow-up never arrived by). The rows before it stay, with no such channel; the schema matches
the models; the way back drops the column and keeps the rows."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.conftest import DatabaseFactory
from tests.notify.conftest import MIGRATIONS
from tests.support.schema import drift
from voc_notify.models import Base
from voc_platform import migrations
from voc_platform.db import Database

MESSAGE = (
    "INSERT INTO follow_up_messages (feedback_id, store_id, url, language, status, attempts, "
    "next_attempt_at, expires_at, created_at, again) "
    "VALUES ('f-1', 's1', 'https://x/f/1', 'ko', 'sent', 1, 0, 0, 0, false)"
)


async def test_undelivered_channel_is_added_and_removed_with_the_rows_kept(
    databases: DatabaseFactory,
) -> None:
    database = Database(databases.url("notify_0021"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0020")
        async with database.engine.begin() as conn:
            await conn.execute(text(MESSAGE))
        await migrations.upgrade(database, MIGRATIONS, name="notify")
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, Base.metadata) == []
            row = (
                await conn.execute(text("SELECT status, undelivered_channel FROM follow_up_messages"))
            ).one()
            assert tuple(row) == ("sent", None)
        await migrations.downgrade(database, MIGRATIONS, name="notify", revision="0020")
        async with database.engine.begin() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("follow_up_messages")}
            )
            assert "undelivered_channel" not in columns
            assert (await conn.execute(text("SELECT count(*) FROM follow_up_messages"))).scalar_one() == 1
    finally:
        await database.dispose()
