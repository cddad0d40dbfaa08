"""What the migration tests compare: a database's schema against the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection


def drift(connection: Connection, metadata: MetaData) -> list[Any]:
    """The differences between the migrated schema and `metadata` (none: they match)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)]
