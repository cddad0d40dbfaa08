"""Notify's REST API against the running system: staff login, devices, alert access rules and
the bad-input cases, each answered with problem+json and changing nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.system import login, post_feedback, wait_for
from voc_cli.push_emulator import PushEmulator


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.fixture(scope="module")
def alert(running_system: RunningSystem) -> dict[str, Any]:
    return fresh_alert(running_system, "화장실이 너무 더러워요")


def fresh_alert(running_system: RunningSystem, text: str) -> dict[str, Any]:
    """A fresh alert at store-hongdae (its shift lead sees it; Gangnam staff do not)."""
    headers = login(running_system, "yuna@hongdae.demo")
    r = post_feedback(
        running_system,
        {"store_id": "store-hongdae", "channel": "survey", "text": text, "ratings": {"csat": 2}},
        store_id="store-hongdae",
    )
    assert r.status_code == 202
    feedback_id = r.json()["id"]
    notify = running_system.url("notify")
    found = wait_for(
        lambda: next(
            (
                a
                for a in httpx.get(f"{notify}/v1/alerts", headers=headers).json()["alerts"]
                if a["feedback_id"] == feedback_id
            ),
            None,
        )
    )
    return {"id": found["id"], "feedback_id": feedback_id, "headers": headers}


def test_login_errors_and_lockout(running_system: RunningSystem) -> None:
    url = f"{running_system.url('notify')}/v1/auth/login"
    problem(httpx.post(url, json={"email": "nobody@x.demo", "password": "x"}), 401)
    problem(httpx.post(url, json={"email": "jihoon@gangnam.demo"}), 422)
    # Repeated failures lock the account with back-off, even for the right password.
    for _ in range(5):
        problem(httpx.post(url, json={"email": "jihoon@gangnam.demo", "password": "wrong"}), 401)
    right = running_system.staff("jihoon@gangnam.demo")["password"]
    locked = httpx.post(url, json={"email": "jihoon@gangnam.demo", "password": right})
    body = problem(locked, 429)
    assert int(locked.headers["retry-after"]) > 0 and "try again" in body["detail"]


def test_tokens_are_required_and_checked(running_system: RunningSystem) -> None:
    notify = running_system.url("notify")
    problem(httpx.get(f"{notify}/v1/alerts"), 401)
    problem(httpx.get(f"{notify}/v1/alerts", headers={"Authorization": "Bearer not.a.jwt"}), 401)
    import jwt

    expired = jwt.encode(
        {"sub": "staff-gn-lead", "iss": "voc-notify", "exp": 1},
        running_system.system.secrets["jwt_secret"],
        algorithm="HS256",
    )
    body = problem(httpx.get(f"{notify}/v1/alerts", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in body["detail"]


def test_devices_reject_malformed_and_off_allowlist(
    running_system: RunningSystem, push_emulator: PushEmulator
) -> None:
    notify = running_system.url("notify")
    headers = login(running_system, "seoyeon@gangnam.demo")
    good = push_emulator.new_subscription(label="device-tests")
    body = problem(
        httpx.post(
            f"{notify}/v1/devices",
            headers=headers,
            json={**good, "keys": {"p256dh": "AAAA", "auth": good["keys"]["auth"]}},
        ),
        422,
    )
    assert body["errors"][0]["field"].startswith("body.")
    problem(httpx.post(f"{notify}/v1/devices", headers=headers, json={"endpoint": good["endpoint"]}), 422)
    body = problem(
        httpx.post(
            f"{notify}/v1/devices", headers=headers, json={**good, "endpoint": "https://evil.example/push/1"}
        ),
        422,
    )
    assert "allowlist" in body["detail"]
    ok = httpx.post(f"{notify}/v1/devices", headers=headers, json=good)
    assert ok.status_code == 201
    # Registering the same browser again is idempotent (same device id).
    assert httpx.post(f"{notify}/v1/devices", headers=headers, json=good).json() == ok.json()


def test_another_stores_alert_is_invisible(running_system: RunningSystem, alert: dict[str, Any]) -> None:
    notify = running_system.url("notify")
    gangnam = login(running_system, "minji@gangnam.demo")
    problem(httpx.get(f"{notify}/v1/alerts/{alert['id']}", headers=gangnam), 404)
    problem(httpx.post(f"{notify}/v1/alerts/{alert['id']}/ack", headers=gangnam), 404)
    assert alert["id"] not in [
        a["id"] for a in httpx.get(f"{notify}/v1/alerts", headers=gangnam).json()["alerts"]
    ]
    # The area manager of Seoul and the CX admin see it.
    for email in ("jimin@area.demo", "cx@hq.demo"):
        r = httpx.get(f"{notify}/v1/alerts/{alert['id']}", headers=login(running_system, email))
        assert r.status_code == 200


def test_before_takes_only_an_alert_id(running_system: RunningSystem, alert: dict[str, Any]) -> None:
    """`before` is the `next_before` of a page: an alert id. Any text was compared with the ids,
    so "zzzz" answered every alert and "0" none, both 200; now 422 naming query.before."""
    url, headers = f"{running_system.url('notify')}/v1/alerts", alert["headers"]
    for before in ("zzzz", "0", "", alert["id"].upper(), alert["id"] + "0", alert["id"][:-1] + "g"):
        body = problem(httpx.get(url, params={"before": before}, headers=headers), 422)
        assert [e["field"] for e in body["errors"]] == ["query.before"], before
    # An alert id pages as before: older alerts only.
    older = httpx.get(url, params={"before": alert["id"]}, headers=headers)
    assert older.status_code == 200, older.text
    assert all(a["id"] < alert["id"] for a in older.json()["alerts"])
    newest = httpx.get(url, params={"before": "ffffffff-ffff-7fff-bfff-ffffffffffff"}, headers=headers)
    assert alert["id"] in [a["id"] for a in newest.json()["alerts"]]


def test_resolve_needs_outcome_and_replays_are_idempotent(
    running_system: RunningSystem, alert: dict[str, Any]
) -> None:
    """A repeated ack or resolve by the same staff member (an offline queue replayed, a
    notification action sent twice) answers 200 with the original time, not 409; someone else's
    answers 409 naming who took the alert, and changes nothing (#23)."""
    notify = running_system.url("notify")
    url = f"{notify}/v1/alerts/{alert['id']}"
    body = problem(httpx.post(f"{url}/resolve", headers=alert["headers"], json={"note": "done"}), 422)
    assert any(e["field"] == "body.outcome" for e in body["errors"])
    problem(
        httpx.post(f"{url}/resolve", headers=alert["headers"], json={"outcome": "magic", "note": ""}), 422
    )
    body = problem(httpx.post(f"{url}/ack", headers=alert["headers"], params={"via": "pigeon"}), 422)
    assert [e["field"] for e in body["errors"]] == ["query.via"]
    assert httpx.get(url, headers=alert["headers"]).json()["status"] == "open"  # nothing changed
    first = httpx.post(f"{url}/ack", headers=alert["headers"])
    assert first.status_code == 200
    again = httpx.post(f"{url}/ack", headers=alert["headers"], params={"via": "offline_replay"})
    assert again.status_code == 200, again.text
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    manager = login(running_system, "woosung@hongdae.demo")
    body = problem(httpx.post(f"{url}/ack", headers=manager), 409)
    assert body["acknowledged_by"] == "staff-hd-lead"
    r = httpx.post(f"{url}/resolve", headers=alert["headers"], json={"outcome": "resolved"})
    assert r.status_code == 200
    replay = httpx.post(f"{url}/resolve", headers=alert["headers"], json={"outcome": "compensated"})
    assert replay.status_code == 200
    assert replay.json()["resolved_at"] == r.json()["resolved_at"]
    problem(httpx.post(f"{url}/resolve", headers=manager, json={"outcome": "resolved"}), 409)
    detail = httpx.get(url, headers=alert["headers"]).json()
    assert detail["outcome"] == "resolved" and detail["resolved_by"] == "staff-hd-lead"
    # Others read who did it by name (the app showed "staff-hd-lead").
    assert httpx.get(url, headers=manager).json()["staff_names"] == {"staff-hd-lead": "최유나"}


def test_concurrent_acks_and_resolves_take_effect_once(running_system: RunningSystem) -> None:
    """Two staff acknowledging at once: one takes the alert, the other gets 409 (on PostgreSQL both
    read it open and both got 200). Resolves sent at once by one staff member: one resolution on
    the case's timeline (each had published its events)."""
    alert = fresh_alert(running_system, "계산대 앞 바닥이 미끄러워요")
    url = f"{running_system.url('notify')}/v1/alerts/{alert['id']}"
    manager = login(running_system, "woosung@hongdae.demo")

    async def at_once(calls: list[tuple[str, dict[str, str], dict[str, Any] | None]]) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(f"{url}/{step}", headers=h, json=b) for step, h, b in calls)
            )
        return [a.status_code for a in answers]

    acks = asyncio.run(at_once([("ack", alert["headers"], None), ("ack", manager, None)]))
    assert sorted(acks) == [200, 409], acks
    resolved = {"outcome": "resolved"}
    taker = (
        alert["headers"]
        if httpx.get(url, headers=manager).json()["acknowledged_by"] == "staff-hd-lead"
        else manager
    )
    assert asyncio.run(at_once([("resolve", taker, resolved)] * 6)) == [200] * 6
    feedback = f"{running_system.url('feedback')}/v1/feedback/{alert['feedback_id']}"

    def kinds() -> list[str]:
        return [
            t["kind"] for t in httpx.get(feedback, headers=running_system.admin_headers).json()["timeline"]
        ]

    assert wait_for(lambda: "resolved" in kinds())
    time.sleep(1.0)  # the other resolves' events, had they been published, arrive as quickly
    assert kinds().count("resolved") == 1 and kinds().count("acknowledged") == 1, kinds()


