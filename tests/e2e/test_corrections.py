"""The staff app's correction path without a browser (#17): notify relays to feedback over gRPC
with the staff member's own token, so feedback's rule answers through notify: bad labels 422,
another store's alert 404, a body with a field notify does not know 422, each as problem+json
with nothing written; a good one reaches the case and the alert. (In Chromium:
tests/browser/test_corrections.py.)"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RunningSystem
from tests.e2e.test_webhooks import alert_of
from tests.notify.test_alerts_api import problem
from tests.support.system import login, post_feedback, wait_for

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam
OTHER_LEAD = "alex@busan.demo"  # shift lead at store-busan


def timeline_kinds(system: RunningSystem, feedback_id: str) -> list[str]:
    item = httpx.get(
        f"{system.url('feedback')}/v1/feedback/{feedback_id}", headers=system.admin_headers
    ).json()
    return [t["kind"] for t in item["timeline"]]


def test_notify_relays_the_rule_of_feedback(running_system: RunningSystem) -> None:
    sent = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "주문한 음료가 안 나왔어요",
            "ratings": {"csat": 1},
        },
    )
    assert sent.status_code == 202, sent.text
    feedback_id = sent.json()["id"]
    staff = login(running_system, LEAD)
    alert_id = alert_of(running_system, staff, feedback_id)
    url = f"{running_system.url('notify')}/v1/alerts/{alert_id}/corrections"

    bad: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({"category": "teleportation"}, staff, 422),
        ({"sentiment": "furious"}, staff, 422),
        ({}, staff, 422),
        ({"category": "wait_time", "note": "x"}, staff, 422),
        ({"category": "wait_time"}, login(running_system, OTHER_LEAD), 404),
        ({"category": "wait_time"}, running_system.admin_headers, 401),
    ]
    for body, headers, status in bad:
        problem(httpx.post(url, json=body, headers=headers), status)
    assert "classification_corrected" not in timeline_kinds(running_system, feedback_id)

    done = httpx.post(url, json={"category": "wait_time", "sentiment": "negative"}, headers=staff)
    assert done.status_code == 200, done.text
    lead_id = running_system.staff(LEAD)["id"]
    assert done.json()["category"] == "wait_time" and done.json()["correction"]["by"] == lead_id
    assert timeline_kinds(running_system, feedback_id).count("classification_corrected") == 1

    def alert_corrected() -> dict[str, Any] | None:
        alert = httpx.get(f"{running_system.url('notify')}/v1/alerts/{alert_id}", headers=staff).json()
        labels: dict[str, Any] = alert["classification"]
        return labels if labels.get("corrected") else None

    labels = wait_for(alert_corrected)
    assert labels["category"] == "wait_time" and labels["corrected"]["by"] == lead_id
