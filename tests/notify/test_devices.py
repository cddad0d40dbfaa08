"""A push endpoint is bound to the staff member who registered it: re-registering it is
idempotent for them, and 409 for anyone else (it used to move the device to the caller,
silencing the owner's phone and letting the caller delete it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from tests.notify.test_webpush import fake_keys
from voc_notify import api
from voc_notify.models import Device
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform.db import Database
from voc_platform.identity import Principal, issue_token

ENDPOINT = "https://fcm.googleapis.com/fcm/send/device-binding-test"


@pytest.fixture
async def client(notify_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(VOC_ENV="test")
    app = api.build_app(
        settings, notify_db, vapid=VapidKeys.generate(), allowlist=PushAllowlist(), broker=AlertBroker()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n.test") as c:
        yield c


def staff(staff_id: str, role: str = "shift_lead") -> dict[str, str]:
    token = issue_token(Principal(staff_id, role, ("s1",), None), secret=Settings().jwt_secret, ttl=600)
    return {"Authorization": f"Bearer {token}"}


async def owner_of(db: Database, device_id: str) -> str | None:
    async with db.session() as s:
        return await s.scalar(select(Device.staff_id).where(Device.id == device_id))


async def test_an_endpoint_stays_with_its_owner(client: httpx.AsyncClient, notify_db: Database) -> None:
    first = await client.post(
        "/v1/devices", json={"endpoint": ENDPOINT, "keys": fake_keys()}, headers=staff("lead")
    )
    assert first.status_code == 201, first.text
    device_id = first.json()["id"]
    # The owner re-registering (new keys after a browser update, say): the same device.
    again = await client.post(
        "/v1/devices", json={"endpoint": ENDPOINT, "keys": fake_keys()}, headers=staff("lead")
    )
    assert again.status_code == 201 and again.json() == {"id": device_id}

    taken = await client.post(
        "/v1/devices", json={"endpoint": ENDPOINT, "keys": fake_keys()}, headers=staff("mgr", "store_manager")
    )
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"].startswith("application/problem+json")
    assert taken.json()["status"] == 409 and "another staff member" in taken.json()["detail"]
    assert await owner_of(notify_db, device_id) == "lead"
    # Nor can the other staff member remove it.
    gone = await client.delete(f"/v1/devices/{device_id}", headers=staff("mgr", "store_manager"))
    assert gone.status_code == 404
    assert await owner_of(notify_db, device_id) == "lead"

    # Once the owner removes it, the endpoint is free again.
    assert (await client.delete(f"/v1/devices/{device_id}", headers=staff("lead"))).status_code == 204
    mine = await client.post(
        "/v1/devices", json={"endpoint": ENDPOINT, "keys": fake_keys()}, headers=staff("mgr", "store_manager")
    )
    assert mine.status_code == 201 and await owner_of(notify_db, mine.json()["id"]) == "mgr"
