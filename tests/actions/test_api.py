"""The actions REST API against a real replica (real database, real NATS): listing, versions,
admin-only publishing, every kind of bad playbook rejected with file/line/field and the live set
unchanged on both replicas, and plan lookup with its body validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions.conftest import ADMIN, Replica, Replicas, playbook_yaml, unique_id, wait_until
from voc_platform.identity import ROLES, Principal, issue_token

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


async def test_list_playbooks_serves_the_bundled_library(actions_replicas: Replicas) -> None:
    response = await actions_replicas.a.get("/v1/playbooks")
    assert response.status_code == 200
    body = response.json()
    assert body["publication_id"] >= 1
    by_id = {p["id"]: p for p in body["playbooks"]}
    assert len(by_id) >= 45
    safety = by_id["food-safety-default"]
    assert safety["priority"] == "urgent"
    assert safety["when"] == {"category": ["food_safety"]}
    assert safety["title"]["ko"] and safety["title"]["en"]
    assert [e["roles"] for e in safety["escalation"]] == [["store_manager"], ["area_manager"], ["cx_admin"]]
    assert safety["steps"][1]["role"] == "shift_lead"


async def test_get_one_playbook_and_unknown_id(actions_replicas: Replicas) -> None:
    response = await actions_replicas.a.get("/v1/playbooks/restaurant-food-quality-vip-repeat")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "restaurant-food-quality-vip-repeat"
    assert body["when"]["customer.tier"] == ["vip", "vvip", "gold"]
    assert body["when"]["signals.repeat_issue"] is True
    assert [v["version"] for v in body["versions"]] == [body["version"]]

    missing = await actions_replicas.a.get("/v1/playbooks/no-such-playbook")
    assert "no-such-playbook" in assert_problem(missing, 404)["detail"]


READ_ROUTES = ("/v1/playbooks", "/v1/playbooks/food-safety-default")


@pytest.mark.parametrize("path", READ_ROUTES)
async def test_reading_the_library_needs_a_valid_token(actions_replicas: Replicas, path: str) -> None:
    """The ingress routes /v1/playbooks on the public host: no token, a made-up one or a staff
    token signed with another secret gets 401 problem+json, not the scripts and limits."""
    a = actions_replicas.a
    stranger = Principal(staff_id="staff-elsewhere", role="cx_admin", store_ids=(), area_id=None)
    foreign = issue_token(stranger, secret="another-deployments-secret-0123456789abcdef", ttl=300)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {foreign}"}):
        refused = await a.get(path, headers=headers)
        assert_problem(refused, 401)
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "playbooks" not in refused.json() and "steps" not in refused.json()


@pytest.mark.parametrize("path", READ_ROUTES)
async def test_every_role_and_the_admin_token_read_the_library(actions_replicas: Replicas, path: str) -> None:
    a = actions_replicas.a
    secret = a.runtime.settings.jwt_secret
    assert (await a.get(path)).status_code == 200  # the admin token
    for role in ROLES:
        member = Principal(staff_id=f"staff-{role}", role=role, store_ids=("store-gangnam",), area_id=None)
        token = issue_token(member, secret=secret, ttl=300)
        response = await a.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (role, response.text)


async def test_publishing_needs_the_admin_token(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    pid = unique_id("auth")
    before = await a.live_set()
    files = {f"{pid}.yaml": playbook_yaml(pid)}

    no_token = await a.publish(files, headers={})
    assert_problem(no_token, 401)
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert_problem(await a.publish(files, headers={"Authorization": "Bearer not-the-admin-token"}), 401)

    assert await a.live_set() == before
    assert_problem(await a.get(f"/v1/playbooks/{pid}"), 404)


async def test_a_new_version_becomes_active_and_the_old_one_is_kept(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    pid = unique_id("versions")
    first = await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=1)})
    assert first.status_code == 200, first.text
    assert first.json()["published"] == [{"id": pid, "version": 1, "file": f"{pid}.yaml"}]
    second = await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=2, title_en="Revised")})
    assert second.status_code == 200, second.text
    assert second.json()["publication_id"] > first.json()["publication_id"]

    body = (await a.get(f"/v1/playbooks/{pid}")).json()
    assert body["version"] == 2 and body["title"]["en"] == "Revised v2"
    assert [(v["version"], v["title"]["en"]) for v in body["versions"]] == [
        (1, "Test playbook v1"),
        (2, "Revised v2"),
    ]
    # Every plan records the playbook id and the version it came from.
    plan = (
        await a.lookup({"feedback": {"category": "food_quality", "touchpoint": pid}, "language": "en"})
    ).json()
    assert (plan["playbook_id"], plan["version"], plan["title"]) == (pid, 2, "Revised v2")


async def _same(replica: Replica, expected: dict[str, Any]) -> bool:
    return await replica.live_set() == expected


def _broken(pid: str, old: str, new: str, **kwargs: Any) -> str:
    text = playbook_yaml(pid, **kwargs)
    assert old in text, old
    return text.replace(old, new)


# Line numbers refer to playbook_yaml's layout: 1 id, 2 version, 3 title, 4 when, 5 category,
# 6 touchpoint, 7 priority, 8 notify, 9 escalate, 10 its first step, 11 sla, 12 steps,
# 13 first step, 14 second step, 15 script, 16 compensation.
BAD_PLAYBOOKS: dict[str, tuple[Any, int | None, str, str]] = {
    "invalid yaml": (
        lambda pid: _broken(pid, 'en: "Test playbook v1"}', 'en: "Test playbook v1"'),
        4,
        "(yaml)",
        "invalid YAML",
    ),
    "YAML anchor and alias": (
        lambda pid: _broken(
            pid, "sla: {ack: 2m, resolve: 20m}\n", "sla: &sla {ack: 2m, resolve: 20m}\nx-copy: *sla\n"
        ),
        11,
        "(yaml)",
        "anchors and aliases are not allowed",
    ),
    "unknown condition key": (
        lambda pid: playbook_yaml(pid, extra_when="  weather: rainy\n"),
        7,
        "when.weather",
        "unknown condition key",
    ),
    "unknown category": (
        lambda pid: playbook_yaml(pid, category="teleportation"),
        5,
        "when.category",
        "unknown category 'teleportation'",
    ),
    "unknown role to notify": (
        lambda pid: _broken(pid, "roles: [shift_lead]}", "roles: [janitor]}"),
        8,
        "notify.roles",
        "unknown role 'janitor'",
    ),
    "unknown role on a step": (
        lambda pid: _broken(pid, "role: shift_lead}", "role: janitor}"),
        13,
        "steps[0].role",
        "unknown role 'janitor'",
    ),
    "template syntax error": (
        lambda pid: _broken(pid, "'{customer.name}님, 죄송합니다.'", "'{customer.name님, 죄송합니다.'"),
        15,
        "script.ko",
        "template error: unclosed '{'",
    ),
    "template that tries to run code": (
        lambda pid: _broken(
            pid, "'{customer.name}, we are sorry.'", '"{{ cycler.__init__.__globals__.os }}"'
        ),
        15,
        "script.en",
        "Jinja syntax is not supported",
    ),
    "unknown template variable": (
        lambda pid: _broken(pid, "'{customer.name}, we are sorry.'", "'{customer.password}'"),
        15,
        "script.en",
        "unknown variable {customer.password}",
    ),
    "cyclic escalation": (
        lambda pid: _broken(
            pid,
            "  - {after: 5m, roles: [store_manager]}\n",
            "  - {after: 5m, roles: [store_manager]}\n  - {after: 10m, roles: [store_manager]}\n",
        ),
        11,
        "escalate[1].roles",
        "cyclic escalation",
    ),
    "empty escalation": (
        lambda pid: _broken(pid, "escalate:\n  - {after: 5m, roles: [store_manager]}\n", "escalate: []\n"),
        9,
        "escalate",
        "empty escalation chain",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PLAYBOOKS))
async def test_a_bad_playbook_is_rejected_with_file_line_field_and_nothing_changes(
    actions_replicas: Replicas, case: str
) -> None:
    make, line, field, message = BAD_PLAYBOOKS[case]
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("bad")
    good_pid = unique_id("good")
    # Earlier tests' publishes reach replica B asynchronously: start from a settled state.
    before = await a.live_set()
    await wait_until(lambda: _same(b, before))
    # A valid file in the same publish is not published either: all or nothing.
    files = {f"{pid}.yaml": make(pid), f"{good_pid}.yaml": playbook_yaml(good_pid)}
    body = assert_problem(await a.publish(files), 422)
    assert any(
        e["file"] == f"{pid}.yaml" and e["line"] == line and e["field"] == field and message in e["message"]
        for e in body["errors"]
    ), body["errors"]
    assert {e["file"] for e in body["errors"]} == {f"{pid}.yaml"}
    assert await a.live_set() == before
    assert await b.live_set() == before
    assert_problem(await a.get(f"/v1/playbooks/{good_pid}"), 404)


async def test_duplicate_ids_are_rejected(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    pid = unique_id("dup")
    before = await a.live_set()
    body = assert_problem(
        await a.publish({"first.yaml": playbook_yaml(pid), "second.yaml": playbook_yaml(pid)}), 422
    )
    assert body["errors"] == [
        {
            "file": "second.yaml",
            "line": 1,
            "field": "id",
            "message": f"duplicate id '{pid}': already used in first.yaml",
        }
    ]
    assert await a.live_set() == before


async def test_a_version_that_does_not_increase_is_rejected(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    before = await a.live_set()
    current = before["versions"]["food-quality-default"]
    text = playbook_yaml("food-quality-default", version=current, touchpoint="regress")
    body = assert_problem(await a.publish({"food-quality-default.yaml": text}), 422)
    (error,) = body["errors"]
    assert (error["file"], error["line"], error["field"]) == ("food-quality-default.yaml", 2, "version")
    assert f"bump it to {current + 1}" in error["message"]
    assert await a.live_set() == before
    served = (await a.get("/v1/playbooks/food-quality-default")).json()
    assert served["when"] == {"category": ["food_quality"]}  # the shipped one, untouched


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"files": {}}, "body.files"),
        ({"files": {"../escape.yaml": "id: x"}}, "body.files.../escape.yaml.[key]"),
        ({"files": {"notes.txt": "id: x"}}, "body.files.notes.txt.[key]"),
        ({"files": {"a.yaml": 42}}, "body.files.a.yaml"),
        ({"files": {"a.yaml": "x" * 60_001}}, "body.files.a.yaml"),
        ({"files": {"a.yaml": "id: x"}, "dry_run": True}, "body.dry_run"),
        ({"playbooks": []}, "body.files"),
    ],
)
async def test_a_malformed_publish_body_is_422(
    actions_replicas: Replicas, body: dict[str, Any], field: str
) -> None:
    a = actions_replicas.a
    before = await a.live_set()
    response = await a.client.put(f"{a.url}/v1/playbooks", json=body, headers=ADMIN)
    problem = assert_problem(response, 422)
    assert field in [e["field"] for e in problem["errors"]], problem["errors"]
    assert await a.live_set() == before


async def test_a_publish_body_that_is_not_json_is_400(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    before = await a.live_set()
    response = await a.client.put(
        f"{a.url}/v1/playbooks",
        content=b"id: not-json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert await a.live_set() == before


DESIGN_BODY: dict[str, Any] = {
    "feedback": {
        "category": "food_safety",
        "severity": "critical",
        "sentiment": "negative",
        "channel": "kiosk",
        "touchpoint": "dining",
        "store_id": "store-gangnam",
        "language": "ko",
    },
    "customer": {"tier": "vip", "signals": {"repeat_issue": True}},
}


async def test_lookup_needs_a_token_that_may_read_the_library(actions_replicas: Replicas) -> None:
    """The plan is the library's content (steps, scripts, compensation limits): no more public
    than `GET /v1/playbooks`."""
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        assert_problem(await actions_replicas.a.lookup(DESIGN_BODY, headers=headers), 401)


async def test_lookup_with_the_design_body(actions_replicas: Replicas) -> None:
    response = await actions_replicas.a.lookup(DESIGN_BODY)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert set(plan) >= {
        "playbook_id", "version", "title", "priority", "steps", "script", "sla",
        "notify_roles", "escalation", "matched_because",
    }  # fmt: skip
    assert plan["playbook_id"] == "food-safety-default" and plan["version"] == 1
    assert plan["title"] == "식품 안전 — 즉시 대응" and plan["language"] == "ko"
    assert plan["priority"] == "urgent"
    assert plan["sla"] == {"ack_seconds": 120, "resolve_seconds": 1800}
    assert plan["notify_roles"] == ["shift_lead", "store_manager"]
    assert plan["escalation"][0] == {"after_seconds": 300, "roles": ["store_manager"]}
    assert all(s["text"] and s["role"] for s in plan["steps"])
    # The VIP repeat customer of the body gets the shipped modifiers on top of the default.
    assert plan["matched_because"][0] == "category=food_safety"
    assert plan["modifiers"] == ["modifier-vip", "modifier-repeat-issue"]
    assert [line.split(":")[0] for line in plan["matched_because"][1:]] == [
        "modifier modifier-vip",
        "modifier modifier-repeat-issue",
    ]
    matched = [(m["key"], m["modifier"]) for m in plan["matched"]]
    assert matched[0] == ("category", "") and ("signals.repeat_issue", "modifier-repeat-issue") in matched
    assert {m["modifier"] for m in plan["matched"]} == {"", "modifier-vip", "modifier-repeat-issue"}
    # No name was given: the script speaks to "고객", never a blank or a raw placeholder.
    assert "{" not in plan["script"] and "고객님" in plan["script"]


async def test_lookup_uses_store_facts_customer_variables_and_local_time(actions_replicas: Replicas) -> None:
    body = {
        "feedback": {"category": "wait_time", "severity": "medium", "sentiment": "negative"},
        "store": {"format": "restaurant", "region": "seoul", "name": "강남역점"},
        "customer": {"tier": "gold", "name": "김민수"},
        "local_time": "2026-11-18T12:10:00+09:00",  # a Wednesday, lunch peak
    }
    plan = (await actions_replicas.a.lookup(body)).json()
    assert plan["playbook_id"] == "restaurant-wait-time-lunch-peak"
    assert "time.hours 11:30-13:30 (12:10)" in plan["matched_because"]
    assert "time.weekdays in [mon, tue, wed, thu, fri] (wed)" in plan["matched_because"]
    # The same as data, for an app to word in its reader's language.
    assert {"key": "time.hours", "values": ["11:30-13:30"], "actual": "12:10", "modifier": ""} in plan[
        "matched"
    ]
    assert {
        "key": "customer.tier",
        "values": ["vip", "vvip"],
        "actual": "gold",
        "modifier": "modifier-vip",
    } not in (plan["matched"])  # a gold customer: the VIP modifier did not apply
    assert ("wait-time-default", 1) in [(r["playbook_id"], r["specificity"]) for r in plan["runners_up"]]
    saturday = (await actions_replicas.a.lookup({**body, "local_time": "2026-11-21T12:10:00"})).json()
    assert saturday["playbook_id"] == "wait-time-default"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.feedback"),
        ({"feedback": {}}, "body.feedback.category"),
        ({"feedback": {"category": "teleportation"}}, "body.feedback.category"),
        ({"feedback": {"category": "wait_time", "severity": "apocalyptic"}}, "body.feedback.severity"),
        ({"feedback": {"category": "wait_time", "sentiment": "meh"}}, "body.feedback.sentiment"),
        ({"feedback": {"category": "wait_time", "channel": "pigeon"}}, "body.feedback.channel"),
        ({"feedback": {"category": "wait_time", "mood": "bad"}}, "body.feedback.mood"),
        (
            {"feedback": {"category": "wait_time"}, "customer": {"signals": {"psychic": True}}},
            "body.customer.signals",
        ),
        (
            {"feedback": {"category": "wait_time"}, "customer": {"signals": {"vip": "yes"}}},
            "body.customer.signals.vip",
        ),
        (
            {"feedback": {"category": "wait_time"}, "customer": {"repeat_count": -1}},
            "body.customer.repeat_count",
        ),
        ({"feedback": {"category": "wait_time"}, "local_time": "lunchtime"}, "body.local_time"),
        ({"feedback": {"category": "wait_time"}, "language": "<script>"}, "body.language"),
        ({"feedback": {"category": "wait_time"}, "store": {"format": "x" * 61}}, "body.store.format"),
    ],
)
async def test_a_bad_lookup_body_is_422(actions_replicas: Replicas, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(await actions_replicas.a.lookup(body), 422)
    fields = [e["field"] for e in problem["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
