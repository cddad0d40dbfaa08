"""Outbound webhooks end to end (#19), against the system as processes (SQLite or PostgreSQL as
the suite runs): a receiver on loopback registered over the admin API hears every event type
this system makes, each signature checked with the `standardwebhooks` library; a receiver that
was down gets everything once it is back, under the same ids; bad registrations are 422 naming
the field. (Escalation, 410, 24 h of failures, a hanging receiver, the formats: in process,
tests/notify/test_webhooks.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import RunningSystem
from tests.notify.test_alerts_api import problem
from tests.support.system import login, post_feedback, wait_for
from tests.support.webhook_receiver import WebhookReceiver
from voc_notify.webhooks.catalog import EVENT_TYPES

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam


def hooks_url(system: RunningSystem, suffix: str = "") -> str:
    return f"{system.url('notify')}/v1/admin/webhooks{suffix}"


@pytest.fixture
def register(running_system: RunningSystem) -> Iterator[Any]:
    """Register endpoints for a test; each is deleted afterwards (other tests' events then
    reach nobody)."""
    made: list[str] = []

    def make(url: str, events: list[str], **more: Any) -> dict[str, Any]:
        r = httpx.post(
            hooks_url(running_system),
            headers=running_system.admin_headers,
            json={"url": url, "events": events, **more},
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        return dict(r.json())

    yield make
    for endpoint_id in made:
        httpx.delete(hooks_url(running_system, f"/{endpoint_id}"), headers=running_system.admin_headers)


def new_customer(system: RunningSystem) -> tuple[str, str]:
    loyalty_id = f"L-HOOK-{uuid.uuid4().hex[:8]}"
    r = httpx.post(
        f"{system.url('profile')}/v1/customers",
        headers=system.admin_headers,
        json={"customers": [{"loyalty_id": loyalty_id, "name": "박서준", "tier": "gold"}]},
    )
    assert r.status_code == 200, r.text
    return loyalty_id, str(r.json()[0]["customer_id"])


def alert_of(system: RunningSystem, staff: dict[str, str], feedback_id: str) -> str:
    def found() -> str | None:
        r = httpx.get(f"{system.url('notify')}/v1/alerts", params={"limit": 200}, headers=staff)
        assert r.status_code == 200, r.text
        return next((a["id"] for a in r.json()["alerts"] if a["feedback_id"] == feedback_id), None)

    return wait_for(found, timeout=30)


def test_a_receiver_hears_every_event_type_of_a_case_signed(
    running_system: RunningSystem, webhook_receiver: WebhookReceiver, register: Any
) -> None:
    endpoint = register(webhook_receiver.url("/all"), ["*"], description="the CRM")
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
    assert endpoint["events"] == ["*"] and endpoint["format"] == "standard"
    admin = running_system.admin_headers
    listed = httpx.get(hooks_url(running_system), headers=admin).json()["webhooks"]
    assert any(e["id"] == endpoint["id"] for e in listed) and "whsec_" not in str(listed)

    loyalty_id, customer_id = new_customer(running_system)
    text = "주문한 국이 식어서 나왔어요. 연락 주세요 010-2468-1357"
    sent = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": text,
            "ratings": {"csat": 1},
            "customer": {"loyalty_id": loyalty_id, "phone": "010-2468-1357", "email": "seojun@example.com"},
        },
    )
    assert sent.status_code == 202, sent.text
    feedback_id = sent.json()["id"]
    staff = login(running_system, LEAD)
    alert_id = alert_of(running_system, staff, feedback_id)
    notify = running_system.url("notify")
    r = httpx.post(f"{notify}/v1/alerts/{alert_id}/ack", headers=staff)
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{notify}/v1/alerts/{alert_id}/resolve",
        headers=staff,
        json={"outcome": "compensated", "note": "쿠폰"},
    )
    assert r.status_code == 200, r.text

    # The resolution opened the follow-up survey; the customer answers it.
    feedback = running_system.url("feedback")

    def follow_up_url() -> str | None:
        item = httpx.get(f"{feedback}/v1/feedback/{feedback_id}", headers=admin).json()
        return (item.get("follow_up") or {}).get("url")

    token = wait_for(follow_up_url, timeout=30).rsplit("/f/", 1)[1]
    answered = httpx.post(f"{feedback}/f/{token}", data={"csat": "5", "revisit_intent": "yes", "lang": "ko"})
    assert answered.status_code == 200, answered.text
    erased = httpx.delete(f"{running_system.url('profile')}/v1/customers/{customer_id}", headers=admin)
    assert erased.status_code == 200, erased.text

    expected = {
        "feedback.received",
        "feedback.classified",
        "alert.created",
        "alert.acknowledged",
        "alert.resolved",
        "follow_up.answered",
        "customer.erased",
    }

    def all_types() -> list[dict[str, Any]] | None:
        bodies = webhook_receiver.verified(endpoint["secret"], "/all")  # every signature checked
        mine = [b for b in bodies if _about(b, feedback_id, alert_id, customer_id)]
        return mine if {b["type"] for b in mine} >= expected else None

    bodies = {b["type"]: b for b in wait_for(all_types, timeout=60)}
    received = bodies["feedback.received"]["data"]
    assert received["feedback_id"] == feedback_id and received["store_id"] == "store-gangnam"
    assert received["customer"] == {
        "loyalty_id": "***" + loyalty_id[-4:],
        "phone": "***1357",
        "email": "s***@example.com",
        "channel": "kiosk",
    }
    classification = bodies["feedback.classified"]["data"]["classification"]
    assert classification["sentiment"] == "negative" and classification["category"]
    assert 0 <= classification["confidence"] <= 1 and classification["model_version"]
    assert bodies["alert.created"]["data"]["alert_id"] == alert_id
    assert bodies["alert.acknowledged"]["data"]["staff_id"] == bodies["alert.resolved"]["data"]["staff_id"]
    assert bodies["alert.resolved"]["data"]["outcome"] == "compensated"
    assert bodies["follow_up.answered"]["data"]["csat"] == 5
    assert bodies["customer.erased"]["data"]["customer_id"] == customer_id
    assert bodies["customer.erased"]["data"]["feedback_ids"] == [feedback_id]
    everything = orjson.dumps(list(bodies.values())).decode()
    # The phone in any spelling ("010-2468-1357", "+821024681357"), never a
    # four-digit piece: ids are hex and may hold "2468" by chance.
    for secret in ("2468-1357", "24681357", "seojun@", "식어서", "쿠폰", "박서준", token):
        assert secret not in everything, secret

    # What the admin sees: the attempts, the counts, a test message, a new secret, deletion.
    attempts = httpx.get(hooks_url(running_system, f"/{endpoint['id']}/deliveries"), headers=admin).json()
    assert attempts["attempts"] and all(a["status_code"] == 200 for a in attempts["attempts"])
    assert all(a["latency_ms"] is not None and a["attempted_at"] for a in attempts["attempts"])
    shown = httpx.get(hooks_url(running_system, f"/{endpoint['id']}"), headers=admin).json()
    assert shown["deliveries"]["delivered"] >= len(expected) and shown["status"] == "active"
    tested = httpx.post(hooks_url(running_system, f"/{endpoint['id']}/test"), headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
    rotated = httpx.post(hooks_url(running_system, f"/{endpoint['id']}/rotate-secret"), headers=admin)
    assert rotated.status_code == 200 and rotated.json()["secret"] != endpoint["secret"]
    tested = httpx.post(hooks_url(running_system, f"/{endpoint['id']}/test"), headers=admin)
    assert tested.json()["ok"] is True
    test_message = next(
        r for r in reversed(webhook_receiver.received) if r.webhook_id == tested.json()["delivery_id"]
    )
    assert (
        Webhook(rotated.json()["secret"]).verify(test_message.body, test_message.headers)["type"]
        == "webhook.test"
    )
    assert httpx.delete(hooks_url(running_system, f"/{endpoint['id']}"), headers=admin).status_code == 204
    problem(httpx.get(hooks_url(running_system, f"/{endpoint['id']}"), headers=admin), 404)


def _about(body: dict[str, Any], feedback_id: str, alert_id: str, customer_id: str) -> bool:
    data = body["data"]
    return feedback_id in (data.get("feedback_id"), data.get("reopened_feedback_id")) or (
        data.get("alert_id") == alert_id or data.get("customer_id") == customer_id
    )


def test_a_receiver_down_for_a_while_gets_everything_once_back(
    running_system: RunningSystem, webhook_receiver: WebhookReceiver, register: Any
) -> None:
    endpoint = register(webhook_receiver.url("/later"), ["feedback.received"])
    admin = running_system.admin_headers
    webhook_receiver.stop()
    ids = []
    for i in range(3):
        r = post_feedback(
            running_system,
            {"store_id": "store-gangnam", "channel": "app", "text": f"Slow service today ({i})"},
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])

    def failed_attempts() -> list[dict[str, Any]] | None:
        r = httpx.get(hooks_url(running_system, f"/{endpoint['id']}/deliveries"), headers=admin)
        found = [a for a in r.json()["attempts"] if a["error"] == "network error"]
        return found if len({a["delivery_id"] for a in found}) >= 3 else None

    refused = wait_for(failed_attempts, timeout=30)
    webhook_receiver.start()
    arrived = webhook_receiver.wait_for(3, "/later", timeout=60)
    bodies = webhook_receiver.verified(endpoint["secret"], "/later")
    assert sorted(b["data"]["feedback_id"] for b in bodies) == sorted(ids)
    assert {r.webhook_id for r in arrived} == {a["delivery_id"] for a in refused}  # the same ids


def test_the_types_to_subscribe_to_are_listed_and_each_is_accepted(
    running_system: RunningSystem, webhook_receiver: WebhookReceiver, register: Any
) -> None:
    """What the console's Webhooks form offers: notify's own catalogue, every type registrable."""
    listed = httpx.get(hooks_url(running_system, "/event-types"), headers=running_system.admin_headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"event_types": list(EVENT_TYPES)}
    endpoint = register(webhook_receiver.url("/every-type"), listed.json()["event_types"])
    assert endpoint["events"] == list(EVENT_TYPES)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "http://hooks.example.com/x", "events": ["*"]}, "url", "not on allowlist"),
        ({"url": "https://hooks.example.com/x", "events": ["*"]}, "url", "not on allowlist"),
        ({"url": "https://user:pw@127.0.0.1:9/x", "events": ["*"]}, "url", "userinfo"),
        ({"url": "https://10.0.0.8/x", "events": ["*"]}, "url", "private"),
        ({"url": "https://169.254.169.254/latest", "events": ["*"]}, "url", "private"),
        ({"url": "not a url", "events": ["*"]}, "url", "URL"),
        ({"url": "http://127.0.0.1:9/x", "events": ["alert.exploded"]}, "events", "unknown event type"),
        ({"url": "http://127.0.0.1:9/x", "events": ["*", "alert.created"]}, "events", "stands alone"),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "events", ""),
        ({"url": "http://127.0.0.1:9/x", "events": ["*"], "format": "discord"}, "format", ""),
    ],
)
def test_bad_registrations_are_refused_naming_the_field(
    running_system: RunningSystem, body: dict[str, Any], field: str, words: str
) -> None:
    admin = running_system.admin_headers
    before = httpx.get(hooks_url(running_system), headers=admin).json()["webhooks"]
    answer = problem(httpx.post(hooks_url(running_system), headers=admin, json=body), 422)
    fields = [e["field"] for e in answer.get("errors", [])]
    assert any(f.split(".")[1] == field for f in fields), answer
    assert words in str(answer), answer
    # The field names itself; its message is the reason alone (it read "body.url: url: …").
    assert not any(e["message"].startswith(f"{field}: ") for e in answer.get("errors", [])), answer
    assert httpx.get(hooks_url(running_system), headers=admin).json()["webhooks"] == before  # nothing written
