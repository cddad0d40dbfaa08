"""Sessions that last a shift (#23): login gives an access and a refresh token; a refresh rotates
the refresh token and re-reads role and stores from the directory; a refresh token used twice,
or from another app install, revokes its whole family (401 for the thief and the owner alike);
logout, a password change and deactivation end sessions; tokens are stored hashed."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, make_notify
from voc_notify import api, auth
from voc_notify.models import RefreshToken, Staff, Store, revocations_table
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform import identity
from voc_platform.db import Database
from voc_platform.errors import Unauthenticated

PASSWORD = "right-password-1"
INSTALL = "install-phone-0001"


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[Notify]:
    service = await make_notify(databases, auth.hash_password(PASSWORD), login_address_burst=100)
    yield service
    await service.database.dispose()


async def sign_in(
    client: httpx.AsyncClient, install_id: str | None = INSTALL, password: str = PASSWORD
) -> Any:
    body: dict[str, Any] = {"email": "lead@x.demo", "password": password}
    if install_id:
        body["install_id"] = install_id
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, token: str, install_id: str | None = INSTALL) -> httpx.Response:
    body = {"refresh_token": token} | ({"install_id": install_id} if install_id else {})
    return await client.post("/v1/auth/refresh", json=body)


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(notify: Notify) -> None:
    async with notify.client() as client:
        first = await sign_in(client)
        assert set(first) >= {"access_token", "expires_in", "refresh_token", "refresh_expires_in", "staff"}
        assert first["refresh_expires_in"] == Settings(VOC_ENV="test").refresh_token_ttl_seconds
        second_r = await refresh(client, first["refresh_token"])
        assert second_r.status_code == 200, second_r.text
        second = second_r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await client.get("/v1/alerts", headers=bearer(second))).status_code == 200
        third = (await refresh(client, second["refresh_token"])).json()

        # The first token again: somebody kept a copy. The whole family ends, the newest too.
        reused = await refresh(client, first["refresh_token"])
        assert reused.status_code == 401
        assert reused.headers["content-type"].startswith("application/problem+json")
        assert "already used" in reused.json()["detail"]
        assert (await refresh(client, third["refresh_token"])).status_code == 401
        # The access tokens got with the family end too: the thief's would otherwise last an hour.
        for session in (second, third):
            assert (await client.get("/v1/alerts", headers=bearer(session))).status_code == 401
        await asyncio.sleep(0.002)  # the cut-off is in ms: a token of that same ms counts as revoked
        # A new login starts a new family.
        fresh = await sign_in(client)
        assert (await refresh(client, fresh["refresh_token"])).status_code == 200
    async with notify.database.session() as s:
        rows = list(await s.scalars(select(RefreshToken)))
    reasons = {r.revoked_reason for r in rows if r.revoked_at is not None}
    assert reasons == {"reuse"}
    # Stored as hashes only.
    hashes = {r.token_hash for r in rows}
    for token in (first["refresh_token"], second["refresh_token"], third["refresh_token"]):
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert token not in hashes


async def test_a_refresh_token_is_bound_to_its_app_install(notify: Notify) -> None:
    async with notify.client() as client:
        session = await sign_in(client)
        stolen = await refresh(client, session["refresh_token"], install_id="install-laptop-9999")
        assert stolen.status_code == 401
        # The copy was shown elsewhere: the owner's session is gone too.
        assert (await refresh(client, session["refresh_token"])).status_code == 401
        # A client that gave no install at login (a script) refreshes without one.
        script = await sign_in(client, install_id=None)
        assert (await refresh(client, script["refresh_token"], install_id=None)).status_code == 200


async def test_refresh_reads_role_and_stores_from_the_directory(notify: Notify) -> None:
    async with notify.client() as client:
        session = await sign_in(client)
        moved = await client.put(
            "/v1/admin/staff",
            headers=ADMIN,
            json=[
                {
                    "id": "lead",
                    "name": "Lead",
                    "email": "lead@x.demo",
                    "password": PASSWORD,  # the same password: the session survives
                    "role": "store_manager",
                    "store_ids": ["s1", "s2"],
                    "language": "en",
                }
            ],
        )
        assert moved.status_code == 200, moved.text
        renewed = await refresh(client, session["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        # The claims every service verifies (voc_platform.identity), as login issues them.
        assert set(claims) == {"sub", "role", "stores", "area", "iat", "iat_ms", "exp", "iss", "sid"}
        assert claims["role"] == "store_manager" and claims["stores"] == ["s1", "s2"]
        assert body["staff"]["role"] == "store_manager"


async def test_logout_ends_the_session_and_is_idempotent(notify: Notify) -> None:
    async with notify.client() as client:
        session = await sign_in(client)
        other = await sign_in(client, install_id="install-tablet-0002")
        assert (
            await client.post("/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
        ).status_code == 204
        assert (await refresh(client, session["refresh_token"])).status_code == 401
        again = await client.post("/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
        assert again.status_code == 204
        unknown = await client.post("/v1/auth/logout", json={"refresh_token": "vocrt_nothing"})
        assert unknown.status_code == 204
        # Only that session: the tablet's goes on.
        assert (await refresh(client, other["refresh_token"], "install-tablet-0002")).status_code == 200


async def test_deactivation_ends_every_session_and_login(notify: Notify) -> None:
    async with notify.client() as client:
        phone = await sign_in(client)
        tablet = await sign_in(client, install_id="install-tablet-0002")
        assert (await client.post("/v1/admin/staff/lead/deactivate", headers=ADMIN)).status_code == 204
        assert (await refresh(client, phone["refresh_token"])).status_code == 401
        assert (await refresh(client, tablet["refresh_token"], "install-tablet-0002")).status_code == 401
        denied = await client.post("/v1/auth/login", json={"email": "lead@x.demo", "password": PASSWORD})
        assert denied.status_code == 401
        missing = await client.post("/v1/admin/staff/nobody/deactivate", headers=ADMIN)
        assert missing.status_code == 404
        assert (await client.post("/v1/admin/staff/lead/deactivate")).status_code == 401
        assert (await client.post("/v1/admin/staff/lead/activate", headers=ADMIN)).status_code == 204
        back = await sign_in(client)
        assert (await refresh(client, back["refresh_token"])).status_code == 200


async def test_a_password_change_ends_every_session(notify: Notify) -> None:
    async with notify.client() as client:
        phone = await sign_in(client)
        tablet = await sign_in(client, install_id="install-tablet-0002")
        wrong = await client.post(
            "/v1/auth/password",
            headers=bearer(phone),
            json={"current_password": "not-it", "new_password": "a-new-password-2"},
        )
        assert wrong.status_code == 403
        short = await client.post(
            "/v1/auth/password",
            headers=bearer(phone),
            json={"current_password": PASSWORD, "new_password": "x"},
        )
        assert short.status_code == 422
        assert any(e["field"] == "body.new_password" for e in short.json()["errors"])
        assert (await refresh(client, tablet["refresh_token"], "install-tablet-0002")).status_code == 200
        changed = await client.post(
            "/v1/auth/password",
            headers=bearer(phone),
            json={"current_password": PASSWORD, "new_password": "a-new-password-2"},
        )
        assert changed.status_code == 204, changed.text
        assert (await refresh(client, phone["refresh_token"])).status_code == 401
        new = await sign_in(client, password="a-new-password-2")

        # An admin setting a different password ends the sessions too.
        reset = await client.put(
            "/v1/admin/staff",
            headers=ADMIN,
            json=[
                {
                    "id": "lead",
                    "name": "Lead",
                    "email": "lead@x.demo",
                    "password": "set-by-the-admin-3",
                    "role": "shift_lead",
                    "store_ids": ["s1"],
                }
            ],
        )
        assert reset.status_code == 200
        assert (await refresh(client, new["refresh_token"])).status_code == 401


async def test_an_expired_refresh_token_is_refused(notify: Notify) -> None:
    settings = Settings(VOC_ENV="test")
    async with notify.client() as client:
        session = await sign_in(client)
    later = time.time() + settings.refresh_token_ttl_seconds + 1
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.refresh(
            notify.database,
            identity.Revocations(notify.database, revocations_table),
            settings=settings,
            refresh_token=session["refresh_token"],
            install_id=INSTALL,
            now=later,
        )


async def test_bad_refresh_requests_name_the_field(notify: Notify) -> None:
    async with notify.client() as client:
        missing = await client.post("/v1/auth/refresh", json={})
        assert missing.status_code == 422
        assert any(e["field"] == "body.refresh_token" for e in missing.json()["errors"])
        odd = await client.post("/v1/auth/refresh", json={"refresh_token": "x", "install_id": "has spaces!"})
        assert odd.status_code == 422
        assert any(e["field"] == "body.install_id" for e in odd.json()["errors"])
        assert (
            await client.post("/v1/auth/refresh", json={"refresh_token": "vocrt_unknown"})
        ).status_code == 401
        bad_login = await client.post(
            "/v1/auth/login", json={"email": "lead@x.demo", "password": PASSWORD, "install_id": "a"}
        )
        assert bad_login.status_code == 422


async def test_login_and_refresh_both_carry_the_area_stores(notify: Notify) -> None:
    """identity's claims from either issuer: an area manager's area stores (as the directory has
    them at that moment) and the millisecond issue time revocation compares."""
    async with notify.database.transaction() as s:
        s.add(
            Staff(
                id="area-boss",
                name="Area",
                email="area@x.demo",
                password_hash=auth.hash_password(PASSWORD),
                role="area_manager",
                store_ids=[],
                area_id="a1",
                language="en",
                active=True,
            )
        )
    async with notify.client() as client:
        response = await client.post("/v1/auth/login", json={"email": "area@x.demo", "password": PASSWORD})
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["area_stores"] == ["s1"] and claims["iat_ms"] // 1000 == claims["iat"]
        async with notify.database.transaction() as s:  # a store joins the area
            s.add(Store(id="s2", name="Store 2", area_id="a1", timezone="Asia/Seoul", language="en"))
        renewed = await refresh(client, response.json()["refresh_token"], None)
        assert renewed.status_code == 200, renewed.text
        claims = jwt.decode(renewed.json()["access_token"], options={"verify_signature": False})
        assert claims["area_stores"] == ["s1", "s2"] and "iat_ms" in claims
        principal = identity.read_token(
            renewed.json()["access_token"], secret=notify.app.state.settings.jwt_secret
        )
        assert principal.scope == ("s1", "s2")


async def test_logout_by_refresh_token_also_ends_the_access_tokens(notify: Notify) -> None:
    """The pager's logout (the refresh token as the credential) ends the staff member's access
    tokens too (identity's): the phone's and the tablet's, while the tablet's session refreshes."""
    async with notify.client() as client:
        phone = await sign_in(client)
        tablet = await sign_in(client, install_id="install-tablet-0002")
        assert (await client.get("/v1/alerts", headers=bearer(tablet))).status_code == 200
        out = await client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
        assert out.status_code == 204
        await asyncio.sleep(0.002)  # the cut-off is in ms: a token of that same ms counts as revoked
        for session in (phone, tablet):
            refused = await client.get("/v1/alerts", headers=bearer(session))
            assert refused.status_code == 401, refused.text
        renewed = await refresh(client, tablet["refresh_token"], "install-tablet-0002")
        assert renewed.status_code == 200, renewed.text
        assert (await client.get("/v1/alerts", headers=bearer(renewed.json()))).status_code == 200
        # Without a body, the access token is the credential (and its session ends with it);
        # without either, nothing is ended.
        assert (await client.post("/v1/auth/logout")).status_code == 401
        tablet_now = renewed.json()
        assert (await client.post("/v1/auth/logout", headers=bearer(tablet_now))).status_code == 204
        assert (await client.get("/v1/alerts", headers=bearer(tablet_now))).status_code == 401
        ended = await refresh(client, tablet_now["refresh_token"], "install-tablet-0002")
        assert ended.status_code == 401 and "ended" in ended.json()["detail"]
    async with notify.database.session() as s:
        revoked = (
            await s.execute(
                select(RefreshToken.family_id, RefreshToken.revoked_reason).where(
                    RefreshToken.revoked_at.is_not(None)
                )
            )
        ).all()
    # The phone's family by its refresh token, then the tablet's by its access token.
    assert {reason for _, reason in revoked} == {"logout"}
    assert len({family for family, _ in revoked}) == 2


async def test_a_session_survives_a_restart_of_notify(notify: Notify) -> None:
    """#20 §1 "a refresh survives a service restart": nothing of a session lives in the process;
    a new process (a new app and connection pool on the same database) refreshes it, and the
    access token issued before goes on working there."""
    async with notify.client() as client:
        session = await sign_in(client)
    url = notify.database.url
    await notify.database.dispose()  # the old process is gone
    database = Database(url)
    restarted = Notify(
        database,
        api.build_app(
            Settings(VOC_ENV="test", admin_token=ADMIN["Authorization"][7:]),
            database, vapid=VapidKeys.generate(), allowlist=PushAllowlist(), broker=AlertBroker(),
        ),
    )  # fmt: skip
    try:
        async with restarted.client() as client:
            assert (await client.get("/v1/alerts", headers=bearer(session))).status_code == 200
            renewed = await refresh(client, session["refresh_token"])
            assert renewed.status_code == 200, renewed.text
            assert (await client.get("/v1/alerts", headers=bearer(renewed.json()))).status_code == 200
    finally:
        await database.dispose()
