"""The fleet's health (#23): the app reports its permission, push state and version per install;
a store manager sees, per staff member of their stores, each device's last accepted and shown
push, whether it is suspect or silent for a day, and who cannot receive pages; lower roles and
other stores are 403."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, add_device, make_notify
from voc_notify import auth
from voc_notify.models import Device

PASSWORD = "right-password-1"
DAY = 86400


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[Notify]:
    service = await make_notify(databases, auth.hash_password(PASSWORD), login_address_burst=100)
    yield service
    await service.database.dispose()


def person(staff_id: str, role: str, stores: list[str]) -> dict[str, Any]:
    return {
        "id": staff_id,
        "name": staff_id.title(),
        "email": f"{staff_id}@x.demo",
        "password": PASSWORD,
        "role": role,
        "store_ids": stores,
    }


async def headers(client: httpx.AsyncClient, staff_id: str) -> dict[str, str]:
    answer = await client.post("/v1/auth/login", json={"email": f"{staff_id}@x.demo", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def endpoint(name: str) -> dict[str, Any]:
    return {"endpoint": f"https://fcm.googleapis.com/fcm/send/{name}", "keys": {"p256dh": "k", "auth": "a"}}


async def test_a_store_manager_sees_who_cannot_receive_pages(notify: Notify) -> None:
    now = time.time()
    async with notify.client() as client:
        staff = [
            person("mgr", "store_manager", ["s1"]),
            person("ok", "staff", ["s1"]),
            person("quiet", "staff", ["s1"]),
            person("far", "staff", ["s2"]),
        ]
        assert (await client.put("/v1/admin/staff", headers=ADMIN, json=staff)).status_code == 200
        await add_device(notify.database, "ok", endpoint("ok"), "dev-ok")
        await add_device(notify.database, "quiet", endpoint("quiet"), "dev-quiet")
        async with notify.database.transaction() as s:
            ok = await s.get(Device, "dev-ok")
            quiet = await s.get(Device, "dev-quiet")
            assert ok is not None and quiet is not None
            ok.last_success_at, ok.last_shown_at = now - 60, now - 59
            quiet.created_at, quiet.last_success_at, quiet.last_shown_at = (
                now - 9 * DAY,
                now - DAY,
                now - 2 * DAY,
            )

        lead = await headers(client, "lead")
        report = {
            "install_id": "install-lead-0001",
            "permission": "denied",
            "push": "none",
            "app_version": "2026.12.1",
            "standalone": True,
        }
        assert (await client.post("/v1/installs", headers=lead, json=report)).status_code == 204
        ok_h = await headers(client, "ok")
        healthy = report | {
            "install_id": "install-ok-0001",
            "permission": "granted",
            "push": "subscribed",
            "device_id": "dev-ok",
        }
        assert (await client.post("/v1/installs", headers=ok_h, json=healthy)).status_code == 204
        bad = await client.post("/v1/installs", headers=lead, json=report | {"permission": "maybe"})
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["body.permission"]
        # A JSON boolean is true or false: "yes" and 0 were read as booleans (schemathesis).
        for standalone in ("yes", 0):
            bad = await client.post("/v1/installs", headers=lead, json=report | {"standalone": standalone})
            assert [e["field"] for e in bad.json()["errors"]] == ["body.standalone"]
        assert (await client.post("/v1/installs", json=report)).status_code == 401

        assert (await client.get("/v1/fleet", headers=lead)).status_code == 403
        mgr = await headers(client, "mgr")
        assert (await client.get("/v1/fleet", headers=mgr, params={"store_id": "s2"})).status_code == 403
        answer = await client.get("/v1/fleet", headers=mgr)
        assert answer.status_code == 200, answer.text
        fleet = answer.json()
    people = {p["staff_id"]: p for p in fleet["staff"]}
    assert set(people) == {"lead", "mgr", "ok", "quiet"}, "only the manager's store"
    assert (fleet["staff_count"], fleet["cannot_receive"], fleet["silent_devices"]) == (4, 3, 1)
    assert people["ok"]["can_receive"] and people["ok"]["problems"] == []
    assert people["ok"]["devices"][0]["app_version"] == "2026.12.1"
    assert people["ok"]["last_shown_at"] == pytest.approx(now - 59)
    assert people["lead"]["problems"] == ["no_device", "permission_denied"]
    assert people["lead"]["installs"][0]["standalone"] is True
    assert people["quiet"]["problems"] == ["silent_device"] and people["quiet"]["devices"][0]["silent"]
    assert people["mgr"]["problems"] == ["no_device"]
