"""A correction reaches the customer's story (#17 with #18), end to end through the real
services as processes: a customer's complaint the model filed under food quality is corrected
to the wait by the shift lead in the staff app's API; profile hears `voc.feedback.corrected`, so
the customer's context shows the corrected category, and when the customer complains about the
wait again (at another store) the new alert's recent contacts show the wait, the repeat-issue
signal counts both, and the plan takes the repeat-issue modifier."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import RunningSystem
from tests.support.story import AGAIN_TEXT, HONGDAE_LEAD, LEAD, alert_of, submit
from tests.support.system import login, wait_for

FOOD_TEXT = "국이 완전히 식어서 나왔고 고기는 질겨서 먹을 수가 없었어요. 음식 맛이 너무 별로예요"


def context(system: RunningSystem, customer_id: str) -> dict[str, Any]:
    url = f"{system.url('profile')}/v1/customers/{customer_id}/context"
    response = httpx.get(url, headers=system.admin_headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_corrected_category_is_the_customers_story(running_system: RunningSystem) -> None:
    system = running_system
    customer = {"loyalty_id": f"CS-{uuid.uuid4().hex[:8]}"}
    lead = login(system, LEAD)
    first = submit(
        system,
        {"store_id": "store-gangnam", "channel": "kiosk", "text": FOOD_TEXT, "ratings": {"csat": 1},
         "customer": customer},
        "store-gangnam",
    )  # fmt: skip
    alert = wait_for(lambda: alert_of(system, lead, first))
    item = httpx.get(f"{system.url('feedback')}/v1/feedback/{first}", headers=system.admin_headers).json()
    customer_id = item["customer_id"] or wait_for(
        lambda: httpx.get(
            f"{system.url('feedback')}/v1/feedback/{first}", headers=system.admin_headers
        ).json()["customer_id"]
    )
    model_said = item["classification"]["category"]
    assert model_said != "wait_time"  # the premise: the model did not file it under the wait

    def on_file(category: str) -> dict[str, Any] | None:
        contacts = context(system, customer_id)["recent_contacts"]
        return contacts[0] if contacts and contacts[0]["category"] == category else None

    wait_for(lambda: on_file(model_said))
    corrected = httpx.post(
        f"{system.url('notify')}/v1/alerts/{alert['id']}/corrections",
        json={"category": "wait_time"},
        headers=lead,
    )
    assert corrected.status_code == 200, corrected.text

    # Profile's copy follows the correction: the story says the wait.
    contact = wait_for(lambda: on_file("wait_time"))
    assert contact["feedback_id"] == first and contact["sentiment"] == "negative"

    # The customer complains about the wait again, at Hongdae: the alert tells the corrected story.
    second = submit(
        system,
        {"store_id": "store-hongdae", "channel": "kiosk", "text": AGAIN_TEXT, "ratings": {"csat": 1},
         "customer": customer},
        "store-hongdae",
    )  # fmt: skip
    hongdae = login(system, HONGDAE_LEAD)
    summary = wait_for(lambda: alert_of(system, hongdae, second))
    detail = httpx.get(f"{system.url('notify')}/v1/alerts/{summary['id']}", headers=hongdae).json()
    assert detail["category"] == "wait_time"
    [earlier] = detail["context"]["recent_contacts"]
    assert (earlier["feedback_id"], earlier["category"]) == (first, "wait_time")
    signals = detail["context"]["signals"]
    assert signals["repeat_issue"] and signals["repeat_counts"] == {"wait_time": 2}
    assert "modifier-repeat-issue" in detail["plan"]["modifiers"]
