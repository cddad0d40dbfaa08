"""An alert received by staff shows a plan that visibly changes with the customer: the whole
system as processes, the plan read where the shift lead reads it (notify's alert detail).

A VIP regular (demo customer L-1001) who complains about food for the second time gets the
manager-led recovery playbook; a first-time anonymous guest with the same complaint at the same
restaurant gets the category default."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RunningSystem
from tests.support.system import login, post_feedback, wait_for

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam (a restaurant in seoul)


def alert_holding(system: RunningSystem, headers: dict[str, str], feedback_id: str) -> dict[str, Any] | None:
    """The alert showing this feedback: its own, or an open one it was folded into."""
    notify = system.url("notify")
    alerts = httpx.get(f"{notify}/v1/alerts", params={"limit": 200}, headers=headers).json()["alerts"]
    for summary in alerts:
        if summary["feedback_id"] == feedback_id:
            return dict(httpx.get(f"{notify}/v1/alerts/{summary['id']}", headers=headers).json())
    for summary in alerts:
        if summary["status"] != "resolved" and summary["updates"]:
            detail = httpx.get(f"{notify}/v1/alerts/{summary['id']}", headers=headers).json()
            if feedback_id in [item["id"] for item in detail["related_feedback"]]:
                return dict(detail)
    return None


def complain(system: RunningSystem, text: str, customer: dict[str, str] | None) -> str:
    body: dict[str, Any] = {
        "store_id": "store-gangnam",
        "channel": "kiosk",
        "text": text,
        "ratings": {"csat": 1},
    }
    if customer:
        body["customer"] = customer
    response = post_feedback(system, body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_a_vip_repeat_complainer_gets_a_different_plan_than_a_first_time_anonymous_guest(
    running_system: RunningSystem,
) -> None:
    headers = login(running_system, LEAD)
    notify = running_system.url("notify")
    admin = running_system.admin_headers

    anonymous_id = complain(running_system, "음식이 식어서 나왔고 맛이 없었어요.", None)
    anonymous = wait_for(lambda: alert_holding(running_system, headers, anonymous_id), timeout=15)
    assert anonymous["customer"]["known"] is False

    # The VIP's first food complaint; once handled and resolved, a new one is a repeat.
    first_id = complain(running_system, "파스타가 식어서 나왔어요. 맛이 없었어요.", {"loyalty_id": "L-1001"})
    first = wait_for(lambda: alert_holding(running_system, headers, first_id), timeout=15)
    if first["status"] != "resolved":
        resolved = httpx.post(
            f"{notify}/v1/alerts/{first['id']}/resolve",
            headers=headers,
            json={"outcome": "compensated", "note": "새로 조리해 드림"},
        )
        assert resolved.status_code == 200, resolved.text
    # Profile has recorded the first complaint once it linked it to the customer.
    wait_for(
        lambda: httpx.get(f"{running_system.url('feedback')}/v1/feedback/{first_id}", headers=admin).json()[
            "customer_id"
        ],
        timeout=15,
    )

    repeat_id = complain(
        running_system, "찌개가 식어서 나왔고 너무 짜요. 또 맛이 없었어요.", {"loyalty_id": "L-1001"}
    )
    repeat = wait_for(lambda: alert_holding(running_system, headers, repeat_id), timeout=15)
    assert repeat["feedback_id"] == repeat_id, "a new alert, not folded into the resolved one"
    assert repeat["customer"]["known"] is True and repeat["customer"]["tier"] == "vip"
    assert repeat["degraded"] == [] and anonymous["degraded"] == []

    vip_plan, anonymous_plan = repeat["plan"], anonymous["plan"]
    assert vip_plan["playbook_id"] == "restaurant-food-quality-vip-repeat"
    assert anonymous_plan["playbook_id"] == "food-quality-default"
    assert "customer.tier in [vip, vvip, gold] (vip)" in vip_plan["matched_because"]
    assert "signals.repeat_issue=true" in vip_plan["matched_because"]
    assert anonymous_plan["matched_because"] == ["category=food_quality"]
    assert (vip_plan["priority"], anonymous_plan["priority"]) == ("urgent", "normal")
    assert repeat["priority"] == "urgent"
    vip_steps = [(s["text"], s["role"]) for s in vip_plan["steps"]]
    anonymous_steps = [(s["text"], s["role"]) for s in anonymous_plan["steps"]]
    assert vip_steps != anonymous_steps
    assert "store_manager" in {role for _, role in vip_steps}
    assert "store_manager" not in {role for _, role in anonymous_steps}
    assert vip_plan["compensation"]["authority"] == "store_manager"
    assert vip_plan["compensation"]["max_amount"] > anonymous_plan["compensation"]["max_amount"]
    assert anonymous_plan["script"].startswith("고객님,")  # nobody known: a neutral greeting
