"""Taxonomy as data (#20 §3) against real replicas: a new category is published with its default
playbook in one transaction and served by both replicas (REST and gRPC GetTaxonomy) and by plan
lookups; a version without a default playbook, or retiring a category that playbooks still name,
is refused naming them with nothing written; retiring keeps the label; a roll back is checked
like a publish; bad documents are refused naming the field; only taxonomy.manage may write."""

from __future__ import annotations

import uuid
from typing import Any

from tests.actions.conftest import ADMIN, Replica, Replicas, wait_until
from tests.actions.test_api import assert_problem
from voc.actions.v1 import actions_pb2
from voc_platform import taxonomy
from voc_platform.identity import Principal, issue_token


def new_category() -> str:
    return f"allergen_{uuid.uuid4().hex[:8]}"


def default_playbook(category: str, *, version: int = 1, retarget: bool = False) -> dict[str, str]:
    """The category's default playbook (`retarget`: a version that no longer names it)."""
    when = f"  category: other\n  touchpoint: {category}\n" if retarget else f"  category: {category}\n"
    text = (
        f"id: {category.replace('_', '-')}-default\nversion: {version}\n"
        "title: {ko: 알레르기 문의, en: Allergen question}\n"
        f"when:\n{when}priority: urgent\nnotify: {{roles: [shift_lead]}}\n"
        "sla: {ack: 2m, resolve: 30m}\nsteps:\n  - {ko: 성분표를 확인한다, en: Check the ingredients}\n"
        "script: {ko: 확인하겠습니다., en: We will check.}\n"
    )
    return {f"{category}.yaml": text}


async def published(replica: Replica) -> dict[str, Any]:
    body: dict[str, Any] = (await replica.get("/v1/taxonomy")).json()
    return body


def document(body: dict[str, Any], *, drop: str = "", add: dict[str, Any] | None = None) -> dict[str, Any]:
    """The published taxonomy as a document to send back, without `drop`, with `add`."""
    cats = {
        c["id"]: {k: v for k, v in c.items() if k != "id" and v is not None}
        for c in body["categories"]
        if c["id"] != drop
    }
    return {
        "departments": {d["id"]: {"ko": d["ko"], "en": d["en"]} for d in body["departments"]},
        "categories": {**cats, **(add or {})},
    }


async def put(replica: Replica, body: Any, headers: Any = None) -> Any:
    return await replica.client.put(
        f"{replica.url}/v1/taxonomy", json=body, headers=ADMIN if headers is None else headers
    )


async def version_count(replica: Replica) -> int:
    return len(
        (await replica.client.get(f"{replica.url}/v1/taxonomy/versions", headers=ADMIN)).json()["versions"]
    )


