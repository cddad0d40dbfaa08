"""The walking skeleton, end to end, against the real system running as processes:
store app -> feedback (REST) -> NATS -> notify -> profile + actions (gRPC) -> Web Push -> phone,
then acknowledge and resolve from the phone and watch the feedback's status follow."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.system import login, post_feedback, wait_for
from voc_cli.push_emulator import PushEmulator

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam


@pytest.fixture(scope="module")
def phone(running_system: RunningSystem, push_emulator: PushEmulator) -> dict[str, Any]:
    """The shift lead's phone: a subscription at the push-service emulator, registered."""
    headers = login(running_system, LEAD)
    subscription = push_emulator.new_subscription(label=LEAD)
    response = httpx.post(f"{running_system.url('notify')}/v1/devices", json=subscription, headers=headers)
    assert response.status_code == 201, response.text
    return {
        "headers": headers,
        "subscription": subscription,
        "id": push_emulator.subscription_id(subscription),
    }


def test_feedback_reaches_the_phone_and_the_loop_closes(
    running_system: RunningSystem, push_emulator: PushEmulator, phone: dict[str, Any]
) -> None:
    notify = running_system.url("notify")
    feedback_url = running_system.url("feedback")
    # A VIP of this test's own: other tests' open alerts for the demo VIP would absorb this
    # complaint (a repeat within the window updates the open alert instead of paging again).
    loyalty_id = f"L-E2E-{uuid.uuid4().hex[:8]}"
    crm = httpx.post(
        f"{running_system.url('profile')}/v1/customers",
        headers=running_system.admin_headers,
        json={
            "customers": [
                {
                    "loyalty_id": loyalty_id,
                    "phone": "010-4321-8765",
                    "name": "김하늘",
                    "tier": "vip",
                    "lifetime_value": 9_000_000,
                }
            ]
        },
    )
    assert crm.status_code == 200, crm.text
    sent = time.time()
    response = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "국에서 머리카락이 나왔어요. 직원분도 사과 없이 그냥 가져가셨네요.",
            "ratings": {"csat": 1},
            "customer": {"loyalty_id": loyalty_id, "phone": "010-4321-8765"},
        },
    )
    assert response.status_code == 202, response.text
    feedback_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/feedback/{feedback_id}"

    push = push_emulator.wait_for_count(1, timeout=15, subscription_id=phone["id"])[0]
    latency = push.received_at - sent
    payload = push.json
    assert set(payload) >= {"alert_id", "feedback_id", "title", "body", "priority", "url"}
    assert payload["feedback_id"] == feedback_id
    assert "강남역점" in payload["title"]
    # Masked PII only: the customer's name and phone never travel in the push.
    assert "김하늘" not in payload["body"] and "4321-8765" not in payload["body"]
    assert "김**" in payload["body"]
    assert push.ttl >= 900  # covers the escalation window
    assert push.urgency in ("high", "normal")
    print(f"\nfeedback -> decrypted push at the phone: {latency * 1000:.0f} ms (first, cold)")

    alert_id = payload["alert_id"]
    inbox = httpx.get(f"{notify}/v1/alerts", headers=phone["headers"]).json()["alerts"]
    assert alert_id in [a["id"] for a in inbox]
    detail = httpx.get(f"{notify}/v1/alerts/{alert_id}", headers=phone["headers"]).json()
    assert detail["feedback"]["id"] == feedback_id
    assert detail["customer"]["known"] is True and detail["customer"]["tier"] == "vip"
    assert detail["customer"]["masked_name"] == "김**"
    assert detail["plan"]["playbook_id"] and detail["plan"]["steps"]
    assert detail["plan"]["matched_because"]
    assert detail["degraded"] == []

    admin = running_system.admin_headers
    item = wait_for(
        lambda: (
            (r := httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json())["status"]
            == "alerted"
            and r
        )
    )
    assert item["classification"]["sentiment"] == "negative"
    assert item["customer_id"]

    ack = httpx.post(f"{notify}/v1/alerts/{alert_id}/ack", headers=phone["headers"])
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    wait_for(
        lambda: (
            httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json()["status"]
            == "acknowledged"
        )
    )

    resolved = httpx.post(
        f"{notify}/v1/alerts/{alert_id}/resolve",
        headers=phone["headers"],
        json={"outcome": "compensated", "note": "국 교체, 음료 제공"},
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    final = wait_for(
        lambda: (
            (r := httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json())["status"]
            == "resolved"
            and r
        )
    )
    kinds = [t["kind"] for t in final["timeline"]]
    assert kinds[0] == "received" and {"alerted", "acknowledged", "resolved"} <= set(kinds)

    # The customer answers the follow-up survey unhappy: the case reopens as a new linked item,
    # which pages the phone again as an alert of its own (the first alert is resolved).
    follow_up_url = wait_for(
        lambda: (
            httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json().get("follow_up")
            or {}
        ).get("url")
    )
    token = follow_up_url.rsplit("/", 1)[1]
    answer = httpx.post(
        f"{feedback_url}/f/{token}",
        json={"csat": 1, "revisit_intent": False, "comment": "사과만 하고 끝이네요"},
    )
    assert answer.status_code == 200, answer.text
    reopened_id = answer.json()["reopened_feedback_id"]
    repage = wait_for(
        lambda: next((p for p in push_emulator.received() if p.json.get("feedback_id") == reopened_id), None)
    )
    assert repage.json["alert_id"] != alert_id
    again = httpx.get(f"{notify}/v1/alerts/{repage.json['alert_id']}", headers=phone["headers"]).json()
    assert again["feedback"]["id"] == reopened_id and again["status"] == "open"
    assert again["customer"]["known"] is True and again["customer"]["tier"] == "vip"
    assert again["plan"]["playbook_id"] and again["plan"]["steps"]
    wait_for(
        lambda: (
            httpx.get(f"{feedback_url}/v1/feedback/{reopened_id}", headers=admin).json()["status"]
            == "alerted"
        )
    )
    assert (
        httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json()["status"] == "reopened"
    )

    # A second, warm feedback: the happy path well inside one second.
    sent = time.time()
    response = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": "Waited 40 minutes for a cold burger.",
            "ratings": {"csat": 2},
        },
    )
    assert response.status_code == 202
    second_id = response.json()["id"]
    push = wait_for(
        lambda: next((p for p in push_emulator.received() if p.json.get("feedback_id") == second_id), None)
    )
    warm = push.received_at - sent
    print(f"feedback -> decrypted push at the phone: {warm * 1000:.0f} ms (warm)")
    assert warm < 1.0


