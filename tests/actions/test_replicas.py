"""Publishing reaches every running replica without a restart, and a broken publish never
replaces the working set: two actions replicas share one database and one nats-server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.actions.conftest import PublishRace, Replica, Replicas, playbook_yaml, unique_id, wait_until
from tests.conftest import DatabaseFactory
from voc.actions.v1 import actions_pb2
from voc.common.v1 import common_pb2
from voc_actions import live, publishing
from voc_actions.errors import PlaybooksRejected
from voc_actions.events import Reloader
from voc_actions.models import Base, Publication
from voc_actions.playbooks import Library, default_library, read_directory
from voc_actions.playbooks import library_path as bundled_library_path
from voc_platform.db import Database


async def served_version(replica: Replica, playbook_id: str) -> int | None:
    response = await replica.get(f"/v1/playbooks/{playbook_id}")
    return int(response.json()["version"]) if response.status_code == 200 else None


async def grpc_plan(replica: Replica, touchpoint: str) -> actions_pb2.Plan:
    request = actions_pb2.GetActionPlanRequest(
        feedback=common_pb2.FeedbackFacts(category="food_quality", touchpoint=touchpoint), language="en"
    )
    response = await replica.stub.GetActionPlan(request)
    return response.plan


async def test_a_publish_through_one_replica_reaches_the_other_without_a_restart(
    actions_replicas: Replicas,
) -> None:
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("fanout")
    published = await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=1)})
    assert published.status_code == 200, published.text
    started = time.monotonic()
    await wait_until(lambda: _serves(b, pid, 1), timeout=3)
    print(f"\npublish on A -> served by B: {(time.monotonic() - started) * 1000:.0f} ms")
    plan = await grpc_plan(b, pid)
    assert (plan.playbook_id, plan.version) == (pid, 1)

    # And back: B validates against the shared database, A picks B's version up.
    republished = await b.publish({f"{pid}.yaml": playbook_yaml(pid, version=2, title_en="From B")})
    assert republished.status_code == 200, republished.text
    await wait_until(lambda: _serves(a, pid, 2), timeout=3)
    plan = await grpc_plan(a, pid)
    assert (plan.playbook_id, plan.version, plan.title) == (pid, 2, "From B v2")
    assert (await a.live_set()) == (await b.live_set())


async def _serves(replica: Replica, playbook_id: str, version: int) -> bool:
    return await served_version(replica, playbook_id) == version


async def test_a_broken_publish_never_replaces_the_working_set_on_either_replica(
    actions_replicas: Replicas,
) -> None:
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("keep")
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=1)})).status_code == 200
    await wait_until(lambda: _serves(b, pid, 1), timeout=3)
    settled = await a.live_set()
    assert await b.live_set() == settled

    broken = playbook_yaml(pid, version=2).replace("roles: [shift_lead]}", "roles: [nobody]}")
    for replica in (a, b):
        response = await replica.publish({f"{pid}.yaml": broken})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "notify.roles"
    # A later valid publish proves the event path is live; the broken one left no trace.
    marker = unique_id("marker")
    assert (await a.publish({f"{marker}.yaml": playbook_yaml(marker)})).status_code == 200
    await wait_until(lambda: _serves(b, marker, 1), timeout=3)
    for replica in (a, b):
        current = await replica.live_set()
        assert current["publication_id"] == settled["publication_id"] + 1
        assert current["versions"][pid] == 1
        plan = await grpc_plan(replica, pid)
        assert (plan.playbook_id, plan.version) == (pid, 1)
        body = (await replica.get(f"/v1/playbooks/{pid}")).json()
        assert [v["version"] for v in body["versions"]] == [1]


async def test_a_replica_behind_the_database_cannot_publish_a_version_regress(
    actions_replicas: Replicas,
) -> None:
    """A replica that has not yet seen the latest event validates against the database."""
    a = actions_replicas.a
    pid = unique_id("stale")
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid, version=3)})).status_code == 200
    database = Database(actions_replicas.database_url)
    try:
        stale = live.LiveLibrary(library=default_library(), publication_id=1)
        async with database.session() as session:
            latest = await live.latest_publication_id(session)
        with pytest.raises(PlaybooksRejected) as raised:
            async with database.transaction() as session:
                await publishing.record_publication(
                    session, live=stale, files={f"{pid}.yaml": playbook_yaml(pid, version=2)}, actor="test"
                )
        assert raised.value.problems[0].field == "version"
        assert "not greater than the published version 3" in raised.value.problems[0].message
        async with database.session() as session:
            assert await live.latest_publication_id(session) == latest
    finally:
        await database.dispose()


async def test_a_replica_that_missed_the_event_catches_up_from_the_database(
    actions_replicas: Replicas,
) -> None:
    """The periodic check's body: a replica with an old library reloads every publication."""
    a = actions_replicas.a
    pid = unique_id("missed")
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid)})).status_code == 200
    database = Database(actions_replicas.database_url)
    try:
        behind = live.LiveLibrary(library=Library(), publication_id=0)
        reloader = Reloader(database, behind)
        assert await reloader.reload_if_newer() is True
        assert behind.library.get(pid) is not None
        assert behind.publication_id == (await a.live_set())["publication_id"]
        assert await reloader.reload_if_newer() is False
    finally:
        await database.dispose()


