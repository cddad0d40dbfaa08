"""#18 end to end, against the system as processes (nats-server, the four services, the push
emulator as the phones' push service): pattern alerts, heads-up on arrival through profile's
check-in, and the checklist kept server-side with plan adherence reaching the analytics."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.stores import FreshStore, fresh_store, staff_headers
from tests.support.system import wait_for
from voc_cli.push_emulator import PushEmulator

WAIT_TEXT = "주문하고 40분을 기다렸어요. 너무 오래 걸려요."


def post(system: RunningSystem, store: FreshStore, body: dict[str, Any]) -> str:
    response = httpx.post(
        f"{system.url('feedback')}/v1/feedback", json={"store_id": store.id, **body}, headers=store.headers()
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def alerts(system: RunningSystem, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{system.url('notify')}/v1/alerts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["alerts"])


def detail(system: RunningSystem, headers: dict[str, str], alert_id: str) -> dict[str, Any]:
    response = httpx.get(f"{system.url('notify')}/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def check_in(system: RunningSystem, token: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{system.url('profile')}/v1/visits",
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
    )


@pytest.fixture(scope="module")
def store(running_system: RunningSystem, push_emulator: PushEmulator) -> FreshStore:
    return fresh_store(
        running_system, push_emulator, roles=("staff", "shift_lead", "store_manager", "area_manager")
    )


def test_a_burst_of_ten_complaints_gives_one_pattern_alert_and_no_paging_storm(
    running_system: RunningSystem, push_emulator: PushEmulator, store: FreshStore
) -> None:
    tag = secrets.token_hex(3)
    manager = staff_headers(running_system, store, "store_manager")
    ids = [
        post(
            running_system,
            store,
            {
                "channel": "kiosk",
                "text": WAIT_TEXT,
                "ratings": {"csat": 1},
                "customer": {"loyalty_id": f"L-burst-{tag}-{i}"},
            },
        )
        for i in range(10)
    ]

    def pattern_with_every_item() -> dict[str, Any] | None:
        found = alerts(running_system, manager, kind="pattern")
        mine = [a for a in found if a["store_id"] == store.id]
        if not mine:
            return None
        full = detail(running_system, manager, mine[0]["id"])
        return full if len(full["items"]) == 10 else None

    pattern = wait_for(pattern_with_every_item, timeout=30)
    # Exactly one pattern alert for the store, listing all ten items, for the store manager.
    mine = [a for a in alerts(running_system, manager, kind="pattern") if a["store_id"] == store.id]
    assert [a["id"] for a in mine] == [pattern["id"]]
    assert (
        pattern["kind"] == "pattern" and pattern["category"] == "wait_time" and pattern["feedback_id"] is None
    )
    assert {i["feedback_id"] for i in pattern["items"]} == set(ids)
    assert pattern["customer"]["pattern"]["customers"] == 10
    assert pattern["plan"]["playbook_id"] == "pattern-default" and pattern["plan"]["steps"]
    # Every feedback item still made its own alert for the floor staff.
    feedback_alerts = [
        a for a in alerts(running_system, manager, kind="feedback") if a["store_id"] == store.id
    ]
    assert {a["feedback_id"] for a in feedback_alerts} == set(ids)
    # No paging storm: the manager's phone got the pattern alert once (later items folded in
    # re-push under the same Topic at most every VOC_NOTIFY_PATTERN_REPUSH_SECONDS, 300 s).
    manager_phone = store.subscription("store_manager")
    topic = pattern["id"].replace("-", "")
    push_emulator.wait_for_count(1, timeout=10, subscription_id=manager_phone)
    pattern_pushes = [
        p for p in push_emulator.received(manager_phone) if p.json and p.json["kind"] == "pattern"
    ]
    assert len(pattern_pushes) == 1 and pattern_pushes[0].topic == topic
    payload = pattern_pushes[0].json
    assert payload["alert_id"] == pattern["id"] and "feedback_id" not in payload
    assert "L-burst" not in payload["body"]  # masked, small
    with pytest.raises(TimeoutError):
        push_emulator.wait_for_count(
            len(push_emulator.received(manager_phone)) + 1, timeout=1.5, subscription_id=manager_phone
        )


def _vip(system: RunningSystem, tag: str) -> str:
    loyalty = f"L-vip-{tag}"
    response = httpx.post(
        f"{system.url('profile')}/v1/customers",
        json={
            "customers": [
                {"loyalty_id": loyalty, "name": "김민수", "tier": "vip", "preferred_language": "ko"}
            ]
        },
        headers=system.admin_headers,
    )
    assert response.status_code == 200, response.text
    return loyalty


def test_a_heads_up_reaches_the_staff_on_duty_within_a_second_once_a_day(
    running_system: RunningSystem, push_emulator: PushEmulator, store: FreshStore
) -> None:
    tag = secrets.token_hex(3)
    loyalty = _vip(running_system, tag)
    lead = staff_headers(running_system, store, "shift_lead")
    # Last time went wrong: cold food, resolved with a refund.
    feedback_id = post(
        running_system,
        store,
        {
            "channel": "app",
            "text": "음식이 식어서 나왔어요. 맛도 없고 실망했어요.",
            "ratings": {"csat": 1},
            "customer": {"loyalty_id": loyalty},
        },
    )
    first = wait_for(
        lambda: [a for a in alerts(running_system, lead) if a["feedback_id"] == feedback_id], timeout=15
    )[0]
    resolved = httpx.post(
        f"{running_system.url('notify')}/v1/alerts/{first['id']}/resolve",
        json={"outcome": "compensated", "note": "환불"},
        headers=lead,
    )
    assert resolved.status_code == 200, resolved.text

    phone = store.subscription("shift_lead")
    before = len(push_emulator.received(phone))
    started = time.monotonic()
    response = check_in(
        running_system,
        store.api_key,
        {"store_id": store.id, "customer": {"loyalty_id": loyalty}, "channel": "pos", "amount": 23000},
    )
    assert response.status_code == 202, response.text
    assert response.json()["heads_up"] is True
    pushes = push_emulator.wait_for_count(before + 1, timeout=5, subscription_id=phone)
    elapsed = pushes[-1].received_monotonic - started
    heads_up = pushes[-1].json
    assert heads_up["kind"] == "heads_up" and "feedback_id" not in heads_up
    assert elapsed < 1.0, f"heads-up took {elapsed:.3f}s"
    assert "김**" in heads_up["title"] and "김민수" not in heads_up["title"] + heads_up["body"]
    alert = detail(running_system, lead, heads_up["alert_id"])
    assert alert["kind"] == "heads_up" and alert["plan"]["playbook_id"] == "heads-up-vip"
    arrival = alert["items"][0]
    assert arrival["last_contact"]["feedback_id"] == feedback_id
    assert arrival["last_contact"]["outcome"] == "compensated"
    assert any("음식" in r and "보상함" in r for r in arrival["reasons_ko"]), arrival["reasons_ko"]
    assert "김민수" in alert["plan"]["script"]  # greet by name: in the app, never on the lock screen
    # The customer's story, as a complaint's alert shows it: the app read an empty one as "first
    # contact, no visits" on a customer who complained an hour ago (apps review).
    story = alert["customer"]
    assert story["known"] and story["signals"]["vip"] is True
    assert feedback_id in [c["feedback_id"] for c in story["recent_contacts"]], story
    assert "김민수" not in str(story)

    # A second check-in the same day: profile accepts the visit, notify pages nobody again.
    again = check_in(
        running_system, store.api_key, {"store_id": store.id, "customer": {"loyalty_id": loyalty}}
    )
    assert again.status_code == 202
    with pytest.raises(TimeoutError):
        push_emulator.wait_for_count(before + 2, timeout=2.0, subscription_id=phone)
    ups = [a for a in alerts(running_system, lead, kind="heads_up") if a["store_id"] == store.id]
    assert len(ups) == 1


def test_check_in_bad_input(running_system: RunningSystem, store: FreshStore) -> None:
    tag = secrets.token_hex(3)
    loyalty = _vip(running_system, tag)
    body = {"store_id": store.id, "customer": {"loyalty_id": loyalty}}
    admin = running_system.system.admin_token
    other_key = running_system.store("store-gangnam")["api_key"]

    def problem(response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return dict(response.json())

    problem(check_in(running_system, "vocsk_not-a-key", body), 401)
    assert "may not act for store" in problem(check_in(running_system, other_key, body), 403)["detail"]
    unknown_store = problem(check_in(running_system, admin, {**body, "store_id": "store-nowhere"}), 422)
    assert unknown_store["errors"][0]["field"] == "body.store_id"
    nobody = problem(
        check_in(running_system, store.api_key, {**body, "customer": {"loyalty_id": "L-nobody"}}), 422
    )
    assert nobody["errors"][0]["field"] == "body.customer"
    phone = problem(check_in(running_system, store.api_key, {**body, "customer": {"phone": "12"}}), 422)
    assert phone["errors"][0]["field"] == "body.customer.phone"
    empty = problem(check_in(running_system, store.api_key, {**body, "customer": {}}), 422)
    assert empty["errors"][0]["field"] == "body.customer"

    key = f"ci-{tag}"
    first = check_in(running_system, store.api_key, body, **{"Idempotency-Key": key})
    replay = check_in(running_system, store.api_key, body, **{"Idempotency-Key": key})
    assert first.status_code == replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"] and replay.headers["Idempotent-Replayed"] == "true"
    problem(check_in(running_system, store.api_key, {**body, "amount": 1}, **{"Idempotency-Key": key}), 409)
    # The admin token may check in at any store.
    assert (
        check_in(running_system, admin, {**body, "occurred_at": "2026-12-01T12:00:00+09:00"}).status_code
        == 202
    )
    context = httpx.get(
        f"{running_system.url('profile')}/v1/customers/{first.json()['customer_id']}/context",
        headers=running_system.admin_headers,
    ).json()
    # The idempotent pair is one visit, the admin's another; nothing of the refused ones.
    assert sum(1 for v in context["last_visits"] if v["store_id"] == store.id) == 2


def test_the_checklist_is_kept_and_adherence_reaches_the_analytics(
    running_system: RunningSystem, store: FreshStore
) -> None:
    lead = staff_headers(running_system, store, "shift_lead")
    manager = staff_headers(running_system, store, "store_manager")
    feedback_id = post(
        running_system,
        store,
        {"channel": "kiosk", "text": "직원이 불친절했어요. 인사도 안 하네요.", "ratings": {"csat": 2}},
    )
    alert = wait_for(
        lambda: [a for a in alerts(running_system, lead) if a["feedback_id"] == feedback_id], timeout=15
    )[0]
    url = f"{running_system.url('notify')}/v1/alerts/{alert['id']}"
    total = len(detail(running_system, lead, alert["id"])["plan"]["steps"])
    assert total >= 2
    for index in (0, 1):
        ticked = httpx.put(f"{url}/steps/{index}", json={"done": True}, headers=lead)
        assert ticked.status_code == 200, ticked.text
    assert httpx.put(f"{url}/steps/1", json={"done": False}, headers=lead).status_code == 200
    assert httpx.put(f"{url}/steps/1", json={"done": True}, headers=lead).status_code == 200
    bad = httpx.put(f"{url}/steps/{total}", json={"done": True}, headers=lead)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.index"
    assert httpx.put(f"{url}/steps/0", json={"done": "yes"}, headers=lead).status_code == 422
    # Every tick is in notify's audit log too (#18 §5: audited), with who ticked which step.
    logged = httpx.get(
        f"{running_system.url('notify')}/v1/audit",
        params={"action": "alert.step", "target": f"alert:{alert['id']}"},
        headers=running_system.admin_headers,
    )
    assert logged.status_code == 200, logged.text
    steps = [(e["detail"]["index"], e["detail"]["done"]) for e in reversed(logged.json()["entries"])]
    assert steps == [(0, True), (1, True), (1, False), (1, True)]
    assert {e["actor"] for e in logged.json()["entries"]} == {f"staff:{store.staff['shift_lead'][0]}"}

    seen = detail(running_system, lead, alert["id"])
    lead_id = store.staff["shift_lead"][0]
    assert [(s["index"], s["done"], s["done_by"]) for s in seen["checklist"][:2]] == [
        (0, True, lead_id),
        (1, True, lead_id),
    ]
    assert "checklist_log" not in seen  # the tick-by-tick log is the managers'
    log = detail(running_system, manager, alert["id"])["checklist_log"]
    assert [(m["index"], m["done"]) for m in log] == [(0, True), (1, True), (1, False), (1, True)]

    assert httpx.post(f"{url}/resolve", json={"outcome": "resolved"}, headers=lead).status_code == 200
    assert httpx.put(f"{url}/steps/2", json={"done": True}, headers=lead).status_code == 409

    def adherence() -> dict[str, Any] | None:
        body = httpx.get(
            f"{running_system.url('feedback')}/v1/analytics",
            params={"store_id": store.id},
            headers=running_system.admin_headers,
        ).json()
        rows = [r for r in body["plan_adherence"]["by_store"] if r["store_id"] == store.id]
        return rows[0] if rows and rows[0]["alerts"] >= 1 else None

    row = wait_for(adherence, timeout=15)
    assert row["steps_done"] >= 2 and row["steps_total"] >= total


def test_a_store_key_cannot_sweep_the_chain_with_check_ins(
    running_system: RunningSystem, store: FreshStore
) -> None:
    """A check-in answers whether an identifier is a customer (and a VIP): a store key is held to
    `VOC_PROFILE_CHECKIN_RATE_LIMIT_*` (5/s, burst 30), so a key cannot try the chain's phone
    numbers one after another (security review); the admin token is not limited."""
    made = httpx.post(
        f"{running_system.url('feedback')}/v1/admin/api-keys",
        json={"name": "sweeper", "store_ids": [store.id]},
        headers=running_system.admin_headers,
    )
    assert made.status_code == 201, made.text
    key = made.json()["api_key"]
    body = {"store_id": store.id, "customer": {"phone": "010-0000-0000"}}
    with httpx.Client(timeout=10) as client:
        codes = [
            client.post(
                f"{running_system.url('profile')}/v1/visits",
                json={**body, "customer": {"phone": f"010-5555-{i:04d}"}},
                headers={"Authorization": f"Bearer {key}"},
            )
            for i in range(40)
        ]
    statuses = [r.status_code for r in codes]
    assert statuses[:25] == [422] * 25, statuses  # unknown numbers, answered
    refused = next(r for r in codes if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"].startswith("application/problem+json")
    admin = running_system.system.admin_token
    assert all(check_in(running_system, admin, body).status_code == 422 for _ in range(35))
