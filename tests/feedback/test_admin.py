"""Store API keys (create, list, rotate with a grace period, revoke; hashed, shown once) and the
store -> area directory, over the admin REST API; bad requests answered with problem+json."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.feedback.conftest import FeedbackService, problem
from voc_platform.identity import Principal, issue_token
from voc_platform.settings import DEV_JWT_SECRET

STORE = "admin-store"


def post_ok(service: FeedbackService, key: dict[str, Any]) -> int:
    return service.post(key, {"store_id": STORE, "channel": "kiosk", "ratings": {"csat": 5}}).status_code


def test_keys_are_hashed_and_shown_once(feedback_service: FeedbackService) -> None:
    created = feedback_service.new_key(STORE, STORE, name="키오스크 1")
    assert created["api_key"].startswith("vocsk_") and created["store_ids"] == [STORE]
    stored = feedback_service.scalar("SELECT key_hash FROM api_keys WHERE id = :i", i=created["id"])
    assert stored == hashlib.sha256(created["api_key"].encode()).hexdigest()
    listed = httpx.get(f"{feedback_service.url}/v1/admin/api-keys", headers=feedback_service.admin).json()
    mine = next(k for k in listed if k["id"] == created["id"])
    assert (
        "api_key" not in mine and mine["prefix"] == created["api_key"][:12] and mine["name"] == "키오스크 1"
    )
    assert (
        created["api_key"]
        not in httpx.get(f"{feedback_service.url}/v1/admin/api-keys", headers=feedback_service.admin).text
    )


def test_a_key_names_only_stores_in_the_directory(feedback_service: FeedbackService) -> None:
    """A misspelt store id made a key whose feedback no store's staff saw (API review): 422 naming
    each unknown id's place, and nothing created."""
    feedback_service.ensure_stores(STORE)
    before = feedback_service.scalar("SELECT count(*) FROM api_keys")
    answer = httpx.post(
        f"{feedback_service.url}/v1/admin/api-keys",
        json={"name": "typo", "store_ids": [STORE, "admin-stroe", "nowhere"]},
        headers=feedback_service.admin,
    )
    body = problem(answer, 422)
    assert [e["field"] for e in body["errors"]] == ["body.store_ids.1", "body.store_ids.2"]
    assert "unknown store 'admin-stroe'" in body["errors"][0]["message"]
    assert "PUT /v1/admin/stores" in body["detail"]
    assert feedback_service.scalar("SELECT count(*) FROM api_keys") == before


def test_rotation_keeps_the_old_key_for_the_grace_period(feedback_service: FeedbackService) -> None:
    old = feedback_service.new_key(STORE, name="rotating app")
    url = f"{feedback_service.url}/v1/admin/api-keys/{old['id']}/rotate"
    rotated = httpx.post(url, json={"grace_seconds": 3600}, headers=feedback_service.admin)
    assert rotated.status_code == 201, rotated.text
    new = {**rotated.json(), "headers": {"Authorization": f"Bearer {rotated.json()['api_key']}"}}
    assert new["api_key"] != old["api_key"] and new["store_ids"] == [STORE]
    assert post_ok(feedback_service, old) == 202 and post_ok(feedback_service, new) == 202
    listed = {
        k["id"]: k
        for k in httpx.get(f"{feedback_service.url}/v1/admin/api-keys", headers=feedback_service.admin).json()
    }
    assert listed[old["id"]]["replaced_by"] == new["id"] and listed[old["id"]]["expires_at"]
    # Rotating the retired key again is a conflict: rotate its successor.
    problem(httpx.post(url, headers=feedback_service.admin), 409)

    # With no grace the old key stops at once.
    second = httpx.post(
        f"{feedback_service.url}/v1/admin/api-keys/{new['id']}/rotate",
        json={"grace_seconds": 0},
        headers=feedback_service.admin,
    )
    assert second.status_code == 201
    problem(feedback_service.post(new, {"store_id": STORE, "channel": "kiosk", "text": "x"}), 401)


def test_revoked_keys_stop_working(feedback_service: FeedbackService) -> None:
    key = feedback_service.new_key(STORE, name="lost tablet")
    assert post_ok(feedback_service, key) == 202
    revoke = httpx.delete(
        f"{feedback_service.url}/v1/admin/api-keys/{key['id']}", headers=feedback_service.admin
    )
    assert revoke.status_code == 204
    problem(feedback_service.post(key, {"store_id": STORE, "channel": "kiosk", "text": "x"}), 401)
    problem(httpx.get(f"{feedback_service.url}/v1/feedback", headers=key["headers"]), 401)
    problem(
        httpx.post(
            f"{feedback_service.url}/v1/admin/api-keys/{key['id']}/rotate", headers=feedback_service.admin
        ),
        409,
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/v1/admin/api-keys", {"name": "x", "store_ids": []}, 422),
        ("post", "/v1/admin/api-keys", {"name": "", "store_ids": ["a"]}, 422),
        ("post", "/v1/admin/api-keys", {"name": "x", "store_ids": ["a"], "scope": "all"}, 422),
        # A store id no intake could name (schemathesis: a working key for "no\x02such store").
        ("post", "/v1/admin/api-keys", {"name": "x", "store_ids": ["no\x02such store"]}, 422),
        ("post", "/v1/admin/api-keys", {"name": "x", "store_ids": ["store-a", "a/b"]}, 422),
        ("post", "/v1/admin/api-keys/nope/rotate", None, 404),
        ("post", "/v1/admin/api-keys/nope/rotate", {"grace_seconds": -1}, 422),
        ("post", "/v1/admin/api-keys/nope/rotate", {"grace_seconds": 31 * 86400}, 422),
        ("delete", "/v1/admin/api-keys/nope", None, 404),
        ("put", "/v1/admin/stores", [{"id": "a b", "name": "x"}], 422),
        ("put", "/v1/admin/stores", [{"id": "a", "name": "\x00"}], 422),
        ("put", "/v1/admin/stores", [{"id": "a", "name": "x", "region": "?"}], 422),
        ("put", "/v1/admin/stores", [{"id": "dup", "name": "x"}, {"id": "dup", "name": "y"}], 422),
        ("put", "/v1/admin/stores", {"id": "a", "name": "x"}, 422),
    ],
)
def test_bad_admin_requests_write_nothing(
    feedback_service: FeedbackService, method: str, path: str, body: Any, status: int
) -> None:
    keys_before = feedback_service.scalar("SELECT count(*) FROM api_keys")
    stores_before = feedback_service.scalar("SELECT count(*) FROM stores")
    kwargs: dict[str, Any] = {"headers": feedback_service.admin}
    if body is not None:
        kwargs["json"] = body
    answer = problem(httpx.request(method, f"{feedback_service.url}{path}", **kwargs), status)
    if status == 422:
        assert answer["errors"] and all(e["field"].startswith("body") for e in answer["errors"])
    assert feedback_service.scalar("SELECT count(*) FROM api_keys") == keys_before
    assert feedback_service.scalar("SELECT count(*) FROM stores") == stores_before


