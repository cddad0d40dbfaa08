"""The customer's story, plans that compose and erasure (#18 §1, §2, §6), end to end through the
real services as processes (nats-server, feedback, profile, actions, notify):

- a VIP customer complains about the wait by phone at one store; the case is resolved there;
- they complain about the wait again at another store: the alert's `context.recent_contacts`
  shows the call (channel, store and its name, case status and outcome, masked excerpt) and the
  household link, and its plan is the wait-time plan with the VIP and repeat modifiers (urgent,
  more steps), unlike an anonymous first-timer's;
- the same alert reads in each staff member's language (an English-speaking shift lead at a
  Korean store);
- erasing the customer in profile redacts notify's copies (context, feedback text, script, the
  lock-screen body), profile's excerpts and feedback's identifiers.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.system import copied_identifiers, login, post_feedback, wait_for

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam (ko)
HONGDAE_LEAD = "yuna@hongdae.demo"
EN_LEAD = "chris@gangnam.demo"  # added here: an English-speaking shift lead at the Korean store
CALL_TEXT = "김하늘입니다. 30분 넘게 기다렸는데 아직도 음식이 안 나왔어요. 010-5555-1234 로 연락 주세요"
AGAIN_TEXT = "전화로도 말씀드렸는데 오늘도 주문하고 40분을 기다렸습니다"


def alert_of(system: RunningSystem, headers: dict[str, str], feedback_id: str) -> dict[str, Any] | None:
    page = httpx.get(f"{system.url('notify')}/v1/alerts?limit=200", headers=headers).json()["alerts"]
    return next((a for a in page if a["feedback_id"] == feedback_id), None)


def detail(system: RunningSystem, headers: dict[str, str], alert_id: str) -> dict[str, Any]:
    response = httpx.get(f"{system.url('notify')}/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def submit(system: RunningSystem, body: dict[str, Any], store_id: str) -> str:
    response = post_feedback(system, body, store_id=store_id)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def english_lead(running_system: RunningSystem) -> dict[str, str]:
    person = {
        "id": "staff-gn-en",
        "name": "Chris Park",
        "email": EN_LEAD,
        "password": "english-" + uuid.uuid4().hex[:12],
        "role": "shift_lead",
        "store_ids": ["store-gangnam"],
        "language": "en",
    }
    response = httpx.put(
        f"{running_system.url('notify')}/v1/admin/staff", json=[person], headers=running_system.admin_headers
    )
    assert response.status_code == 200, response.text
    login_response = httpx.post(
        f"{running_system.url('notify')}/v1/auth/login",
        json={"email": EN_LEAD, "password": person["password"]},
    )
    assert login_response.status_code == 200, login_response.text
    assert login_response.json()["staff"]["language"] == "en"
    return {"Authorization": f"Bearer {login_response.json()['access_token']}"}


@pytest.fixture(scope="module")
def story(running_system: RunningSystem) -> dict[str, Any]:
    """A VIP customer (a household's driver) with a resolved phone complaint at Hongdae and a
    second wait-time complaint at Gangnam, and the alert of the second."""
    system = running_system
    loyalty = f"ST-{uuid.uuid4().hex[:8]}"
    customers = [
        {
            "loyalty_id": loyalty,
            "name": "김하늘",
            "tier": "vip",
            "household_id": f"H-{loyalty}",
            "household_relation": "driver",
        },
        {
            "loyalty_id": f"{loyalty}-O",
            "name": "김부모",
            "household_id": f"H-{loyalty}",
            "household_relation": "owner",
        },
    ]
    response = httpx.post(
        f"{system.url('profile')}/v1/customers", json={"customers": customers}, headers=system.admin_headers
    )
    assert response.status_code == 200, response.text
    customer_id = response.json()[0]["customer_id"]
    customer = {"loyalty_id": loyalty}

    hongdae = login(system, HONGDAE_LEAD)
    first = submit(
        system,
        {"store_id": "store-hongdae", "channel": "call_center", "text": CALL_TEXT, "ratings": {"csat": 2},
         "customer": customer},
        "store-hongdae",
    )  # fmt: skip
    first_alert = wait_for(lambda: alert_of(system, hongdae, first))
    resolved = httpx.post(
        f"{system.url('notify')}/v1/alerts/{first_alert['id']}/resolve",
        json={"outcome": "compensated", "note": "음료 쿠폰"},
        headers=hongdae,
    )
    assert resolved.status_code == 200, resolved.text

    # Profile has the first contact's outcome (voc.alert.resolved) before the second arrives.
    def resolved_in_profile() -> bool:
        context = httpx.get(
            f"{system.url('profile')}/v1/customers/{customer_id}/context", headers=system.admin_headers
        ).json()
        return bool(context["recent_contacts"]) and context["recent_contacts"][0]["status"] == "resolved"

    wait_for(resolved_in_profile)
    lead = login(system, LEAD)
    second = submit(
        system,
        {"store_id": "store-gangnam", "channel": "kiosk", "text": AGAIN_TEXT, "ratings": {"csat": 1},
         "customer": customer},
        "store-gangnam",
    )  # fmt: skip
    summary = wait_for(lambda: alert_of(system, lead, second))
    assert loyalty in copied_identifiers(system, first)  # what erasure must remove
    return {
        "customer_id": customer_id,
        "first": first,
        "first_alert": first_alert["id"],
        "second": second,
        "alert_id": summary["id"],
        "lead": lead,
    }


def test_the_alert_tells_the_customers_story(running_system: RunningSystem, story: dict[str, Any]) -> None:
    alert = detail(running_system, story["lead"], story["alert_id"])
    context = alert["context"]
    assert context == alert["customer"] and context["known"] and context["tier"] == "vip"
    [call] = context["recent_contacts"]  # the alert's own feedback is not an earlier contact
    assert call["feedback_id"] == story["first"]
    assert (call["channel"], call["store_id"], call["store_name"]) == (
        "call_center",
        "store-hongdae",
        "홍대입구점",
    )
    assert (call["category"], call["sentiment"]) == ("wait_time", "negative")
    assert (call["status"], call["outcome"]) == ("resolved", "compensated")
    assert len(call["excerpt"]) <= 80 and call["excerpt"].startswith("김**입니다.")
    assert "김하늘" not in str(context) and "5555-1234" not in call["excerpt"]
    assert call["occurred_at_ms"] > 0
    assert context["household"]["relation"] == "driver"
    assert [(m["relation"], m["masked_name"]) for m in context["household"]["members"]] == [("owner", "김**")]
    # Korean for the Korean shift lead: the repeat reason, the plan.
    repeat = next(r for r in context["signals"]["reasons"] if r["signal"] == "repeat_issue")
    assert "대기 시간" in repeat["text"]
    assert alert["plan"]["language"] == "ko"


def test_a_vip_repeat_complainer_gets_a_composed_plan(
    running_system: RunningSystem, story: dict[str, Any]
) -> None:
    system, lead = running_system, story["lead"]
    vip = detail(system, lead, story["alert_id"])
    anonymous_id = submit(
        system, {"store_id": "store-gangnam", "channel": "kiosk", "text": AGAIN_TEXT, "ratings": {"csat": 1}},
        "store-gangnam",
    )  # fmt: skip
    anonymous = detail(system, lead, wait_for(lambda: alert_of(system, lead, anonymous_id))["id"])
    plan, plain = vip["plan"], anonymous["plan"]
    assert anonymous["context"] == {"known": False}
    assert plan["playbook_id"] == plain["playbook_id"]  # the same wait-time plan underneath
    assert plan["modifiers"] == ["modifier-vip", "modifier-repeat-issue"] and plain["modifiers"] == []
    assert (vip["priority"], plan["priority"], plain["priority"]) == ("urgent", "urgent", "normal")
    assert len(plan["steps"]) == len(plain["steps"]) + 4
    assert (
        "store_manager" in plan["notify_roles"] and plan["sla"]["ack_seconds"] < plain["sla"]["ack_seconds"]
    )
    assert [line.split(":")[0] for line in plan["matched_because"] if line.startswith("modifier ")] == [
        "modifier modifier-vip",
        "modifier modifier-repeat-issue",
    ]
    # The same plan through the REST lookup with the same facts.
    looked_up = httpx.post(
        f"{system.url('actions')}/v1/plans:lookup",
        json={
            "feedback": {
                "category": "wait_time",
                "severity": "high",
                "sentiment": "negative",
                "channel": "kiosk",
            },
            "customer": {"tier": "vip", "signals": {"repeat_issue": True}},
            "language": "ko",
        },
    ).json()
    assert looked_up["modifiers"] == plan["modifiers"] and looked_up["priority"] == "urgent"


def test_each_staff_member_reads_it_in_their_language(
    running_system: RunningSystem, story: dict[str, Any], english_lead: dict[str, str]
) -> None:
    korean = detail(running_system, story["lead"], story["alert_id"])
    english = detail(running_system, english_lead, story["alert_id"])
    assert korean["title"].startswith("[긴급] 대기 시간") and english["title"].startswith(
        "[URGENT] Wait time"
    )
    assert english["plan"]["language"] == "en" and english["plan"]["title"] != korean["plan"]["title"]
    assert english["plan"]["steps"][0]["text"].startswith("Before you approach")
    assert [s["role"] for s in english["plan"]["steps"]] == [s["role"] for s in korean["plan"]["steps"]]
    assert english["plan"]["script"].startswith("김하늘, ")  # the name as profile gave it
    repeat = next(r for r in english["context"]["signals"]["reasons"] if r["signal"] == "repeat_issue")
    assert "wait_time" in repeat["text"]
    inbox = alert_of(running_system, english_lead, story["second"])
    assert inbox is not None and inbox["title"].startswith("[URGENT]")


def test_erasure_reaches_every_copy(running_system: RunningSystem, story: dict[str, Any]) -> None:
    system = running_system
    customer_id = story["customer_id"]
    erased = httpx.delete(f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers)
    assert erased.status_code == 200, erased.text

    def redacted() -> dict[str, Any] | None:
        alert = detail(system, story["lead"], story["alert_id"])
        return alert if alert["context"].get("erased") else None

    alert = wait_for(redacted)
    assert alert["context"] == {"known": False, "erased": True}
    assert alert["feedback"]["text"] == "" and alert["plan"]["script"] == ""
    assert all(t["script"] == "" for t in alert["plan"]["translations"])
    assert "김**" not in alert["body"] and "기다렸습니다" not in alert["body"]
    assert alert["plan"]["steps"] and alert["status"] == "open"  # what happened stays
    first = detail(system, login(system, HONGDAE_LEAD), story["first_alert"])
    assert first["context"] == {"known": False, "erased": True} and first["feedback"]["text"] == ""
    assert first["status"] == "resolved" and first["outcome"] == "compensated"
    # Profile: gone; feedback: the identifiers copied at intake are gone (it keeps the text as
    # the case record; that is feedback's erasure, unchanged here).
    gone = httpx.get(
        f"{system.url('profile')}/v1/customers/{customer_id}/context", headers=system.admin_headers
    )
    assert gone.status_code == 410

    wait_for(lambda: "ST-" not in copied_identifiers(system, story["first"]))
