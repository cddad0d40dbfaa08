"""The profile service inside the running system: signals reach the staff member's alert, alerts
join the customer's timeline, erasure redacts the feedback service's copies, ListCustomers over
gRPC, and no raw phone number or e-mail address in the service's logs."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.system import copied_identifiers, login, post_feedback, wait_for
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform.taxonomy import label

# Who is paged depends on the plan (a repeat issue may go to the manager): ask each of them.
SEOUL_STAFF = (
    "minji@gangnam.demo",
    "seoyeon@gangnam.demo",
    "yuna@hongdae.demo",
    "woosung@hongdae.demo",
    "jimin@area.demo",
)
PHONE, EMAIL = "010-9753-1864", "park.signals@example.com"


def alert_for(system: RunningSystem, staff: list[dict[str, str]], feedback_id: str) -> dict[str, Any] | None:
    for headers in staff:
        alerts = httpx.get(f"{system.url('notify')}/v1/alerts", headers=headers).json()["alerts"]
        match = next((a for a in alerts if a["feedback_id"] == feedback_id), None)
        if match is not None:
            url = f"{system.url('notify')}/v1/alerts/{match['id']}"
            detail: dict[str, Any] = httpx.get(url, headers=headers).json()
            return detail
    return None


def test_repeat_issue_is_in_the_alert_and_alerts_join_the_timeline(running_system: RunningSystem) -> None:
    staff = [login(running_system, email) for email in SEOUL_STAFF]
    complaint = {
        "store_id": "store-gangnam",
        "channel": "app",
        "text": "주문하고 40분 넘게 기다렸어요. 너무 느립니다.",
        "ratings": {"csat": 1},
        "customer": {"phone": PHONE, "email": EMAIL, "name": "박신호"},
    }
    posted = post_feedback(running_system, complaint)
    assert posted.status_code == 202, posted.text
    first = posted.json()["id"]
    first_alert = wait_for(lambda: alert_for(running_system, staff, first))
    admin = running_system.admin_headers
    feedback_url = running_system.url("feedback")
    # The second complaint, after profile has recorded the first, at another store (the same
    # store would fold it into the open alert): the customer's context follows them there.
    wait_for(lambda: httpx.get(f"{feedback_url}/v1/feedback/{first}", headers=admin).json()["customer_id"])
    reposted = post_feedback(
        running_system, {**complaint, "store_id": "store-hongdae", "channel": "call_center"}, "store-hongdae"
    )
    assert reposted.status_code == 202, reposted.text
    second = reposted.json()["id"]
    alert = wait_for(lambda: alert_for(running_system, staff, second))
    signals = alert["customer"]["signals"]
    category = alert["feedback"]["category"]
    assert signals["repeat_issue"] is True and signals["repeat_counts"][category] == 2
    named = label(category, "en")  # the category's label, not its code
    assert any(r["signal"] == "repeat_issue" and r["reason"].endswith(named) for r in signals["reasons"])
    assert first_alert["customer"]["signals"]["repeat_issue"] is False

    customer_id = alert["customer"]["customer_id"]
    profile_url = running_system.url("profile")

    def timeline_alerts() -> list[dict[str, Any]]:
        entries = httpx.get(f"{profile_url}/v1/customers/{customer_id}/timeline", headers=admin).json()[
            "entries"
        ]
        alerts = [e for e in entries if e["kind"] == "alert"]
        return alerts if len(alerts) == 2 else []

    alerts = wait_for(timeline_alerts)
    assert {a["feedback_id"] for a in alerts} == {first, second}


def test_erasure_redacts_the_feedback_copies(running_system: RunningSystem) -> None:
    admin = running_system.admin_headers
    feedback_url, profile_url = running_system.url("feedback"), running_system.url("profile")
    body = {
        "store_id": "store-hongdae",
        "channel": "kiosk",
        "text": "Erin Lee here, 010-8642-9753. Please delete my data after this. The soup was cold.",
        "ratings": {"csat": 2},
        "customer": {"phone": "010-8642-9753", "email": "erase.me@example.com", "name": "Erin Lee"},
    }
    feedback_id = post_feedback(running_system, body, store_id="store-hongdae").json()["id"]
    customer_id = wait_for(
        lambda: httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json()["customer_id"]
    )
    # Staff resolve it with a note that names her: what staff wrote goes with the rest.
    staff = [login(running_system, email) for email in SEOUL_STAFF]
    alert = wait_for(lambda: alert_for(running_system, staff, feedback_id))
    resolver = next(h for h in staff if alert_for(running_system, [h], feedback_id))
    notify_alert = f"{running_system.url('notify')}/v1/alerts/{alert['id']}"
    note = {"outcome": "resolved", "note": "Called Erin Lee back on 010-8642-9753"}
    assert httpx.post(f"{notify_alert}/resolve", json=note, headers=resolver).status_code == 200
    wait_for(
        lambda: [
            t
            for t in httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json()["timeline"]
            if t["kind"] == "resolved"
        ]
    )
    assert "erase.me@example.com" in copied_identifiers(running_system, feedback_id)
    erased = httpx.delete(f"{profile_url}/v1/customers/{customer_id}", headers=admin)
    assert erased.status_code == 200 and erased.json()["erased"] == [customer_id]
    # customer.erased travels the outbox and JetStream; the feedback service redacts its copy.
    after = wait_for(
        lambda: (
            (copied := copied_identifiers(running_system, feedback_id))
            and "erase.me@example.com" not in copied
            and copied
        ),
        timeout=30,
        interval=0.25,
    )
    assert "8642" not in after and "Erin" not in after, after
    assert httpx.get(f"{profile_url}/v1/customers/{customer_id}", headers=admin).status_code == 410
    # The text, the explanation's quoted words and the resolution note go too (they stayed, and
    # store managers and the CSV export served them); what happened and the numbers stay.
    item = httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=admin).json()
    assert item["text"] is None and item["ratings"]["csat"] == 2 and item["status"] == "resolved"
    assert "Erin" not in str(item) and "8642" not in str(item), item
    (resolved,) = [t for t in item["timeline"] if t["kind"] == "resolved"]
    assert resolved["detail"]["note"] == "" and resolved["detail"]["outcome"] == "resolved"
    redacted = wait_for(lambda: (a := httpx.get(notify_alert, headers=resolver).json())["note"] == "" and a)
    assert "Erin" not in str(redacted) and "8642" not in str(redacted), redacted


def test_list_customers_over_grpc(running_system: RunningSystem) -> None:
    target = running_system.system.grpc_target("profile")
    metadata = (("authorization", f"Bearer {running_system.system.secrets['internal_token']}"),)
    with grpc.insecure_channel(target) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        page = stub.ListCustomers(
            profile_pb2.ListCustomersRequest(signal="vip", page_size=50), metadata=metadata
        )
        vip = [c for c in page.customers if c.masked_name == "김**"]
        assert vip and vip[0].tier == "vip" and vip[0].reasons[0].signal == "vip"
        with pytest.raises(grpc.RpcError) as err:
            stub.ListCustomers(profile_pb2.ListCustomersRequest(signal="grumpy"), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.ListCustomers(
                profile_pb2.ListCustomersRequest(signal="vip", page_token="x"), metadata=metadata
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_logs_never_contain_raw_phone_numbers_or_emails(running_system: RunningSystem) -> None:
    # A submission with a malformed phone goes down the path that logs an ignored identifier.
    r = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "테스트: 전화번호가 잘못되었어요",
            "ratings": {"csat": 3},
            "customer": {"phone": "010-12", "email": "log.check@example.com"},
        },
    )
    feedback_id = r.json()["id"]
    admin = running_system.admin_headers
    wait_for(
        lambda: httpx.get(
            f"{running_system.url('feedback')}/v1/feedback/{feedback_id}", headers=admin
        ).json()["customer_id"]
    )
    log = running_system.system.log_path("profile").read_text(errors="replace")
    assert log  # the service does log
    for raw in (
        PHONE,
        "01097531864",
        "+821097531864",
        "9753-1864",
        EMAIL,
        "010-8642-9753",
        "+821086429753",
        "erase.me@example.com",
        "log.check@example.com",
        "010-12",
        "010-1234-5678",
        "+821012345678",
    ):
        assert raw not in log, raw
