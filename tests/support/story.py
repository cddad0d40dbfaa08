"""A customer with a story, built through the running system (#18): a VIP household driver whose
phone complaint about the wait at Hongdae was resolved, and who complains about the wait again
at Gangnam. Used by the end-to-end and the browser tests of the alert's recent contacts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import RunningSystem
from tests.support.system import copied_identifiers, login, post_feedback, wait_for

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam (ko)
HONGDAE_LEAD = "yuna@hongdae.demo"
CALL_TEXT = "김하늘입니다. 30분 넘게 기다렸는데 아직도 음식이 안 나왔어요. 010-5555-1234 로 연락 주세요"
AGAIN_TEXT = "전화로도 말씀드렸는데 오늘도 주문하고 40분을 기다렸습니다"


@dataclass(frozen=True)
class Story:
    customer_id: str
    loyalty_id: str
    first: str  # the phone complaint at Hongdae (resolved, compensated)
    first_alert: str
    second: str  # the complaint at Gangnam
    alert_id: str  # its alert


def alert_of(system: RunningSystem, headers: dict[str, str], feedback_id: str) -> dict[str, Any] | None:
    """The inbox row of the alert about `feedback_id`, once there is one."""
    page = httpx.get(f"{system.url('notify')}/v1/alerts?limit=200", headers=headers).json()["alerts"]
    return next((a for a in page if a["feedback_id"] == feedback_id), None)


def submit(system: RunningSystem, body: dict[str, Any], store_id: str) -> str:
    response = post_feedback(system, body, store_id=store_id)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def add_staff(
    system: RunningSystem, *, staff_id: str, email: str, language: str
) -> tuple[dict[str, str], str]:
    """A shift lead at Gangnam reading in `language`: their authorization headers and password."""
    password = "story-" + uuid.uuid4().hex[:12]
    person = {
        "id": staff_id,
        "name": f"Reader {language}",
        "email": email,
        "password": password,
        "role": "shift_lead",
        "store_ids": ["store-gangnam"],
        "language": language,
    }
    notify = system.url("notify")
    response = httpx.put(f"{notify}/v1/admin/staff", json=[person], headers=system.admin_headers)
    assert response.status_code == 200, response.text
    answer = httpx.post(f"{notify}/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    assert answer.json()["staff"]["language"] == language
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}, password


def customer_with_a_story(system: RunningSystem) -> Story:
    loyalty = f"ST-{uuid.uuid4().hex[:8]}"
    household = {"household_id": f"H-{loyalty}"}
    customers = [
        {"loyalty_id": loyalty, "name": "김하늘", "tier": "vip", "household_relation": "driver", **household},
        {"loyalty_id": f"{loyalty}-O", "name": "김부모", "household_relation": "owner", **household},
    ]
    profile = system.url("profile")
    response = httpx.post(
        f"{profile}/v1/customers", json={"customers": customers}, headers=system.admin_headers
    )
    assert response.status_code == 200, response.text
    customer_id = response.json()[0]["customer_id"]
    customer = {"loyalty_id": loyalty}

    hongdae = login(system, HONGDAE_LEAD)
    call = {"channel": "call_center", "text": CALL_TEXT, "ratings": {"csat": 2}, "customer": customer}
    first = submit(system, {"store_id": "store-hongdae", **call}, "store-hongdae")
    first_alert = wait_for(lambda: alert_of(system, hongdae, first))
    resolved = httpx.post(
        f"{system.url('notify')}/v1/alerts/{first_alert['id']}/resolve",
        json={"outcome": "compensated", "note": "음료 쿠폰"},
        headers=hongdae,
    )
    assert resolved.status_code == 200, resolved.text

    # Profile has the first contact's outcome (voc.alert.resolved) before the second arrives.
    def resolved_in_profile() -> bool:
        url = f"{profile}/v1/customers/{customer_id}/context"
        contacts = httpx.get(url, headers=system.admin_headers).json()["recent_contacts"]
        return bool(contacts) and contacts[0]["status"] == "resolved"

    wait_for(resolved_in_profile)
    again = {"channel": "kiosk", "text": AGAIN_TEXT, "ratings": {"csat": 1}, "customer": customer}
    second = submit(system, {"store_id": "store-gangnam", **again}, "store-gangnam")
    summary = wait_for(lambda: alert_of(system, login(system, LEAD), second))
    assert loyalty in copied_identifiers(system, first)  # what erasure must remove
    return Story(customer_id, loyalty, first, first_alert["id"], second, summary["id"])
