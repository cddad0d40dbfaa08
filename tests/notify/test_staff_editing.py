"""Editing staff without their password, and managers keeping their own staff's shifts (#20).

`PUT /v1/admin/staff` takes the password only to set one: someone new needs it (422 naming
`body.N.password` otherwise, nothing written), an existing member left without one keeps theirs
and their sessions (unless their access changed). Shifts and overrides (`directory.shifts`): a
store manager their stores' staff, an area manager their area's, cx_admin and the admin token
anyone's; a manager outside their staff, a shift lead and the analyst are 403, never 404 or an
empty answer, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, make_notify
from tests.notify.test_login import PASSWORD, bearer
from voc_notify import auth
from voc_notify.models import Shift, ShiftOverride, Staff, Store


@pytest.fixture
async def notify(databases: DatabaseFactory) -> Any:
    service = await make_notify(databases, auth.hash_password(PASSWORD), login_address_burst=100)
    async with service.database.transaction() as s:
        s.add(Store(id="s2", name="Store 2", area_id="a2", timezone="Asia/Seoul", language="en"))
        s.add(
            Staff(
                id="crew-2", name="Crew 2", email="crew2@x.demo", password_hash=auth.hash_password(PASSWORD),
                role="staff", store_ids=["s2"], area_id=None, language="en", active=True,
            )
        )  # fmt: skip
    try:
        yield service
    finally:
        await service.database.dispose()


def edit(**fields: Any) -> dict[str, Any]:
    """The lead of `make_notify` (s1), as the console sends an edit: no password."""
    return {"id": "lead", "name": "Lead", "email": "lead@x.demo", "role": "shift_lead", "store_ids": ["s1"],
            "language": "en", "active": True, **fields}  # fmt: skip


MOVED: dict[str, Any] = {"role": "store_manager", "store_ids": ["s1", "s2"], "language": "ko"}


async def test_an_edit_without_a_password_keeps_it_and_someone_new_needs_one(notify: Notify) -> None:
    async with notify.client() as client:
        login = await client.post("/v1/auth/login", json={"email": "lead@x.demo", "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        renamed = await client.put("/v1/admin/staff", json=[edit(name="Lead Renamed")], headers=ADMIN)
        # Only the name changed: the lead's session goes on (nothing revoked).
        still = await client.get("/v1/alerts", headers=token)
        moved = await client.put(
            "/v1/admin/staff", json=[edit(**MOVED)],
            headers=bearer(notify, "cx_admin"),
        )  # fmt: skip
        # A new member without a password: 422 naming the row, and the whole list is refused.
        new = await client.put(
            "/v1/admin/staff",
            json=[
                edit(**MOVED, name="Not Written"),
                {**edit(id="newbie", email="new@x.demo"), "password": None},
            ],
            headers=ADMIN,
        )
        old_password = await client.post(
            "/v1/auth/login", json={"email": "lead@x.demo", "password": PASSWORD}
        )
        reset = await client.put(
            "/v1/admin/staff", json=[edit(**MOVED, password="a-reset-password-9")], headers=ADMIN
        )
        after_reset = await client.post(
            "/v1/auth/login", json={"email": "lead@x.demo", "password": "a-reset-password-9"}
        )
        refused = await client.post("/v1/auth/login", json={"email": "lead@x.demo", "password": PASSWORD})
    async with notify.database.session() as s:
        lead = await s.get(Staff, "lead")
        assert lead is not None
        newbie = await s.get(Staff, "newbie")
    assert renamed.status_code == 200, renamed.text
    assert still.status_code == 200, still.text
    assert moved.status_code == 200, moved.text
    assert new.status_code == 422, new.text
    assert new.headers["content-type"].startswith("application/problem+json")
    assert new.json()["errors"] == [{"field": "body.1.password", "message": "required for new staff"}]
    assert newbie is None and lead.name == "Lead"  # the refused list wrote nothing ("Not Written")
    assert (lead.role, lead.store_ids, lead.language) == ("store_manager", ["s1", "s2"], "ko")
    assert old_password.status_code == 200, old_password.text  # kept through three edits
    assert reset.status_code == 200 and after_reset.status_code == 200, (reset.text, after_reset.text)
    assert refused.status_code == 401


SHIFTS = [{"weekday": 0, "starts": "09:00", "ends": "17:00"}]
OVERRIDE = {"starts_on": "2026-12-24", "ends_on": "2026-12-25", "on_duty": False, "note": "holiday"}


async def counts(notify: Notify, staff_id: str) -> tuple[int, int]:
    async with notify.database.session() as s:
        shifts = await s.scalar(select(func.count()).select_from(Shift).where(Shift.staff_id == staff_id))
        overrides = await s.scalar(
            select(func.count()).select_from(ShiftOverride).where(ShiftOverride.staff_id == staff_id)
        )
    return int(shifts or 0), int(overrides or 0)


# caller -> expected status for the lead of s1 (area a1) and for crew-2 of s2 (area a2)
CALLERS: dict[str, tuple[dict[str, Any], int, int]] = {
    "staff": ({"role": "staff", "stores": ("s1",)}, 403, 403),
    "shift_lead": ({"role": "shift_lead", "stores": ("s1",)}, 403, 403),
    "store_manager s1": ({"role": "store_manager", "stores": ("s1",)}, 200, 403),
    "store_manager s2": ({"role": "store_manager", "stores": ("s2",)}, 403, 200),
    "area_manager a1": ({"role": "area_manager", "area": "a1"}, 200, 403),
    "area_manager a2": ({"role": "area_manager", "area": "a2"}, 403, 200),
    "cx_admin": ({"role": "cx_admin"}, 200, 200),
    "analyst": ({"role": "analyst"}, 403, 403),
}


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_managers_keep_the_shifts_of_their_own_staff_only(notify: Notify, caller: str) -> None:
    claims, for_lead, for_crew = CALLERS[caller]
    headers = bearer(notify, claims["role"], stores=claims.get("stores", ()), area=claims.get("area"))
    async with notify.client() as client:
        for staff_id, expected in (("lead", for_lead), ("crew-2", for_crew)):
            base = f"/v1/admin/staff/{staff_id}"
            # An override of the admin's, for the DELETE below.
            seeded = await client.post(f"{base}/overrides", json=OVERRIDE, headers=ADMIN)
            assert seeded.status_code == 201, seeded.text
            before = await counts(notify, staff_id)
            put = await client.put(f"{base}/shifts", json=SHIFTS, headers=headers)
            added = await client.post(f"{base}/overrides", json=OVERRIDE, headers=headers)
            removed = await client.delete(f"{base}/overrides/{seeded.json()['id']}", headers=headers)
            answers = {"put": put.status_code, "add": added.status_code, "delete": removed.status_code}
            allowed = {"put": 200, "add": 201, "delete": 204}
            want = allowed if expected == 200 else dict.fromkeys(allowed, 403)
            assert answers == want, (staff_id, put.text, added.text, removed.text)
            after = await counts(notify, staff_id)
            if expected == 403:
                assert after == before, staff_id  # nothing written
                assert put.headers["content-type"].startswith("application/problem+json")
            else:
                assert after == (1, before[1]), staff_id  # one shift; one override added, one removed
        audit = await client.get("/v1/audit", params={"action": "shifts.put"}, headers=ADMIN)
    assert audit.status_code == 200, audit.text
    actors = {e["actor"] for e in audit.json()["entries"]}
    assert actors == ({f"staff:caller-{claims['role']}"} if 200 in (for_lead, for_crew) else set())


async def test_nobody_keeps_the_shifts_of_a_higher_role(notify: Notify) -> None:
    async with notify.database.transaction() as s:
        s.add(
            Staff(
                id="boss", name="Boss", email="boss@x.demo", password_hash=auth.hash_password(PASSWORD),
                role="area_manager", store_ids=["s1"], area_id="a1", language="en", active=True,
            )
        )  # fmt: skip
    async with notify.client() as client:
        refused = await client.put(
            "/v1/admin/staff/boss/shifts",
            json=SHIFTS,
            headers=bearer(notify, "store_manager", stores=("s1",)),
        )
        missing = await client.put(
            "/v1/admin/staff/nobody/shifts",
            json=SHIFTS,
            headers=bearer(notify, "store_manager", stores=("s1",)),
        )
    assert refused.status_code == 403, refused.text
    assert missing.status_code == 404, missing.text


async def test_every_directory_and_webhook_change_is_audited_as_the_tokens_actor(notify: Notify) -> None:
    """#20 §6: each change of the directory (stores, staff, import, deactivation, shifts,
    overrides) and of the webhooks is in notify's audit log with the token's actor and role, a
    self-declared header ignored beside a staff token."""
    cx = {**bearer(notify, "cx_admin"), "X-Voc-Actor": "someone-else"}
    async with notify.client() as client:
        done = [
            await client.put(
                "/v1/admin/stores", json=[{"id": "s3", "name": "Store 3", "area_id": "a2"}], headers=cx
            ),
            await client.put("/v1/admin/staff", json=[edit(name="Lead Audited")], headers=cx),
            await client.post(
                "/v1/admin/staff:import",
                content=b"id,name,email,password,role,store_ids,active\n"
                b"crew-9,Crew 9,crew9@x.demo,crew-password-9,staff,s3,\n",
                headers={**cx, "Content-Type": "text/csv"},
            ),
            await client.post("/v1/admin/staff/crew-9/deactivate", headers=cx),
            await client.put(
                "/v1/admin/staff/lead/shifts",
                json=SHIFTS,
                headers=cx,
            ),
            await client.post(
                "/v1/admin/staff/lead/overrides",
                json={"starts_on": "2026-11-23", "ends_on": "2026-11-23", "on_duty": False},
                headers=cx,
            ),
        ]
        hook = await client.post(
            "/v1/admin/webhooks", json={"url": "https://hooks.example.test/voc", "events": ["alert.created"]},
            headers=cx,
        )  # fmt: skip
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["id"]
        done += [
            await client.post(f"/v1/admin/webhooks/{hook_id}/rotate-secret", headers=cx),
            await client.delete(f"/v1/admin/webhooks/{hook_id}", headers=cx),
        ]
        assert all(r.status_code < 300 for r in done), [(r.status_code, r.text) for r in done]
        log = await client.get(
            "/v1/audit", params={"actor": "staff:caller-cx_admin", "limit": 100}, headers=ADMIN
        )
    assert log.status_code == 200, log.text
    entries = log.json()["entries"]
    assert {e["actor_role"] for e in entries} == {"cx_admin"}
    assert all(e["on_behalf_of"] is None for e in entries)  # the header was not believed
    seen = {(e["action"], e["target"]) for e in entries}
    [created] = [e for e in entries if e["action"] == "webhook.create"]
    assert created["detail"]["url"] == "https://hooks.example.test/…"  # a chat URL's path posts
    [stores] = [e for e in entries if e["action"] == "stores.put"]  # one entry for the batch
    assert stores["detail"] == {"stores": ["s3"], "count": 1}
    for expected in (
        ("staff.put", "staff:lead"),
        ("staff.import", "staff:crew-9"),
        ("staff.deactivate", "staff:crew-9"),
        ("shifts.put", "staff:lead"),
        ("override.add", "staff:lead"),
        ("webhook.create", f"webhook:{hook_id}"),
        ("webhook.rotate_secret", f"webhook:{hook_id}"),
        ("webhook.delete", f"webhook:{hook_id}"),
    ):
        assert expected in seen, (expected, sorted(seen))