def test_admin_calls_need_the_admin_token(feedback_service: FeedbackService) -> None:
    """Or a cx_admin's staff token (tests/security); a store key is no credential here (401)."""
    store_key = feedback_service.new_key(STORE)
    for method, path in (
        ("get", "/v1/admin/api-keys"),
        ("post", "/v1/admin/api-keys"),
        ("get", "/v1/admin/stores"),
        ("put", "/v1/admin/stores"),
    ):
        problem(httpx.request(method, f"{feedback_service.url}{path}"), 401)
        problem(httpx.request(method, f"{feedback_service.url}{path}", headers=store_key["headers"]), 401)


def test_store_directory_upserts(feedback_service: FeedbackService) -> None:
    url = f"{feedback_service.url}/v1/admin/stores"
    first = httpx.put(
        url, json=[{"id": "dir-1", "name": "강남역점", "area_id": "area-x"}], headers=feedback_service.admin
    )
    assert first.status_code == 200 and first.json() == [
        {"id": "dir-1", "name": "강남역점", "area_id": "area-x"}
    ]
    httpx.put(
        url,
        json=[{"id": "dir-1", "name": "강남역점 (리뉴얼)", "area_id": "area-y"}],
        headers=feedback_service.admin,
    )
    listed = {s["id"]: s for s in httpx.get(url, headers=feedback_service.admin).json()}
    assert listed["dir-1"] == {"id": "dir-1", "name": "강남역점 (리뉴얼)", "area_id": "area-y"}


def test_key_and_store_changes_are_audited_as_the_tokens_actor(feedback_service: FeedbackService) -> None:
    """#20 §6: creating, rotating and revoking a key and changing the store directory with a
    cx_admin's staff token are audited with that staff member (a self-declared header ignored)."""
    principal = Principal(staff_id="cx-audit", role="cx_admin", store_ids=(), area_id=None)
    cx = {
        "Authorization": f"Bearer {issue_token(principal, secret=DEV_JWT_SECRET, ttl=600)}",
        "X-Voc-Actor": "someone-else",
    }
    url = f"{feedback_service.url}/v1/admin"
    created = httpx.post(f"{url}/api-keys", json={"name": "audited", "store_ids": [STORE]}, headers=cx)
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    rotated = httpx.post(f"{url}/api-keys/{key_id}/rotate", json={"grace_seconds": 0}, headers=cx)
    assert rotated.status_code == 201, rotated.text
    new_id = rotated.json()["id"]
    assert httpx.delete(f"{url}/api-keys/{new_id}", headers=cx).status_code == 204
    stores = httpx.put(
        f"{url}/stores", json=[{"id": STORE, "name": "Admin store", "area_id": "area-audit"}], headers=cx
    )
    assert stores.status_code == 200, stores.text
    log = httpx.get(
        f"{feedback_service.url}/v1/audit", params={"actor": "staff:cx-audit"}, headers=feedback_service.admin
    )
    assert log.status_code == 200, log.text
    entries = log.json()["entries"]
    assert {(e["actor_role"], e["on_behalf_of"]) for e in entries} == {("cx_admin", None)}
    actions = {e["action"] for e in entries}
    assert {"api_key.create", "api_key.rotate", "api_key.revoke"} <= actions, actions
    assert "stores.put" in actions, actions


def test_a_chains_whole_store_directory_goes_in_one_call(feedback_service: FeedbackService) -> None:
    """1,000 stores are about 72 KiB of JSON: the 64 KiB limit of every other call refused them
    with 413. The directory takes a bulk body (up to 5,000 stores)."""
    stores = [
        {"id": f"bulk-{n:04d}", "name": f"프론트라인 {n}호점", "area_id": f"area-{n % 9}"}
        for n in range(1000)
    ]
    url = f"{feedback_service.url}/v1/admin/stores"
    answer = httpx.put(url, json=stores, headers=feedback_service.admin, timeout=30)
    assert len(answer.request.content) > 64 * 1024
    assert answer.status_code == 200, answer.text[:300]
    listed = {s["id"] for s in httpx.get(url, headers=feedback_service.admin).json()}
    assert listed >= {s["id"] for s in stores}
    too_many = [{"id": f"many-{n}", "name": "x"} for n in range(5001)]
    problem(httpx.put(url, json=too_many, headers=feedback_service.admin, timeout=30), 422)