async def test_a_category_is_published_with_its_default_playbook_and_served_everywhere(
    actions_replicas: Replicas,
) -> None:
    a, b = actions_replicas.a, actions_replicas.b
    cat = new_category()
    entry = {"ko": "알레르기", "en": "Allergens", "parent": "food_safety", "severity": "high",
             "department": "hq_food_safety"}  # fmt: skip
    doc = document(await published(a), add={cat: entry})
    before = await version_count(a)

    # Without a default playbook: refused naming the category, nothing written.
    body = assert_problem(await put(a, {"taxonomy": doc}), 422)
    assert [e["field"] for e in body["errors"]] == [f"categories.{cat}"]
    assert "no default playbook" in body["errors"][0]["message"]
    assert await version_count(a) == before
    assert cat not in [c["id"] for c in (await published(b))["categories"]]

    # Validation answers what publishing would, and writes nothing.
    checked = await a.client.post(
        f"{a.url}/v1/taxonomy:validate",
        json={"taxonomy": doc, "playbooks": default_playbook(cat)},
        headers=ADMIN,
    )
    assert checked.status_code == 200, checked.text
    assert await version_count(a) == before

    ok = await put(a, {"taxonomy": doc, "playbooks": default_playbook(cat)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == (await published(a))["version"]
    assert await version_count(a) == before + 1

    async def on_b() -> bool:
        cats = {c["id"]: c for c in (await published(b))["categories"]}
        return cat in cats and cats[cat]["department"] == "hq_food_safety"

    await wait_until(on_b)
    reply = await b.stub.GetTaxonomy(actions_pb2.GetTaxonomyRequest())
    assert {c.id: c.department_id for c in reply.taxonomy.categories}[cat] == "hq_food_safety"

    async def plan_on_b() -> bool:
        found = await b.lookup({"feedback": {"category": cat}})
        return found.status_code == 200 and found.json()["playbook_id"] == f"{cat.replace('_', '-')}-default"

    await wait_until(plan_on_b)
    audit = await a.client.get(f"{a.url}/v1/audit", params={"action": "taxonomy.publish"}, headers=ADMIN)
    mine = [e for e in audit.json()["entries"] if cat in e["detail"].get("added", [])]
    assert len(mine) == 1 and mine[0]["actor"] == "admin"


async def test_retiring_a_category_that_playbooks_name_is_refused_naming_them(
    actions_replicas: Replicas,
) -> None:
    a = actions_replicas.a
    before = await version_count(a)
    body = assert_problem(await put(a, {"taxonomy": document(await published(a), drop="food_quality")}), 422)
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert "food-quality-default" in errors["categories.food_quality"]
    assert "restaurant-food-quality-dining" in errors["categories.food_quality"]
    assert "food-quality-default" in body["detail"]
    assert await version_count(a) == before
    assert taxonomy.current().accepts("food_quality")


async def test_a_retired_category_keeps_its_label_and_a_roll_back_is_checked(
    actions_replicas: Replicas,
) -> None:
    a = actions_replicas.a
    cat = new_category()
    doc = document(await published(a), add={cat: {"ko": "임시", "en": "Temporary"}})
    assert (await put(a, {"taxonomy": doc, "playbooks": default_playbook(cat)})).status_code == 200

    # Left out, with its playbook's next version no longer naming it: retired, label kept.
    retire = await put(
        a,
        {
            "taxonomy": document(await published(a), drop=cat),
            "playbooks": default_playbook(cat, version=2, retarget=True),
        },
    )
    assert retire.status_code == 200, retire.text
    assert retire.json()["retired"] == [cat]
    entry = next(c for c in (await published(a))["categories"] if c["id"] == cat)
    assert (entry["retired"], entry["en"]) == (True, "Temporary")
    assert taxonomy.label(cat, "ko") == "임시" and not taxonomy.current().accepts(cat)
    assert assert_problem(await a.lookup({"feedback": {"category": "no_such_category"}}), 422)

    # Back to the version before: the category would have no default playbook any more.
    body = assert_problem(await a.client.post(f"{a.url}/v1/taxonomy/rollback", headers=ADMIN), 422)
    assert body["errors"][0]["field"] == f"categories.{cat}"
    assert_problem(
        await a.client.post(f"{a.url}/v1/taxonomy/rollback", json={"to_version": 9999}, headers=ADMIN), 409
    )


async def test_bad_documents_are_refused_naming_the_field(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    current = await published(a)
    before = await version_count(a)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"x_one": {"ko": "하나", "en": "One", "parent": "nowhere"}}, "categories.x_one.parent"),
        ({"x_one": {"ko": "하나"}}, "categories.x_one.en"),
        ({"x_one": {"ko": "하나", "en": "One", "severity": "dire"}}, "categories.x_one.severity"),
        ({"x_one": {"ko": "하나", "en": "One", "department": "legal"}}, "categories.x_one.department"),
        (
            {
                "x_one": {"ko": "하나", "en": "One", "parent": "x_two"},
                "x_two": {"ko": "둘", "en": "Two", "parent": "x_one"},
            },
            "categories.x_one.parent",
        ),
    ]
    for add, field in cases:
        body = assert_problem(await put(a, {"taxonomy": document(current, add=add)}), 422)
        assert field in [e["field"] for e in body["errors"]], (field, body)
    duplicated = "categories:\n  other: {ko: 기타, en: Other}\n  other: {ko: 기타, en: Again}\n"
    body = assert_problem(await put(a, {"yaml": duplicated}), 422)
    assert body["errors"][0]["field"] == "categories.other"
    assert_problem(await put(a, {"yaml": "categories: [unclosed"}), 422)
    assert_problem(await put(a, {}), 422)
    assert await version_count(a) == before