def test_admin_directory_needs_the_admin_token(running_system: RunningSystem) -> None:
    notify = running_system.url("notify")
    problem(httpx.put(f"{notify}/v1/admin/stores", json=[]), 401)
    problem(httpx.put(f"{notify}/v1/admin/stores", json=[], headers={"Authorization": "Bearer wrong"}), 401)
    body = problem(
        httpx.put(
            f"{notify}/v1/admin/staff",
            headers=running_system.admin_headers,
            json=[{"id": "x", "name": "X", "email": "bad", "password": "short", "role": "boss"}],
        ),
        422,
    )
    fields = {e["field"] for e in body["errors"]}
    assert {"body.0.email", "body.0.password", "body.0.role"} <= fields


def test_vapid_public_key_is_a_p256_point(running_system: RunningSystem) -> None:
    import base64

    key = httpx.get(f"{running_system.url('notify')}/v1/push/vapid-public-key").json()["public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4


def test_the_stream_takes_a_header_or_a_single_use_ticket(running_system: RunningSystem) -> None:
    """Never the access token in the URL (it ends up in access logs, proxies and history)."""
    notify = running_system.url("notify")
    headers = login(running_system, "minji@gangnam.demo")
    token = headers["Authorization"].removeprefix("Bearer ")

    def opens(**kwargs: Any) -> int:
        with httpx.stream("GET", f"{notify}/v1/alerts/stream", timeout=10, **kwargs) as response:
            if response.status_code == 200:
                assert b": connected" in next(response.iter_raw())
            return response.status_code

    problem(httpx.get(f"{notify}/v1/alerts/stream", params={"access_token": token}), 401)
    assert opens(headers=headers) == 200
    problem(httpx.post(f"{notify}/v1/alerts/stream-ticket"), 401)
    issued = httpx.post(f"{notify}/v1/alerts/stream-ticket", headers=headers)
    assert issued.status_code == 200 and issued.json()["expires_in"] == 60
    ticket = issued.json()["ticket"]
    assert token not in ticket and len(ticket) >= 40
    assert opens(params={"ticket": ticket}) == 200
    problem(httpx.get(f"{notify}/v1/alerts/stream", params={"ticket": ticket}), 401)  # used up
    problem(httpx.get(f"{notify}/v1/alerts/stream", params={"ticket": "made-up"}), 401)
