"""A fresh store in the running system, with its own API key, staff and devices at the push
emulator: a test that counts alerts or pushes of one store gets a store no other test touches."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import RunningSystem
from voc_cli.push_emulator import PushEmulator


@dataclass
class FreshStore:
    id: str
    area_id: str
    api_key: str
    #: role -> (staff id, e-mail, password, push emulator subscription id)
    staff: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def subscription(self, role: str) -> str:
        return self.staff[role][3]


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def fresh_store(
    system: RunningSystem,
    emulator: PushEmulator,
    *,
    area_id: str | None = None,
    roles: tuple[str, ...] = ("staff", "shift_lead", "store_manager"),
    language: str = "ko",
) -> FreshStore:
    """A new store (in feedback and notify), a key for it, one staff member per role (plus the
    area's manager when `roles` has area_manager), each with a phone at the emulator."""
    tag = secrets.token_hex(4)
    store_id, area = f"store-t{tag}", area_id or f"area-t{tag}"
    admin = system.admin_headers
    with httpx.Client(timeout=30.0, headers=admin, trust_env=False) as client:
        store = {
            "id": store_id,
            "name": f"테스트점 {tag}",
            "area_id": area,
            "timezone": "Asia/Seoul",
            "language": language,
            "format": "restaurant",
            "region": "seoul",
        }
        _ok(client.put(f"{system.url('notify')}/v1/admin/stores", json=[store]))
        _ok(
            client.put(
                f"{system.url('feedback')}/v1/admin/stores",
                json=[{"id": store_id, "name": store["name"], "area_id": area}],
            )
        )
        key = _ok(
            client.post(
                f"{system.url('feedback')}/v1/admin/api-keys",
                json={"name": f"test {store_id}", "store_ids": [store_id]},
            )
        )["api_key"]
        people = []
        for role in roles:
            password = "pw-" + secrets.token_urlsafe(12)
            people.append(
                {
                    "id": f"{role}-{tag}",
                    "name": f"{role} {tag}",
                    "role": role,
                    "email": f"{role}.{tag}@test.demo",
                    "password": password,
                    "language": language,
                    "store_ids": [] if role == "area_manager" else [store_id],
                    "area_id": area if role == "area_manager" else None,
                }
            )
        _ok(client.put(f"{system.url('notify')}/v1/admin/staff", json=people))
    made = FreshStore(store_id, area, key)
    for person in people:
        token = _ok(
            httpx.post(
                f"{system.url('notify')}/v1/auth/login",
                json={"email": person["email"], "password": person["password"]},
            )
        )["access_token"]
        subscription = emulator.new_subscription(label=f"{person['role']} {store_id}")
        _ok(
            httpx.post(
                f"{system.url('notify')}/v1/devices",
                json=subscription,
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        made.staff[person["role"]] = (
            person["id"],
            person["email"],
            person["password"],
            emulator.subscription_id(subscription),
        )
    return made


def staff_headers(system: RunningSystem, store: FreshStore, role: str) -> dict[str, str]:
    _, email, password, _ = store.staff[role]
    body = _ok(
        httpx.post(f"{system.url('notify')}/v1/auth/login", json={"email": email, "password": password})
    )
    return {"Authorization": f"Bearer {body['access_token']}"}
