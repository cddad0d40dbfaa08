"""Erasure, subject access export and the audit log of who read or changed personal data."""

from __future__ import annotations

from tests.profile.conftest import Profile, assert_problem
from tests.profile.helpers import customer_with, facts, give_feedback
from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_profile import resolution, timeline
from voc_profile.identity import normalize
from voc_profile.models import Customer, Identifier


async def test_export_then_erase_removes_personal_data_and_tells_the_others(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    client, admin = profile.client, {**profile.admin, "X-Voc-Actor": "dpo@hq"}
    created = await client.post(
        "/v1/customers",
        headers=admin,
        json={
            "customers": [
                {
                    "loyalty_id": "E-1",
                    "phone": "010-4444-5555",
                    "email": "lee@example.com",
                    "name": "이영희",
                    "tier": "gold",
                    "household_id": "H-9",
                    "household_relation": "driver",
                }
            ]
        },
    )
    customer_id = created.json()[0]["customer_id"]
    other = await customer_with(db, settings, email="lee.old@example.com")
    await give_feedback(db, settings, other, facts("e-old"))
    async with db.transaction() as session:  # the same person under an old e-mail: merged
        await resolution.resolve(
            session,
            identifiers=normalize(loyalty_id="E-1", email="lee.old@example.com"),
            create_if_missing=True,
        )
    await give_feedback(db, settings, customer_id, facts("e-new", csat=2))

    export = await client.get(f"/v1/customers/{customer_id}/export", headers=admin)
    assert export.status_code == 200
    doc = export.json()
    assert doc["customer"]["name"] == "이영희"
    assert {(i["kind"], i["value"]) for i in doc["identifiers"]} == {
        ("loyalty", "E-1"),
        ("phone", "+821044445555"),
        ("email", "lee@example.com"),
        ("email", "lee.old@example.com"),
    }
    assert [f["feedback_id"] for f in doc["feedback"]] == ["e-old", "e-new"]
    assert doc["merges"][0]["merged_id"] == other

    erased = await client.delete(f"/v1/customers/{customer_id}", headers=admin)
    assert erased.status_code == 200, erased.text
    assert sorted(erased.json()["erased"]) == sorted([customer_id, other])
    async with db.session() as session:
        for cid in (customer_id, other):
            row = await session.get(Customer, cid)
            assert row is not None and row.erased_at and row.name is None and row.household_id is None
    assert await profile.count(Identifier) == 0
    events = [
        events_pb2.CustomerErased.FromString(p) for p in await profile.events("voc.profile.customer_erased")
    ]
    assert sorted(e.customer_id for e in events) == sorted([customer_id, other])
    # Each names its feedback, newest first, for copies made before the item was tied to them.
    # The merge moved the old record's history to the survivor.
    named = {e.customer_id: list(e.feedback_ids) for e in events}
    assert named == {customer_id: ["e-new", "e-old"], other: []}

    for path in ("", "/context", "/export", "/timeline"):
        assert_problem(await client.get(f"/v1/customers/{customer_id}{path}", headers=admin), 410)
    assert_problem(await client.delete(f"/v1/customers/{customer_id}", headers=admin), 410)
    assert_problem(await client.delete("/v1/customers/nobody", headers=admin), 404)
    assert_problem(await client.delete(f"/v1/customers/{other}"), 401)
    # Erased people are in no outreach list, and the same phone later starts a new customer.
    listed = (await client.get("/v1/customers?signal=low_satisfaction", headers=admin)).json()
    assert listed["customers"] == []
    assert await dbsync.read(db, resolution.lookup, identifiers=normalize(phone="010-4444-5555")) is None

    entries = (await client.get("/v1/audit", headers=profile.admin)).json()["entries"]
    actions = [(e["actor"], e["on_behalf_of"], e["action"], e["target"]) for e in entries]
    target = f"customer:{customer_id}"
    assert ("admin", "dpo@hq", "create", target) in actions
    assert ("admin", "dpo@hq", "subject_export", target) in actions
    assert ("admin", "dpo@hq", "erase", target) in actions
    assert ("system", None, "merge", target) in actions
    text = str(entries)
    assert "010-4444-5555" not in text and "+821044445555" not in text and "lee@example.com" not in text


async def test_reads_are_audited_and_the_timeline_joins_the_channels(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    cid = await customer_with(db, settings, loyalty_id="T-1")
    await give_feedback(db, settings, cid, facts("t1", days_ago=2))
    await dbsync.write(
        db,
        timeline.record_alert,
        alert_id="a1",
        feedback_id="t1",
        customer_id=None,
        store_id="store-gangnam",
        priority="urgent",
        at=facts("x", days_ago=1.9).occurred_at,
    )
    await dbsync.write(
        db, timeline.alert_progress, alert_id="a1", status="resolved", outcome="compensated", at=0
    )
    await client_visit(profile, cid)
    answer = (await profile.client.get(f"/v1/customers/{cid}/timeline", headers=profile.admin)).json()
    assert [e["kind"] for e in answer["entries"]] == ["visit", "alert", "feedback"]
    assert answer["entries"][1]["outcome"] == "compensated" and answer["entries"][1]["status"] == "resolved"
    await profile.client.get(f"/v1/customers/{cid}", headers=profile.admin)
    await profile.client.get(f"/v1/customers/{cid}/context", headers=profile.admin)
    audit = (await profile.client.get(f"/v1/audit?target=customer:{cid}", headers=profile.admin)).json()[
        "entries"
    ]
    assert {"read", "read_context", "read_timeline"} <= {e["action"] for e in audit}
    assert_problem(
        await profile.client.get(f"/v1/customers/{cid}/timeline?limit=0", headers=profile.admin), 422
    )


async def client_visit(profile: Profile, customer_id: str) -> None:
    at = facts("v").occurred_at
    body = f"customer_id,store_id,visited_at,amount\n{customer_id},store-hongdae,{at},5000\n"
    r = await profile.client.post(
        "/v1/visits:import", headers={**profile.admin, "Content-Type": "text/csv"}, content=body
    )
    assert r.json()["inserted"] == 1
