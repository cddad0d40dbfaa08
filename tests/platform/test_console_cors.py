"""The console's cross-origin calls (#20 §2), in process against the real service apps: only the
origins in VOC_CONSOLE_ORIGINS get CORS headers (a preflight from another origin is refused, and
nothing is allowed by default), no cookies are ever allowed, and the dashboard's CSP connect-src
names exactly notify's and actions' public origins, which /dashboard/config.json tells the page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from tests.conftest import DatabaseFactory
from voc_feedback import api as feedback_api
from voc_feedback.__main__ import MIGRATIONS as FEEDBACK_MIGRATIONS
from voc_feedback.settings import Settings as FeedbackSettings
from voc_notify import api as notify_api
from voc_notify.settings import Settings as NotifySettings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform import migrations
from voc_platform.db import Database
from voc_platform.http import content_security_policy

CONSOLE = "http://dash.test:8010"
ELSEWHERE = "http://evil.test"


async def notify_client(
    databases: DatabaseFactory, name: str, **settings: str
) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(databases.url(name))
    app = notify_api.build_app(
        NotifySettings(VOC_ENV="test", **settings),  # type: ignore[arg-type]
        database,
        vapid=VapidKeys.generate(),
        allowlist=PushAllowlist(),
        broker=AlertBroker(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n.test") as client:
        yield client
    await database.dispose()


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for client in notify_client(
        databases, "notify_cors", VOC_CONSOLE_ORIGINS=f"{CONSOLE}, http://other.test"
    ):
        yield client


@pytest.fixture
async def notify_default(databases: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for client in notify_client(databases, "notify_cors_default"):
        yield client


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_an_allowed_origin_gets_the_preflight_and_the_headers(notify: httpx.AsyncClient) -> None:
    answer = await notify.options("/v1/auth/login", headers=preflight(CONSOLE))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers  # bearer tokens, never cookies
    # An actual call (refused for want of a token) still carries the header, so the console can
    # read the problem; the strict CSP stays on it.
    refused = await notify.get("/v1/admin/stores", headers={"Origin": CONSOLE})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == CONSOLE
    assert "default-src 'self'" in refused.headers["content-security-policy"]
    second = await notify.options("/v1/admin/staff", headers=preflight("http://other.test", "GET"))
    assert second.headers["access-control-allow-origin"] == "http://other.test"


async def test_another_origin_gets_no_cors_headers(notify: httpx.AsyncClient) -> None:
    answer = await notify.options("/v1/auth/login", headers=preflight(ELSEWHERE))
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    plain = await notify.get("/v1/admin/stores", headers={"Origin": ELSEWHERE})
    assert plain.status_code == 401
    assert "access-control-allow-origin" not in plain.headers
    # The port is part of the origin.
    other_port = await notify.options("/v1/auth/login", headers=preflight("http://dash.test:9999"))
    assert "access-control-allow-origin" not in other_port.headers


async def test_no_console_origins_means_same_origin_only(notify_default: httpx.AsyncClient) -> None:
    answer = await notify_default.options("/v1/auth/login", headers=preflight(CONSOLE))
    assert answer.status_code in (400, 405)
    assert "access-control-allow-origin" not in answer.headers
    plain = await notify_default.get("/v1/admin/stores", headers={"Origin": CONSOLE})
    assert "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize("value", ["*", "http://dash.test/dashboard", "dash.test:8010", "ftp://dash.test"])
def test_the_allowlist_takes_origins_only(value: str) -> None:
    with pytest.raises(ValidationError, match="VOC_CONSOLE_ORIGINS"):
        NotifySettings(VOC_ENV="test", VOC_CONSOLE_ORIGINS=value)  # type: ignore[call-arg]


async def feedback_app(
    databases: DatabaseFactory, name: str, **settings: str
) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(databases.url(name))
    await migrations.upgrade(database, FEEDBACK_MIGRATIONS, name="feedback")
    app = feedback_api.build_app(FeedbackSettings(VOC_ENV="test", **settings), database)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f.test") as client:
        yield client
    await database.dispose()


async def test_the_dashboard_may_connect_to_notify_and_actions_only(databases: DatabaseFactory) -> None:
    async for client in feedback_app(
        databases,
        "feedback_console",
        VOC_NOTIFY_PUBLIC_URL="http://127.0.0.1:8040/",
        VOC_ACTIONS_PUBLIC_URL="https://Actions.Example.com/base",
    ):
        page = await client.get("/dashboard")
        csp = page.headers["content-security-policy"]
        assert "connect-src 'self' http://127.0.0.1:8040 https://actions.example.com;" in csp
        assert "script-src 'self';" in csp  # nothing else widened
        # The customer's survey page calls no other service: it is not told their addresses.
        survey = await client.get("/f/made-up")
        assert "connect-src 'self';" in survey.headers["content-security-policy"]
        assert "8040" not in survey.headers["content-security-policy"]
        # The console's own paths are widened, a path that only begins like them is not.
        widened = (await client.get("/dashboard/config.json")).headers["content-security-policy"]
        assert "http://127.0.0.1:8040" in widened
        assert "8040" not in (await client.get("/dashboardx")).headers["content-security-policy"]
        config = await client.get("/dashboard/config.json")
        assert config.json() == {
            "notify_url": "http://127.0.0.1:8040",
            "actions_url": "https://Actions.Example.com/base",
        }
    async for client in feedback_app(databases, "feedback_console_default"):
        page = await client.get("/dashboard")
        assert "connect-src 'self';" in page.headers["content-security-policy"]
        assert (await client.get("/dashboard/config.json")).json() == {"notify_url": "", "actions_url": ""}


def test_the_policy_ignores_what_is_not_an_origin() -> None:
    assert "connect-src 'self';" in content_security_policy(["", "not a url", "/relative"])


async def test_pages_and_assets_stay_outside_cors(notify: httpx.AsyncClient) -> None:
    """Only the API answers across origins. The staff app's shell never carries `Vary: Origin`:
    its service worker caches it, and a cached answer that varies on Origin no longer matches
    the navigation that needs it offline (#23's offline inbox)."""
    for path in ("/", "/static/app.js", "/sw.js"):
        page = await notify.get(path, headers={"Origin": CONSOLE})
        assert page.status_code == 200, path
        assert "access-control-allow-origin" not in page.headers, path
        assert "origin" not in page.headers.get("vary", "").lower(), path
    api = await notify.get("/v1/admin/stores", headers={"Origin": CONSOLE})
    assert api.headers["access-control-allow-origin"] == CONSOLE
