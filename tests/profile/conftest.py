"""Profile fixtures: the profile REST app in process on a fresh, migrated database (SQLite or
PostgreSQL, as the suite runs), with small limits so the edges are cheap to reach; and its gRPC
service on a real loopback server, on the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from grpc import aio
from sqlalchemy import func, select

from tests.conftest import DatabaseFactory
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform import migrations
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.grpc import client_channel, create_server
from voc_profile import grpc_server
from voc_profile.__main__ import MIGRATIONS
from voc_profile.api import build_app
from voc_profile.models import audit_table, outbox_table
from voc_profile.settings import Settings

ADMIN = "test-admin-token-profile"


@dataclass
class Profile:
    database: Database
    settings: Settings
    client: httpx.AsyncClient
    trail: Audit

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
    trail = Audit(database, audit_table)
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


INTERNAL_TOKEN = "test-internal-token-profile"


@dataclass
class Grpc:
    """A client of the profile gRPC service (with the service credential) and the app beside it."""

    profile: Profile
    target: str
    stub: profile_pb2_grpc.ProfileServiceStub

    async def resolve(self, create: bool = True, **ids: str) -> profile_pb2.ResolveCustomerResponse:
        request = profile_pb2.ResolveCustomerRequest(
            identifiers=common_pb2.CustomerIdentifiers(**ids), create_if_missing=create
        )
        response: profile_pb2.ResolveCustomerResponse = await self.stub.ResolveCustomer(request)
        return response

    async def refused(self, **ids: str) -> aio.AioRpcError:
        with pytest.raises(aio.AioRpcError) as err:
            await self.resolve(**ids)
        return err.value


@pytest.fixture
async def rpc(profile: Profile) -> AsyncIterator[Grpc]:
    """The platform's grpc.aio server (credential check, health) on 127.0.0.1:<free port>."""
    server, _, port = create_server(
        port=0,
        host="127.0.0.1",
        token=INTERNAL_TOKEN,
        register=grpc_server.register(profile.database, profile.settings, profile.trail),
        service_names=[grpc_server.SERVICE_NAME],
    )
    await server.start()
    target = f"127.0.0.1:{port}"
    channel = client_channel(target, token=INTERNAL_TOKEN, timeout=5)
    try:
        yield Grpc(profile, target, profile_pb2_grpc.ProfileServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)
