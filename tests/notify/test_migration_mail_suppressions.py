"""Notify migration 0023: `mail_suppressions` and `follow_up_messages.recipient_key` (the HMAC of
the address a follow-up was mailed to). The messages before it stay, with no key; the schema
matches the models; the way back drops both and keeps the messages."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.conftest import DatabaseFactory
from tests.notify.conftest import MIGRATIONS
from tests.notify.test_migration_undelivered_channel import MESSAGE
from tests.support.schema import drift
from voc_notify.models import Base
from voc_platform import migrations
from voc_platform.db import Database


async def test_suppressions_are_added_and_removed_with_the_messages_kept(databases: DatabaseFactory) -> None:
    database = Database(databases.url("notify_0023"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0022")
        async with database.engine.begin() as conn:
            await conn.execute(text(MESSAGE))
        await migrations.upgrade(database, MIGRATIONS, name="notify")
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, Base.metadata) == []
            row = (await conn.execute(text("SELECT status, recipient_key FROM follow_up_messages"))).one()
            assert tuple(row) == ("sent", None)
            await conn.execute(
                text(
                    "INSERT INTO mail_suppressions (address_key, recipient, feedback_id, reason,"
                    " suppressed_at) VALUES (:key, 'g***@example.com', 'f-1', '5.1.1', 1)"
                ),
                {"key": "a" * 64},
            )
        await migrations.downgrade(database, MIGRATIONS, name="notify", revision="0022")
        async with database.engine.begin() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("follow_up_messages")}
            )
            assert "mail_suppressions" not in tables and "recipient_key" not in columns
            assert (await conn.execute(text("SELECT count(*) FROM follow_up_messages"))).scalar_one() == 1
    finally:
        await database.dispose()
