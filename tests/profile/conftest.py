"""Profile fixtures: the profile REST app in process on a fresh, migrated database (SQLite or
PostgreSQL, as the suite runs), with small limits so the edges are cheap to reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import DatabaseFactory
from voc_platform import migrations
from voc_platform.db import Database
from voc_profile.__main__ import MIGRATIONS
from voc_profile.api import build_app
from voc_profile.audit import AuditTrail
from voc_profile.models import outbox_table
from voc_profile.settings import Settings

ADMIN = "test-admin-token-profile"


@dataclass
class Profile:
    database: Database
    settings: Settings
    client: httpx.AsyncClient
    trail: AuditTrail

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN}"}

    async def count(self, model: Any) -> int:
        async with self.database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def events(self, subject: str) -> list[bytes]:
        async with self.database.session() as session:
            rows = await session.execute(
                select(outbox_table.c.payload)
                .where(outbox_table.c.subject == subject)
                .order_by(outbox_table.c.seq)
            )
            return [r.payload for r in rows]


TEST_SETTINGS: dict[str, Any] = {
    "admin_token": ADMIN,
    "max_import_bytes": 64 * 1024,
    "import_batch_size": 50,
    "chronic_top_n": 2,
}


@asynccontextmanager
async def open_profile(databases: DatabaseFactory, **overrides: Any) -> AsyncIterator[Profile]:
    """The profile app on a fresh, migrated database; `overrides` change the test settings."""
    database = Database(databases.url("profile"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="profile")
        settings = Settings(**{**TEST_SETTINGS, **overrides})
        async with app_client(database, settings) as profile:
            yield profile
    finally:
        await database.dispose()


@asynccontextmanager
async def app_client(database: Database, settings: Settings) -> AsyncIterator[Profile]:
    """Another app (other settings) on a database that is already there."""
    trail = AuditTrail(database)
    app = build_app(settings, database, trail)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile") as client:
        yield Profile(database, settings, client, trail)


@pytest.fixture
async def profile(databases: DatabaseFactory) -> AsyncIterator[Profile]:
    async with open_profile(databases) as opened:
        yield opened


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
