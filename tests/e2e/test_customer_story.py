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

import json
import threading
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.story import (
    AGAIN_TEXT,
    HONGDAE_LEAD,
    LEAD,
    Story,
    add_staff,
    alert_of,
    customer_with_a_story,
    submit,
)
from tests.support.system import copied_identifiers, login, wait_for


def detail(system: RunningSystem, headers: dict[str, str], alert_id: str) -> dict[str, Any]:
    response = httpx.get(f"{system.url('notify')}/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def english_lead(running_system: RunningSystem) -> dict[str, str]:
    """An English-speaking shift lead at the Korean store."""
    headers, _ = add_staff(running_system, staff_id="staff-gn-en", email="chris@gangnam.demo", language="en")
    return headers


@pytest.fixture(scope="module")
def lead(running_system: RunningSystem) -> dict[str, str]:
    return login(running_system, LEAD)


@pytest.fixture(scope="module")
def story(running_system: RunningSystem) -> Story:
    return customer_with_a_story(running_system)


def test_the_alert_tells_the_customers_story(
    running_system: RunningSystem, story: Story, lead: dict[str, str]
) -> None:
    alert = detail(running_system, lead, story.alert_id)
    context = alert["context"]
    assert context == alert["customer"] and context["known"] and context["tier"] == "vip"
    [call] = context["recent_contacts"]  # the alert's own feedback is not an earlier contact
    assert call["feedback_id"] == story.first
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
    running_system: RunningSystem, story: Story, lead: dict[str, str]
) -> None:
    system = running_system
    vip = detail(system, lead, story.alert_id)
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
    # The VIP modifier's 3-minute acknowledgement tightens the default wait-time plan's 5; on
    # weekdays 11:30-13:30 Seoul time the restaurant lunch-peak plan's 2 is already tighter (the
    # suite failed when CI ran at a Seoul lunchtime).
    tighter = plan["sla"]["ack_seconds"] < plain["sla"]["ack_seconds"]
    if plain["playbook_id"] == "restaurant-wait-time-lunch-peak":
        tighter = plan["sla"]["ack_seconds"] == plain["sla"]["ack_seconds"] == 120
    assert "store_manager" in plan["notify_roles"] and tighter, (plan["sla"], plain["sla"])
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
        headers=system.admin_headers,
    ).json()
    assert looked_up["modifiers"] == plan["modifiers"] and looked_up["priority"] == "urgent"


def test_each_staff_member_reads_it_in_their_language(
    running_system: RunningSystem, story: Story, lead: dict[str, str], english_lead: dict[str, str]
) -> None:
    korean = detail(running_system, lead, story.alert_id)
    english = detail(running_system, english_lead, story.alert_id)
    assert korean["title"].startswith("[긴급] 대기 시간") and english["title"].startswith(
        "[URGENT] Wait time"
    )
    assert english["plan"]["language"] == "en" and english["plan"]["title"] != korean["plan"]["title"]
    assert english["plan"]["steps"][0]["text"].startswith("Before you approach")
    assert [s["role"] for s in english["plan"]["steps"]] == [s["role"] for s in korean["plan"]["steps"]]
    assert english["plan"]["script"].startswith("김하늘, ")  # the name as profile gave it
    repeat = next(r for r in english["context"]["signals"]["reasons"] if r["signal"] == "repeat_issue")
    assert repeat["text"].endswith("Wait time")  # the category's label, not its code
    inbox = alert_of(running_system, english_lead, story.second)
    assert inbox is not None and inbox["title"].startswith("[URGENT]")


def test_erasure_reaches_every_copy(
    running_system: RunningSystem, story: Story, lead: dict[str, str]
) -> None:
    system = running_system
    customer_id = story.customer_id
    erased = httpx.delete(f"{system.url('profile')}/v1/customers/{customer_id}", headers=system.admin_headers)
    assert erased.status_code == 200, erased.text

    def redacted() -> dict[str, Any] | None:
        alert = detail(system, lead, story.alert_id)
        return alert if alert["context"].get("erased") else None

    alert = wait_for(redacted)
    assert alert["context"] == {"known": False, "erased": True}
    assert alert["feedback"]["text"] == "" and alert["plan"]["script"] == ""
    assert all(t["script"] == "" for t in alert["plan"]["translations"])
    assert "김**" not in alert["body"] and "기다렸습니다" not in alert["body"]
    assert alert["plan"]["steps"] and alert["status"] == "open"  # what happened stays
    first = detail(system, login(system, HONGDAE_LEAD), story.first_alert)
    assert first["context"] == {"known": False, "erased": True} and first["feedback"]["text"] == ""
    assert first["status"] == "resolved" and first["outcome"] == "compensated"
    # Profile: gone; feedback: the identifiers copied at intake are gone (it keeps the text as
    # the case record; that is feedback's erasure, unchanged here).
    gone = httpx.get(
        f"{system.url('profile')}/v1/customers/{customer_id}/context", headers=system.admin_headers
    )
    assert gone.status_code == 410

    wait_for(lambda: "ST-" not in copied_identifiers(system, story.first))


def test_the_live_stream_speaks_the_readers_language(
    running_system: RunningSystem, english_lead: dict[str, str]
) -> None:
    """The English-speaking shift lead's live stream at the Korean store: the new alert's title
    in English (the event is composed in the store's language for every listener, #18 §1)."""
    system = running_system
    events: list[dict[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        url = f"{system.url('notify')}/v1/alerts/stream"
        with httpx.stream("GET", url, headers=english_lead, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                if line.startswith("data: "):
                    event = json.loads(line.removeprefix("data: "))
                    events.append(event)
                    if event["type"] == "alert.created" and event["alert"].get("feedback_id") == sent[0]:
                        return

    sent: list[str] = [""]
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    body = {"store_id": "store-gangnam", "channel": "kiosk", "text": AGAIN_TEXT, "ratings": {"csat": 1}}
    sent[0] = submit(system, body, "store-gangnam")
    listener.join(20)
    created = next(e["alert"] for e in events if e["alert"].get("feedback_id") == sent[0])
    assert created["title"].startswith("[") and "Wait time" in created["title"], created["title"]
    assert "대기 시간" not in created["title"]
