"""voc_platform.identity and voc_platform.audit on a real database (SQLite or PostgreSQL): staff
tokens verified with the shared secret, refused when foreign, tampered, expired or revoked; the
revocation list shared by replicas through its table; the scope checks; the audit log's
entries, filters and retention."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import get_args

import httpx
import pytest
from fastapi import Depends
from sqlalchemy import MetaData

from tests.conftest import DatabaseFactory
from voc_notify.schemas import Role
from voc_platform.audit import Audit, AuditQuery, define_audit_table, install
from voc_platform.db import Database
from voc_platform.errors import Forbidden, Unauthenticated
from voc_platform.http import create_app, require, require_admin
from voc_platform.identity import (
    ROLE_PERMISSIONS,
    ROLES,
    Actor,
    Caller,
    Identity,
    Permission,
    Principal,
    Revocations,
    define_revocations_table,
    issue_token,
    read_token,
)
from voc_platform.settings import ServiceSettings

SECRET = "a-test-secret-of-forty-eight-characters-00000000"
MANAGER = Principal("mgr", "store_manager", ("store-a",), None)
AREA = Principal("area", "area_manager", (), "area-1", area_store_ids=("store-a", "store-b"))

metadata = MetaData()
revocations_table = define_revocations_table(metadata)
audit_table = define_audit_table(metadata)


@pytest.fixture
async def database(databases: DatabaseFactory) -> AsyncIterator[Database]:
    db = Database(databases.url("identity"))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


def test_every_role_has_its_permissions_and_notify_knows_every_role() -> None:
    assert set(ROLE_PERMISSIONS) == set(ROLES) == set(get_args(Role))
    assert ROLE_PERMISSIONS["cx_admin"] == frozenset(Permission)
    # Frontline staff work their alerts, the outreach assignments given to them (#20) and
    # correct their alerts' labels (#17), nothing else.
    frontline = {
        Permission.ALERTS,
        Permission.OUTREACH_CONTACT,
        Permission.CLASSIFICATION_CORRECT,
        Permission.PLAYBOOKS_READ,
    }
    assert ROLE_PERMISSIONS["staff"] == ROLE_PERMISSIONS["shift_lead"] == frontline
    # Every role reads the playbook library (a login, not the network, is what lets one in).
    assert all(Permission.PLAYBOOKS_READ in granted for granted in ROLE_PERMISSIONS.values())
    analyst = ROLE_PERMISSIONS["analyst"]
    assert not analyst & {
        Permission.FEEDBACK_EXPORT,
        Permission.OUTREACH_EXPORT,
        Permission.CUSTOMER_READ,
        Permission.OUTREACH_ASSIGN,
        Permission.OUTREACH_CONTACT,
        Permission.TARGETS,
    }
    # Targets: an area manager sets their area's; a store manager only reads them.
    assert Permission.TARGETS in ROLE_PERMISSIONS["area_manager"]
    assert Permission.TARGETS not in ROLE_PERMISSIONS["store_manager"]
    # The analyst changes nothing; the corrections' texts leave for training with head office only.
    assert Permission.CLASSIFICATION_CORRECT not in analyst
    assert [r for r, p in ROLE_PERMISSIONS.items() if Permission.CLASSIFIER_TRAINING in p] == ["cx_admin"]


def test_a_token_names_its_staff_member_and_scope_only_under_our_secret() -> None:
    token = issue_token(AREA, secret=SECRET, ttl=600)
    read = read_token(token, secret=SECRET)
    assert (read.staff_id, read.role, read.area_id, read.scope) == (
        "area",
        "area_manager",
        "area-1",
        ("store-a", "store-b"),
    )
    assert abs(read.issued_ms - time.time() * 1000) < 5000
    identity = Identity(
        secret=SECRET, admin_token="admin-token-x", revocations=Revocations(None, revocations_table)
    )  # type: ignore[arg-type]
    for bad in (
        issue_token(AREA, secret="another-deployments-secret-0123456789", ttl=600),  # foreign
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # tampered signature
        issue_token(AREA, secret=SECRET, ttl=60, now=time.time() - 3600),  # expired
        "eyJ.not.a-token",
    ):
        with pytest.raises(Unauthenticated):
            identity.verify(bad)
    assert identity.caller("admin-token-x", declared="ops") == Caller(None, on_behalf_of="ops")
    assert identity.caller("vocsk_a-store-key") is None  # the service's own business


def test_the_scope_checks_refuse_other_stores_and_areas() -> None:
    manager, area, admin = Caller(MANAGER), Caller(AREA), Caller(None)
    manager.check_store("store-a")
    with pytest.raises(Forbidden) as refused:
        manager.check_store("store-b")
    assert refused.value.errors[0].field == "query.store_id"
    for caller, area_id in ((manager, "area-1"), (area, "area-2")):
        with pytest.raises(Forbidden):
            caller.check_area(area_id)
    area.check_area("area-1")
    admin.check_store("anything")
    admin.check_area("anything")
    assert Caller(Principal("cx", "cx_admin", (), None)).scope is None
    assert Caller(Principal("an", "analyst", (), None)).scope is None
    with pytest.raises(Forbidden, match=r"audit\.read"):
        manager.require(Permission.AUDIT)
    assert (manager.actor, admin.actor) == (Actor("staff:mgr", role="store_manager"), Actor("admin"))


async def test_a_revocation_reaches_another_replica_through_the_table(database: Database) -> None:
    here, there = Revocations(database, revocations_table), Revocations(database, revocations_table)
    before = issue_token(MANAGER, secret=SECRET, ttl=600)
    principal = read_token(before, secret=SECRET)
    async with database.transaction() as session:
        await here.record(session, staff_id="mgr", revoked_before_ms=principal.issued_ms, reason="logout")
        # An older revocation arriving late (redelivery) never moves the cut-off back.
        await here.record(
            session, staff_id="mgr", revoked_before_ms=principal.issued_ms - 10_000, reason="revoked"
        )
    here.note("mgr", principal.issued_ms)
    assert here.revoked(principal) and not there.revoked(principal)
    await there.refresh()
    assert there.revoked(principal)
    later = Principal("mgr", "store_manager", ("store-a",), None, issued_ms=principal.issued_ms + 1)
    assert not there.revoked(later)  # a token issued after the revocation (a new login)
    assert not there.revoked(Principal("someone-else", "staff", (), None, issued_ms=1))
    identity = Identity(secret=SECRET, admin_token="admin-token-x", revocations=there)
    with pytest.raises(Unauthenticated, match="revoked"):
        identity.verify(before)


async def test_the_audit_log_filters_and_forgets_what_is_past_retention(database: Database) -> None:
    audit = Audit(database, audit_table)
    now = time.time()
    async with database.transaction() as session:
        await audit.record(
            session,
            actor=Actor("staff:mgr", role="store_manager"),
            action="api_key.create",
            target="api_key:1",
        )
    audit.read(actor=Actor("admin", on_behalf_of="ops.kim"), action="read", target="customer:c1")
    assert await audit.flush() == 1
    async with database.transaction() as session:  # an entry from 400 days ago
        await session.execute(
            audit_table.insert(),
            [
                {"at": now - 400 * 86400, "actor": "admin", "action": "old", "target": None, "detail": {}},
                # The proof an erasure was done outlives the retention.
                {
                    "at": now - 400 * 86400,
                    "actor": "admin",
                    "action": "erase",
                    "target": "customer:c0",
                    "detail": {},
                },
            ],
        )
    async with database.session() as session:
        everything = await audit.entries(session, AuditQuery())
        assert sorted(e["action"] for e in everything) == ["api_key.create", "erase", "old", "read"]
        mine = await audit.entries(session, AuditQuery(actor="staff:mgr"))
        assert [(e["action"], e["actor_role"], e["target"]) for e in mine] == [
            ("api_key.create", "store_manager", "api_key:1")
        ]
        declared = await audit.entries(session, AuditQuery(target="customer:c1"))
        assert (declared[0]["actor"], declared[0]["on_behalf_of"]) == ("admin", "ops.kim")
        recent = await audit.entries(session, AuditQuery(since=now - 3600, until=now + 3600))
        assert {e["action"] for e in recent} == {"read", "api_key.create"}
    assert await audit.prune(retention_days=365) == 1
    async with database.session() as session:
        assert {e["action"] for e in await audit.entries(session, AuditQuery())} == {
            "erase",
            "read",
            "api_key.create",
        }


async def test_a_route_declares_its_permission_and_require_admin_means_cx_admin(database: Database) -> None:
    """`require(permission)` and the older `require_admin` on a bare app: 401 for no or an
    unknown credential, 403 for a role without the permission, the admin token always."""
    settings = ServiceSettings(VOC_ENV="test", admin_token="admin-token-x", jwt_secret=SECRET)
    app = create_app(title="identity", service="test")
    app.state.settings = settings
    install(app, settings=settings, database=database, revocations_table=revocations_table, audit=audit_table)

    @app.get("/keys", dependencies=[Depends(require(Permission.API_KEYS))])
    async def keys() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/legacy", dependencies=[Depends(require_admin)])
    async def legacy() -> dict[str, bool]:
        return {"ok": True}

    def bearer(principal: Principal | None) -> dict[str, str]:
        token = "admin-token-x" if principal is None else issue_token(principal, secret=SECRET, ttl=60)
        return {"Authorization": f"Bearer {token}"}

    cx = Principal("cx", "cx_admin", (), None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/keys", "/legacy"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers={"Authorization": "Bearer made-up"})).status_code == 401
            assert (await client.get(path, headers=bearer(MANAGER))).status_code == 403
            assert (await client.get(path, headers=bearer(cx))).status_code == 200
            assert (await client.get(path, headers=bearer(None))).status_code == 200
        audit_log = await client.get("/v1/audit", headers=bearer(MANAGER))
        assert audit_log.status_code == 403 and "audit.read" in audit_log.json()["detail"]


async def test_the_audit_logs_query_refuses_what_it_cannot_hold(database: Database) -> None:
    """Found by the fuzzer on PostgreSQL: a `before_id` past the INTEGER column was a 500."""
    settings = ServiceSettings(VOC_ENV="test", admin_token="admin-token-x", jwt_secret=SECRET)
    app = create_app(title="identity", service="test")
    install(app, settings=settings, database=database, revocations_table=revocations_table, audit=audit_table)
    admin = {"Authorization": "Bearer admin-token-x"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for params, field in (
            ({"before_id": 75347277376}, "query.before_id"),
            ({"from": "inf"}, "query.from"),
            ({"to": "1e300"}, "query.to"),
            ({"from": "2026-11-02", "to": "2026-11-01"}, "query.to"),
        ):
            answer = await client.get("/v1/audit", params=params, headers=admin)
            assert answer.status_code == 422, (params, answer.text)
            assert answer.json()["errors"][0]["field"] == field
        assert (await client.get("/v1/audit", params={"before_id": 2**31 - 1}, headers=admin)).json() == {
            "entries": []
        }


def test_the_audit_retention_is_a_setting_every_service_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """#20 §6 "retention configurable": VOC_AUDIT_RETENTION_DAYS (every service's settings, the
    runtime's hourly pruning uses it); a retention under a day refuses to start."""
    assert ServiceSettings(VOC_ENV="test").audit_retention_days == 365
    monkeypatch.setenv("VOC_AUDIT_RETENTION_DAYS", "30")
    assert ServiceSettings(VOC_ENV="test").audit_retention_days == 30
    monkeypatch.setenv("VOC_AUDIT_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="audit_retention_days"):
        ServiceSettings(VOC_ENV="test")


def test_the_retention_of_what_was_written_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """VOC_RETENTION_DAYS: three years unless set; 0 keeps what was written until an erasure; a
    negative one refuses to start."""
    assert ServiceSettings(VOC_ENV="test").retention_days == 1095
    monkeypatch.setenv("VOC_RETENTION_DAYS", "0")
    assert ServiceSettings(VOC_ENV="test").retention_days == 0
    monkeypatch.setenv("VOC_RETENTION_DAYS", "-1")
    with pytest.raises(ValueError, match="retention_days"):
        ServiceSettings(VOC_ENV="test")