async def test_only_taxonomy_managers_write(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    doc = {"taxonomy": document(await published(a))}
    before = (await published(a))["version"]
    assert (await a.get("/v1/taxonomy")).status_code == 200  # read by anyone on the network
    assert_problem(await put(a, doc, headers={}), 401)
    secret = a.runtime.settings.jwt_secret
    for role, status in (("store_manager", 403), ("analyst", 403), ("cx_admin", 200)):
        token = issue_token(Principal(f"t-{role}", role, ("s1",), None), secret=secret, ttl=300)
        headers = {"Authorization": f"Bearer {token}"}
        assert (await put(a, doc, headers=headers)).status_code == status, role
        versions = await a.client.get(f"{a.url}/v1/taxonomy/versions", headers=headers)
        assert versions.status_code == status, role
    audit = await a.client.get(f"{a.url}/v1/audit", params={"action": "taxonomy.publish"}, headers=ADMIN)
    assert "staff:t-cx_admin" in {e["actor"] for e in audit.json()["entries"]}
    # A roll back (to the same content as before cx_admin's publication) is theirs too, audited (#20 §6).
    for role, status in (("store_manager", 403), ("cx_admin", 200)):
        token = issue_token(Principal(f"t-{role}", role, ("s1",), None), secret=secret, ttl=300)
        back = await a.client.post(
            f"{a.url}/v1/taxonomy/rollback", json={"to_version": before},
            headers={"Authorization": f"Bearer {token}", "X-Voc-Actor": "someone-else"},
        )  # fmt: skip
        assert back.status_code == status, (role, back.text)
    audit = await a.client.get(f"{a.url}/v1/audit", params={"action": "taxonomy.rollback"}, headers=ADMIN)
    mine = [e for e in audit.json()["entries"] if e["actor"] == "staff:t-cx_admin"]
    assert mine and (mine[0]["actor_role"], mine[0]["on_behalf_of"]) == ("cx_admin", None)


async def test_a_playbook_version_that_leaves_a_category_without_its_default_is_refused(
    actions_replicas: Replicas,
) -> None:
    a = actions_replicas.a
    cat = new_category()
    doc = document(await published(a), add={cat: {"ko": "셋", "en": "Three"}})
    assert (await put(a, {"taxonomy": doc, "playbooks": default_playbook(cat)})).status_code == 200
    body = assert_problem(await a.publish(default_playbook(cat, version=2, retarget=True)), 422)
    assert [e["field"] for e in body["errors"]] == ["when.category"]
    assert cat in body["errors"][0]["message"]
    playbook = (await a.get(f"/v1/playbooks/{cat.replace('_', '-')}-default")).json()
    assert playbook["version"] == 1


async def test_malformed_and_deeply_nested_documents_are_422_not_500(actions_replicas: Replicas) -> None:
    """Found by fuzzing: a list as a parent or a mapping as a department made a TypeError, and
    "[" thousands deep a RecursionError, in the taxonomy and the playbook checks (500s)."""
    a = actions_replicas.a
    before = await version_count(a)
    for bad, field in (({"parent": []}, "parent"), ({"department": {}}, "department")):
        doc = {"categories": {"x_odd": {"ko": "가", "en": "b", **bad}}}
        for call in (put(a, {"taxonomy": doc}), a.client.post(
            f"{a.url}/v1/taxonomy:validate", json={"taxonomy": doc}, headers=ADMIN
        )):  # fmt: skip
            body = assert_problem(await call, 422)
            assert f"categories.x_odd.{field}" in [e["field"] for e in body["errors"]], body
    deep = "a: " + "[" * 5000 + "]" * 5000
    body = assert_problem(
        await a.client.post(f"{a.url}/v1/taxonomy:validate", json={"yaml": deep}, headers=ADMIN), 422
    )
    assert "nested too deeply" in body["detail"], body
    checked = await a.client.post(
        f"{a.url}/v1/playbooks:validate", json={"files": {"deep.yaml": deep}}, headers=ADMIN
    )
    assert checked.status_code in (200, 422), checked.text
    assert "nested too deeply" in checked.text
    assert await version_count(a) == before
