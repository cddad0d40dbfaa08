"""Checking playbooks without publishing and rolling one back (the console's calls, #20 §2),
against real replicas: validation answers what a publish would (or every problem by file, line
and field) and writes nothing; a roll back republishes the earlier version's own file as the next
version (history keeps every version), reaches the other replica, is audited, and is refused
(409, nothing written) when there is no earlier version."""

from __future__ import annotations

import re
from typing import Any

from tests.actions.conftest import ADMIN, PublishRace, Replica, Replicas, playbook_yaml, unique_id, wait_until
from tests.actions.test_api import assert_problem
from voc_actions.playbooks.loader import library_path


async def validate(replica: Replica, files: dict[str, str]) -> Any:
    return await replica.client.post(
        f"{replica.url}/v1/playbooks:validate", json={"files": files}, headers=ADMIN
    )


async def roll_back(replica: Replica, playbook_id: str, body: Any = None, headers: Any = None) -> Any:
    return await replica.client.post(
        f"{replica.url}/v1/playbooks/{playbook_id}/rollback",
        json=body,
        headers=ADMIN if headers is None else headers,
    )


async def test_validation_answers_what_would_be_published_and_writes_nothing(
    actions_replicas: Replicas,
) -> None:
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("check")

    # An earlier test's publication may still be on its way to a replica: start from both equal.
    async def caught_up() -> bool:
        return await a.live_set() == await b.live_set()

    await wait_until(caught_up)
    before = await a.live_set()
    ok = await validate(a, {f"{pid}.yaml": playbook_yaml(pid)})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"valid": True, "playbooks": [{"id": pid, "version": 1, "file": f"{pid}.yaml"}]}
    assert await a.live_set() == before
    assert_problem(await a.get(f"/v1/playbooks/{pid}"), 404)

    bad = playbook_yaml(pid).replace("version: 1\n", "version: one\n")
    body = assert_problem(await validate(a, {f"{pid}.yaml": bad}), 422)
    assert [(e["file"], e["line"], e["field"]) for e in body["errors"]] == [(f"{pid}.yaml", 2, "version")]
    # Against the published set: a version that does not grow is refused before publishing.
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid)})).status_code == 200
    body = assert_problem(await validate(a, {f"{pid}.yaml": playbook_yaml(pid)}), 422)
    assert "bump it to 2" in body["errors"][0]["message"]
    assert_problem(await validate(a, {}), 422)
    assert_problem(
        await a.client.post(f"{a.url}/v1/playbooks:validate", json={"files": {f"{pid}.yaml": "x"}}), 401
    )


async def test_roll_back_republishes_the_earlier_version_as_the_next(actions_replicas: Replicas) -> None:
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("rollback")
    for version, title in ((1, "First"), (2, "Second")):
        published = await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=version, title_en=title)})
        assert published.status_code == 200, published.text

    rolled = await roll_back(a, pid)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["published"] == [{"id": pid, "version": 3, "file": f"{pid}.yaml"}]
    body = (await a.get(f"/v1/playbooks/{pid}")).json()
    assert (body["version"], body["title"]["en"]) == (3, "First v1")  # the first version's content
    assert [v["title"]["en"] for v in body["versions"]] == ["First v1", "Second v2", "First v1"]

    async def on_b() -> bool:
        return (await b.get(f"/v1/playbooks/{pid}")).json().get("version") == 3

    await wait_until(on_b)
    # An explicit earlier version: version 2's content becomes version 4.
    again = await roll_back(a, pid, {"to_version": 2})
    assert again.status_code == 200, again.text
    assert (await a.get(f"/v1/playbooks/{pid}")).json()["title"]["en"] == "Second v2"

    audit = await a.client.get(f"{a.url}/v1/audit", params={"action": "playbooks.rollback"}, headers=ADMIN)
    mine = [e for e in audit.json()["entries"] if e["target"] == f"playbook:{pid}"]
    assert len(mine) == 2 and {e["actor"] for e in mine} == {"admin"}


async def test_roll_back_without_an_earlier_version_is_refused(actions_replicas: Replicas) -> None:
    a = actions_replicas.a
    pid = unique_id("single")
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid)})).status_code == 200
    before = await a.live_set()
    assert "no earlier version" in assert_problem(await roll_back(a, pid), 409)["detail"]
    assert_problem(await roll_back(a, pid, {"to_version": 1}), 409)  # the active one itself
    assert_problem(await roll_back(a, "no-such-playbook"), 404)
    assert_problem(await roll_back(a, pid, {"to_version": 0}), 422)
    assert_problem(await roll_back(a, pid, {"to_version": "1"}), 422)
    assert_problem(await roll_back(a, pid, headers={}), 401)
    assert await a.live_set() == before


async def test_the_whole_bundled_library_is_checked_in_one_call(actions_replicas: Replicas) -> None:
    """The bundled library (54 playbooks, about 100 KiB) with every version bumped, as an admin
    would check a new release of it before publishing: the 64 KiB limit of every other call
    refused it with 413. The playbook and taxonomy calls take bulk bodies."""
    files = {
        path.name: re.sub(
            r"^version: (\d+)$", lambda m: f"version: {int(m[1]) + 1000}", path.read_text(), flags=re.M
        )
        for path in sorted(library_path().glob("*.yaml"))
        if path.name != "cases.yaml"  # the library's test cases (`voc playbooks test`), not a playbook
    }
    answer = await validate(actions_replicas.a, files)
    assert len(answer.request.content) > 64 * 1024
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["valid"] is True and len(answer.json()["playbooks"]) == len(files)


async def test_parallel_roll_backs_one_wins_and_the_others_conflict(
    actions_replicas: Replicas, publish_race: PublishRace
) -> None:
    """Five admins roll the same playbook back at once, through both replicas: one republishes,
    each other one finds the library changed under it (409, nothing written), never a 422 about a
    file version it did not send."""
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("race")
    for version in (1, 2, 3):
        assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=version)})).status_code == 200

    async def on_b() -> bool:
        return bool((await b.get(f"/v1/playbooks/{pid}")).json().get("version") == 3)

    await wait_until(on_b)
    replies = await publish_race.run([roll_back(r, pid, {"to_version": 2}) for r in (a, b, a, b, a)])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            body = assert_problem(reply, 409)
            assert body["detail"] == "The library changed while this was published; read it again."
            assert "errors" not in body or not body["errors"]

    # The winner may have been b: a serves it once its publication event arrives.
    async def both_serve_4() -> bool:
        served = [(await r.get(f"/v1/playbooks/{pid}")).json().get("version") for r in (a, b)]
        return served == [4, 4]

    await wait_until(both_serve_4)
    body = (await a.get(f"/v1/playbooks/{pid}")).json()
    assert [v["version"] for v in body["versions"]] == [1, 2, 3, 4]
    assert body["title"]["en"] == "Test playbook v2"  # the second version's content
    # Read again, the library rolls back as usual.
    again = await roll_back(a, pid, {"to_version": 1})
    assert again.status_code == 200, again.text
