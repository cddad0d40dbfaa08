"""SQLite runs its statements on the event loop (no driver thread), with the same transaction
semantics the services rely on: commit, rollback, savepoints and serialized writers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from voc_platform.db import Database, async_url

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


@pytest.fixture
async def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'onloop.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db


def test_sqlite_urls_use_the_on_loop_driver_unless_aiosqlite_is_asked_for() -> None:
    assert async_url("sqlite:///x.db") == "sqlite+voc_onloop:///x.db"
    assert async_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_statements_run_on_the_loop_thread_without_a_driver_thread(database: Database) -> None:
    before = {t.name for t in threading.enumerate()}
    seen: list[str] = []

    def record_thread(conn: object) -> None:
        seen.append(threading.current_thread().name)

    async with database.transaction() as session:
        await session.run_sync(lambda s: record_thread(s))
        await session.execute(items.insert().values(name="a"))
    assert seen == [threading.current_thread().name]
    assert {t.name for t in threading.enumerate()} == before
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(items)) == 1
    journal = await _pragma(database, "journal_mode")
    assert journal == "wal"
    await database.dispose()


async def test_rollback_and_savepoint_keep_only_what_committed(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await session.execute(items.insert().values(name="lost"))
            raise RuntimeError("handler failed")
    async with database.transaction() as session:
        await session.execute(items.insert().values(name="kept"))
        with pytest.raises(Exception, match="UNIQUE"):
            async with session.begin_nested():
                await session.execute(items.insert().values(name="kept"))
        await session.execute(items.insert().values(name="after"))
    async with database.session() as session:
        names = sorted(await session.scalars(select(items.c.name)))
    assert names == ["after", "kept"]
    await database.dispose()


async def test_concurrent_writers_are_serialized_and_none_is_lost(database: Database) -> None:
    async def write(i: int) -> None:
        async with database.transaction() as session:
            count = await session.scalar(select(func.count()).select_from(items))
            await asyncio.sleep(0)  # yield mid-transaction: another writer must wait for the lock
            await session.execute(items.insert().values(name=f"n{i}-{count}"))

    await asyncio.gather(*(write(i) for i in range(50)))
    async with database.session() as session:
        names = list(await session.scalars(select(items.c.name)))
    # Each writer saw every earlier commit: the counts it read are exactly 0..49.
    assert sorted(int(n.split("-")[1]) for n in names) == list(range(50))
    await database.dispose()


async def _pragma(database: Database, name: str) -> str:
    async with database.engine.connect() as conn:
        value = (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
    return str(value)


async def test_an_in_memory_database_still_opens() -> None:
    from sqlalchemy import text

    from voc_platform.db import Database

    database = Database("sqlite:///:memory:")
    try:
        async with database.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await database.dispose()