def test_bad_intake_requests_get_problem_json(running_system: RunningSystem) -> None:
    url = f"{running_system.url('feedback')}/v1/feedback"
    good = {"store_id": "store-gangnam", "channel": "kiosk", "text": "ok"}
    key = running_system.store()["api_key"]

    def problem(response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body: dict[str, Any] = response.json()
        assert body["status"] == status and body["title"] and body["detail"]
        return body

    problem(httpx.post(url, json=good), 401)
    problem(httpx.post(url, json=good, headers={"Authorization": "Bearer nope"}), 401)
    body = problem(
        httpx.post(url, json={**good, "store_id": "store-busan"}, headers={"Authorization": f"Bearer {key}"}),
        403,
    )
    assert "store-busan" in body["detail"]
    body = problem(
        httpx.post(
            url,
            json={"store_id": "store-gangnam", "channel": "fax", "ratings": {"csat": 9}, "extra": 1},
            headers={"Authorization": f"Bearer {key}"},
        ),
        422,
    )
    fields = {e["field"] for e in body["errors"]}
    assert {"body.channel", "body.ratings.csat", "body.extra"} <= fields
    problem(
        httpx.post(
            url,
            content=b"x" * (65 * 1024),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ),
        413,
    )
    problem(
        httpx.post(
            url,
            content=b"{not json",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ),
        400,
    )
