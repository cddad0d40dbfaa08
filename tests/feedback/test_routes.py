"""The routers on their own, in process: a router mounts on a bare app with only what `deps`
reads from `app.state`; a reading route answers a caller without credentials 401 first, refuses a
malformed query before it checks (or throttles) the credentials sent, and checks the caller
before the period; the limiter refuses with the
429 intake and reading answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple

import httpx
import pytest

from tests.conftest import DatabaseFactory
from voc_feedback import keys, stores
from voc_feedback.__main__ import MIGRATIONS
from voc_feedback.models import audit_table, revocations_table
from voc_feedback.routes import reading
from voc_feedback.schemas import StoreIn
from voc_feedback.settings import Settings
from voc_platform import audit, migrations
from voc_platform.db import Database
from voc_platform.errors import RateLimited
from voc_platform.http import create_app
from voc_platform.ratelimit import RateLimiter

ADMIN = {"Authorization": "Bearer routes-admin-token"}


class Reading(NamedTuple):
    client: httpx.AsyncClient
    store_key: dict[str, str]  # the Authorization header of a key for store s1


@pytest.fixture
async def reading_app(databases: DatabaseFactory) -> AsyncIterator[Reading]:
    database = Database(databases.url("feedback_routes"))
    await migrations.upgrade(database, MIGRATIONS, name="feedback")
    app = create_app(title="reading only", service="test")
    app.include_router(reading.router)
    app.state.settings = Settings(VOC_ENV="test", admin_token="routes-admin-token")
    app.state.database = database
    app.state.rate_limiter = RateLimiter(rate_per_second=0.001, burst=1)
    audit.install(
        app,
        settings=app.state.settings,
        database=database,
        revocations_table=revocations_table,
        audit=audit_table,
    )
    async with database.transaction() as session:
        await stores.put_stores(session, stores=[StoreIn(id="s1", name="s1")])  # a key's stores are in it
        _, key = await keys.create_api_key(session, name="routes", store_ids=["s1"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback.test") as client:
        yield Reading(client, {"Authorization": f"Bearer {key}"})
    await database.dispose()


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


async def test_a_router_serves_on_a_bare_app(reading_app: Reading) -> None:
    client = reading_app.client
    listed = await client.get("/v1/feedback", headers=ADMIN)
    assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
    assert (await client.get("/v1/feedback/nope", headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/analytics", headers=ADMIN)).status_code == 404  # not mounted


async def test_a_malformed_query_is_refused_before_the_caller_is_checked(reading_app: Reading) -> None:
    client, store = reading_app
    # No credentials at all: 401, whatever the query (an anonymous caller learns nothing).
    anonymous = await client.get("/v1/feedback", params={"channel": "fax", "limit": 0})
    assert anonymous.status_code == 401
    for headers in ({"Authorization": "Bearer nope"}, store):
        invalid = await client.get("/v1/feedback", params={"channel": "fax", "limit": 0}, headers=headers)
        assert invalid.status_code == 422 and fields(invalid) == ["query.channel", "query.limit"]
        unknown = await client.get(
            "/v1/feedback/export.csv", params={"from": "2026-01-01", "x": 1}, headers=headers
        )
        assert unknown.status_code == 422 and fields(unknown) == ["query.x"]
        malformed = await client.get(
            "/v1/feedback/export.csv", params={"from": "2026-01-01"}, headers=headers
        )
        assert malformed.status_code == 422 and fields(malformed) == ["query.to"]
        unknown = await client.get("/v1/feedback", params={"store": "s1", "from": "bad"}, headers=headers)
        assert unknown.status_code == 422 and fields(unknown) == ["query.store"]
    # The period is read once the caller is known.
    assert (await client.get("/v1/feedback", params={"from": "bad"})).status_code == 401
    # None of that spent the store key's one token; the next reading does, then it is refused.
    assert (await client.get("/v1/feedback", headers=store)).status_code == 200
    limited = await client.get("/v1/feedback", headers=store)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_the_limiter_refuses_with_rate_limited() -> None:
    limiter = RateLimiter(rate_per_second=0.5, burst=1)
    limiter.admit("k")
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "2"}
    assert str(refused.value) == "Rate limit of 0.5/s (burst 1) exceeded for this API key."
    limiter.admit("other key")
