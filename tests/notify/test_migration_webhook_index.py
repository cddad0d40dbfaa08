"""Notify migration 0017 (#19): the webhook deliveries' index by endpoint, status and due time.
On PostgreSQL it is built CONCURRENTLY: while the build waits for a transaction that was already
writing, another replica's enqueue goes through (a plain CREATE INDEX queues every write behind
it for as long as it waits and builds). A build that failed half way (an invalid index
of its name) is built again. On both databases: the rows stay, the schema matches the models, and
the way back restores the old index."""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from tests.conftest import DATABASE, DatabaseFactory
from tests.notify.conftest import MIGRATIONS
from tests.support.schema import drift
from voc_notify.models import Base
from voc_platform import migrations
from voc_platform.db import Database

NEW = "ix_webhook_deliveries_endpoint_due"
OLD = "ix_webhook_deliveries_endpoint_id"
ENDPOINT = (
    "INSERT INTO webhook_endpoints (id, url, events, description, format, secret, status, created_at) "
    "VALUES ('ep-1', 'https://hooks.example/1', '[\"*\"]', '', 'standard', 'x', 'active', :now)"
)
DELIVERY = (
    "INSERT INTO webhook_deliveries (id, endpoint_id, event_type, body, status, attempts, "
    "next_attempt_at, created_at) VALUES (:id, 'ep-1', 'alert.created', '{}', 'pending', 0, :now, :now)"
)
UNIQUE_BUILD = f"CREATE UNIQUE INDEX CONCURRENTLY {NEW} ON webhook_deliveries (endpoint_id, next_attempt_at)"
INVALID = (
    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE c.relname = :name AND NOT i.indisvalid"
)


def index_names(connection: Connection) -> set[str]:
    return {i["name"] for i in inspect(connection).get_indexes("webhook_deliveries") if i["name"]}


async def index_build_waiting(database: Database) -> bool:
    """The migration's index change (dropping the invalid one, or building) waits for a lock
    (writer A's transaction)."""
    async with database.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT 1 FROM pg_stat_activity WHERE query ~* '^\\s*(CREATE|DROP)( UNIQUE)? INDEX' "
                "AND wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return found.first() is not None


async def upgrade_beside_an_open_writer(database: Database) -> None:
    """The upgrade starts while writer A's transaction is open (its build waits for A); writer B
    enqueues meanwhile with a 3 s lock timeout, and must not be held off."""
    upgrading: asyncio.Task[None] | None = None
    try:
        async with database.engine.connect() as writer_a:
            await writer_a.execute(text(DELIVERY), {"id": "d-a", "now": time.time()})  # left open
            upgrading = asyncio.create_task(migrations.upgrade(database, MIGRATIONS, name="notify"))
            deadline = time.monotonic() + 20
            while not await index_build_waiting(database):
                assert not upgrading.done(), upgrading.exception()
                assert time.monotonic() < deadline, "the index build never waited for writer A"
                await asyncio.sleep(0.05)
            async with database.engine.connect() as writer_b:
                await writer_b.execute(text("SET LOCAL lock_timeout = '3s'"))
                await writer_b.execute(text(DELIVERY), {"id": "d-b", "now": time.time()})
                await writer_b.commit()
            assert not upgrading.done()  # the build still waits for A, and held off nobody
            await writer_a.commit()
        await asyncio.wait_for(upgrading, 30)
    finally:
        if upgrading is not None and not upgrading.done():
            upgrading.cancel()
            with contextlib.suppress(BaseException):
                await upgrading


async def leave_an_invalid_index(database: Database) -> None:
    """What a build that failed half way leaves: an index of 0017's name marked invalid (here a
    unique one over two equal rows, which fails after the catalog entry is made)."""
    async with database.engine.begin() as conn:
        await conn.execute(text(DELIVERY), {"id": "d-same", "now": 1.0})
        await conn.execute(text(DELIVERY), {"id": "d-same-2", "now": 1.0})
    async with database.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            await autocommit.execute(text(UNIQUE_BUILD))
        except DBAPIError as exc:
            assert "could not create unique index" in str(exc)
        else:
            raise AssertionError("the unique index was built over equal rows")
        invalid = await autocommit.execute(text(INVALID), {"name": NEW})
        assert invalid.first() is not None


async def test_0017_keeps_the_rows_holds_off_no_enqueue_matches_the_models_and_downgrades(
    databases: DatabaseFactory,
) -> None:
    database = Database(databases.url("notify_0017"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0016")
        async with database.engine.begin() as conn:
            await conn.execute(text(ENDPOINT), {"now": time.time()})
            await conn.execute(text(DELIVERY), {"id": "d-0", "now": time.time()})
        if DATABASE == "postgres":
            await leave_an_invalid_index(database)
            await upgrade_beside_an_open_writer(database)
        else:  # one writer at a time: the migration's transaction is the only one
            await migrations.upgrade(database, MIGRATIONS, name="notify")
        async with database.engine.begin() as conn:
            names = await conn.run_sync(index_names)
            assert NEW in names and OLD not in names
            assert await conn.run_sync(drift, Base.metadata) == []
            ids = set((await conn.execute(text("SELECT id FROM webhook_deliveries"))).scalars())
            expected = {"d-0", "d-a", "d-b", "d-same", "d-same-2"} if DATABASE == "postgres" else {"d-0"}
            assert ids == expected
            if DATABASE == "postgres":
                invalid = await conn.execute(text("SELECT 1 FROM pg_index WHERE NOT indisvalid"))
                assert invalid.first() is None
        await migrations.downgrade(database, MIGRATIONS, name="notify", revision="0016")
        async with database.engine.begin() as conn:
            names = await conn.run_sync(index_names)
            assert OLD in names and NEW not in names
        await migrations.upgrade(database, MIGRATIONS, name="notify")
        async with database.engine.begin() as conn:
            assert await conn.run_sync(drift, Base.metadata) == []
    finally:
        await database.dispose()
