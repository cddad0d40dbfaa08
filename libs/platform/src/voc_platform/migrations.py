"""Alembic, run programmatically at service start (and by `voc migrate`).

Each service keeps its own migrations package; its env.py calls `run_env(metadata)`.
On PostgreSQL an advisory lock makes concurrent replicas migrate one at a time.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from voc_platform.db import Database


def run_env(metadata: MetaData) -> None:
    """Body of a service's migrations/env.py: online mode on the connection we hand over."""
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _upgrade(connection: Connection, script_location: str, lock_key: int, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(database: Database, migrations_dir: Path, *, name: str, revision: str = "head") -> None:
    """Apply every pending migration of one service's database (up to `revision`: tests of a
    data migration start from the revision before it)."""
    lock_key = zlib.crc32(f"voc-migrate-{name}".encode())
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade, str(migrations_dir), lock_key, revision)


def current_revision(connection: Connection) -> Any:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