async def test_replay_skips_a_publication_that_lost_a_publish_race(databases: DatabaseFactory) -> None:
    """Two replicas racing to publish the same version: the loser is skipped on replay, the
    library still loads, and later versions apply."""
    database = Database(databases.url("actions_replay"))
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        pid = unique_id("race")
        publications: list[dict[str, Any]] = [
            {"files": dict(read_directory(bundled_library_path()))},
            {"files": {f"{pid}.yaml": playbook_yaml(pid, version=1)}},
            {"files": {f"{pid}.yaml": playbook_yaml(pid, version=1, title_en="Racer")}},
            {"files": {f"{pid}.yaml": playbook_yaml(pid, version=2)}},
        ]
        async with database.transaction() as session:
            for pub in publications:
                session.add(
                    Publication(published_at=time.time(), published_by="test", playbook_ids=[], **pub)
                )
        async with database.session() as session:
            served = await live.rebuild(session)
        assert served.publication_id == 4
        assert [
            (p.version, p.title.en.source if p.title.en else "") for p in served.library.versions(pid)
        ] == [
            (1, "Test playbook v1"),
            (2, "Test playbook v2"),
        ]
        assert len(served.library) == len(default_library()) + 1
    finally:
        await database.dispose()


async def test_parallel_publishes_of_one_version_one_wins_and_the_others_conflict(
    actions_replicas: Replicas, publish_race: PublishRace
) -> None:
    """Five admins publish version 2 of one playbook at once, through both replicas: one is
    recorded, the others were valid on the library they started from and lost the race (409,
    nothing written); parallel publishes of different playbooks all pass. The same stale file
    sent later, against a library that did not change meanwhile, is the caller's own mistake (422)."""
    a, b = actions_replicas.a, actions_replicas.b
    pid = unique_id("race")
    assert (await a.publish({f"{pid}.yaml": playbook_yaml(pid)})).status_code == 200
    await wait_until(lambda: _serves(b, pid, 1))
    files = [{f"{pid}.yaml": playbook_yaml(pid, version=2, title_en=f"Admin {n}")} for n in range(5)]
    replies = await publish_race.run([r.publish(f) for r, f in zip((a, b, a, b, a), files, strict=True)])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert reply.json()["detail"] == "The library changed while this was published; read it again."
    # The winner may have been b: each replica serves it once its publication event arrives.
    for replica in (a, b):
        await wait_until(lambda r=replica: _serves(r, pid, 2))
    body = (await a.get(f"/v1/playbooks/{pid}")).json()
    assert [v["version"] for v in body["versions"]] == [1, 2]

    stale = await a.publish(files[0])
    assert stale.status_code == 422, stale.text
    assert "not greater than the published version 2" in stale.json()["errors"][0]["message"]

    others = [unique_id("apart") for _ in range(4)]
    replies = await publish_race.run(
        [r.publish({f"{p}.yaml": playbook_yaml(p)}) for r, p in zip((a, b, a, b), others, strict=True)]
    )
    assert [r.status_code for r in replies] == [200] * 4, [r.text for r in replies]
    # Both replicas caught up before the next test reads a replica's served set.
    for replica in (a, b):
        for other in others:
            await wait_until(lambda r=replica, p=other: _serves(r, p, 1))
