"""Identity resolution across channels, and deterministic, recorded, reversible merges."""

from __future__ import annotations

import pytest

from tests.profile.conftest import Profile, assert_problem
from tests.profile.helpers import customer_with, facts, give_feedback
from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_profile import resolution
from voc_profile.identity import InvalidIdentifier, normalize, normalize_email, normalize_phone
from voc_profile.merges import merged_consent
from voc_profile.models import CustomerMerge


def test_phone_and_email_normalise_to_one_form() -> None:
    assert normalize_phone("010-1234-5678", region="KR") == "+821012345678"
    assert normalize_phone("+82 10 1234 5678", region="KR") == "+821012345678"
    assert normalize_phone("(415) 555-2671", region="US") == "+14155552671"
    assert normalize_email("  Min.Su@Example.COM ") == "min.su@example.com"
    assert normalize(channel_user_id="u-7", channel="chatbot") == [("channel", "chatbot:u-7")]
    for bad_phone in ("12", "not a phone", "010-12"):
        with pytest.raises(InvalidIdentifier) as err:
            normalize_phone(bad_phone, region="KR")
        assert err.value.field == "phone"
    with pytest.raises(InvalidIdentifier):
        normalize_email("no-at-sign.example.com")


async def test_same_person_across_channels_and_anonymous_stays_anonymous(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    by_phone = await customer_with(db, settings, phone="010-2222-3333")
    async with db.transaction() as session:
        again = await resolution.resolve(
            session, identifiers=normalize(phone="+82 10-2222-3333", email="a@b.co"), create_if_missing=True
        )
        anonymous = await resolution.resolve(session, identifiers=[], create_if_missing=True)
    assert again.customer_id == by_phone and not again.created
    assert anonymous.customer_id is None
    assert await dbsync.read(db, resolution.lookup, identifiers=normalize(email="A@B.CO")) == by_phone


async def test_two_known_customers_merge_and_an_admin_can_undo(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    older = await customer_with(db, settings, loyalty_id="L-77")
    newer = await customer_with(db, settings, email="kim@example.com")
    await give_feedback(db, settings, newer, facts("fb-newer-1"), facts("fb-newer-2"))

    # One submission carries both: the oldest customer survives, deterministically.
    async with db.transaction() as session:
        res = await resolution.resolve(
            session,
            identifiers=normalize(loyalty_id="L-77", email="kim@example.com"),
            create_if_missing=True,
            trigger="feedback fb-both",
        )
    assert res.customer_id == older and res.merged_ids == (newer,)
    merges = (await profile.client.get(f"/v1/customers/{older}/merges", headers=profile.admin)).json()[
        "merges"
    ]
    assert len(merges) == 1
    merge = merges[0]
    assert merge["survivor_id"] == older and merge["merged_id"] == newer
    assert merge["feedback_ids"] == ["fb-newer-1", "fb-newer-2"] and merge["trigger"] == "feedback fb-both"
    context = (await profile.client.get(f"/v1/customers/{newer}/context", headers=profile.admin)).json()
    assert context["customer_id"] == older and context["feedback_count"] == 2
    assert context["signals"]["repeat_issue"] is True
    relinked = [
        events_pb2.FeedbackLinked.FromString(p) for p in await profile.events("voc.profile.feedback_linked")
    ]
    assert {(e.feedback_id, e.customer_id) for e in relinked} == {
        ("fb-newer-1", older),
        ("fb-newer-2", older),
    }

    undone = await profile.client.post(f"/v1/merges/{merge['id']}:undo", headers=profile.admin)
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"] == "admin"
    assert await dbsync.read(db, resolution.lookup, identifiers=normalize(email="kim@example.com")) == newer
    assert await dbsync.read(db, resolution.lookup, identifiers=normalize(loyalty_id="L-77")) == older
    back = (await profile.client.get(f"/v1/customers/{newer}/context", headers=profile.admin)).json()
    assert back["customer_id"] == newer and back["feedback_count"] == 2

    # The admin separated them: the same pair of identifiers never merges them again.
    async with db.transaction() as session:
        again = await resolution.resolve(
            session, identifiers=normalize(loyalty_id="L-77", email="kim@example.com"), create_if_missing=True
        )
    assert again.customer_id == older and again.merged_ids == ()
    assert await profile.count(CustomerMerge) == 1

    assert_problem(await profile.client.post(f"/v1/merges/{merge['id']}:undo", headers=profile.admin), 409)
    assert_problem(await profile.client.post("/v1/merges/no-such-merge:undo", headers=profile.admin), 404)
    assert_problem(await profile.client.post(f"/v1/merges/{merge['id']}:undo"), 401)


def test_merged_consent_keeps_an_opt_out() -> None:
    assert [
        merged_consent(a, b) for a, b in ((None, False), (True, False), (False, None), (False, True))
    ] == [False] * 4
    assert [merged_consent(a, b) for a, b in ((None, True), (True, None), (True, True))] == [True] * 3
    assert merged_consent(None, None) is None


async def test_a_merge_keeps_an_opt_out_and_an_undo_gives_the_survivor_its_own_back(profile: Profile) -> None:
    """A customer created from feedback (consent never said) merged with the CRM's record of the
    same person, who opted out: the survivor has opted out (a follow-up must not reach them)."""
    db, settings = profile.database, profile.settings
    walk_in = await customer_with(db, settings, loyalty_id="L-88")
    crm = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={"customers": [{"email": "lee@example.com", "contact_consent": False}]},
    )
    assert crm.status_code == 200, crm.text
    opted_out = crm.json()[0]["customer_id"]

    async def consent(customer_id: str) -> object:
        read = await profile.client.get(f"/v1/customers/{customer_id}", headers=profile.admin)
        return read.json()["contact_consent"]

    assert (await consent(walk_in), await consent(opted_out)) == (None, False)
    async with db.transaction() as session:
        res = await resolution.resolve(
            session, identifiers=normalize(loyalty_id="L-88", email="lee@example.com"), create_if_missing=True
        )
    assert res.customer_id == walk_in and res.merged_ids == (opted_out,)
    assert await consent(walk_in) is False
    (merge,) = (await profile.client.get(f"/v1/customers/{walk_in}/merges", headers=profile.admin)).json()[
        "merges"
    ]
    undone = await profile.client.post(f"/v1/merges/{merge['id']}:undo", headers=profile.admin)
    assert undone.status_code == 200, undone.text
    assert (await consent(walk_in), await consent(opted_out)) == (None, False)


async def test_crm_upsert_reports_bad_identifiers_per_item(profile: Profile) -> None:
    response = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={
            "customers": [
                {
                    "loyalty_id": "L-1",
                    "name": "김민수",
                    "tier": "gold",
                    "household_id": "H-1",
                    "household_relation": "owner",
                },
                {"phone": "12", "name": "잘못된 번호"},
                {"name": "no identifier"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    results = response.json()
    assert results[0]["created"] is True and results[0]["error"] is None
    assert results[1]["customer_id"] is None and "phone" in results[1]["error"]
    assert results[2]["customer_id"] is None and results[2]["error"]
    invalid = assert_problem(
        await profile.client.post(
            "/v1/customers",
            headers=profile.admin,
            json={"customers": [{"loyalty_id": "L-2", "tier": "platinum"}]},
        ),
        422,
    )
    assert invalid["errors"][0]["field"] == "body.customers.0.tier"
    assert_problem(await profile.client.get("/v1/customers/nobody", headers=profile.admin), 404)
    assert_problem(await profile.client.get("/v1/customers/nobody/context", headers=profile.admin), 404)
    assert_problem(
        await profile.client.get("/v1/customers/x", headers={"Authorization": "Bearer wrong"}), 401
    )
