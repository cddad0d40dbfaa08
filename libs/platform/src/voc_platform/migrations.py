"""Alembic, run programmatically at service start (and by `voc migrate`).

Each service keeps its own migrations package; its env.py calls `run_env(metadata)`.
On PostgreSQL an advisory lock makes concurrent replicas migrate one at a time. It is the
session's lock, not a transaction's, and each migration runs in its own transaction: a migration
may then build an index `CONCURRENTLY` in an `autocommit_block` (which commits what came before)
while the lock still keeps the other replicas waiting.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from voc_platform.db import Database

log = logging.getLogger(__name__)

Step = Callable[[Config, str], None]  # alembic's command.upgrade or command.downgrade


def run_env(metadata: MetaData) -> None:
    """Body of a service's migrations/env.py: online mode on the connection we hand over."""
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection, script_location: str, lock_key: int, step: Step, revision: str) -> None:
    postgres = connection.dialect.name == "postgresql"
    sqlite = connection.dialect.name == "sqlite"
    try:
        if sqlite:
            # A batch migration rebuilds a table (copy, DROP, rename); with foreign keys on, the
            # DROP would cascade-delete every row that references it. SQLite's own procedure for
            # schema changes: keys off, outside any transaction (a no-op inside one), then checked.
            _sqlite_foreign_keys(connection, on=False)
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
            connection.commit()  # the session keeps the lock; the migrations begin their own transactions
        config = Config()
        config.set_main_option("script_location", script_location)
        config.attributes["connection"] = connection
        step(config, revision)
        connection.commit()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.commit()
            if broken:
                log.warning(
                    "after migrating, %d rows reference a missing row (first: %s)", len(broken), broken[0]
                )
    except BaseException:
        _quietly(connection.rollback, connection)
        raise
    finally:
        if sqlite:
            _quietly(lambda: _sqlite_foreign_keys(connection, on=True), connection)
        if postgres:
            # Also after a failure or a cancellation between the lock and its commit (unlocking a
            # lock the session does not hold only warns).
            _quietly(
                lambda: connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key}), connection
            )
            _quietly(connection.commit, connection)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """On the DBAPI connection, so that SQLAlchemy does not begin a transaction first."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _quietly(step: Callable[[], object], connection: Connection) -> None:
    """A clean-up step that must not replace the error being raised: if it fails, the connection
    is closed instead of going back to the pool (the server then ends its transaction and
    releases its session's locks)."""
    if connection.invalidated:
        return
    try:
        step()
    except Exception:
        connection.invalidate()


async def _run(database: Database, migrations_dir: Path, *, name: str, step: Step, revision: str) -> None:
    lock_key = zlib.crc32(f"voc-migrate-{name}".encode())
    async with database.engine.connect() as conn:
        await conn.run_sync(_migrate, str(migrations_dir), lock_key, step, revision)


async def upgrade(database: Database, migrations_dir: Path, *, name: str, revision: str = "head") -> None:
    """Apply every pending migration of one service's database (up to `revision`: tests of a
    data migration start from the revision before it), each in its own transaction."""
    await _run(database, migrations_dir, name=name, step=command.upgrade, revision=revision)


async def downgrade(database: Database, migrations_dir: Path, *, name: str, revision: str) -> None:
    """Undo migrations down to `revision` (the tests that check a migration's way back)."""
    await _run(database, migrations_dir, name=name, step=command.downgrade, revision=revision)


def current_revision(connection: Connection) -> Any:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
