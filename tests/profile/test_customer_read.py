"""`GET /v1/customers/{id}`: the CRM attributes as stored (tier, home store, language, consent,
lifetime value, the household link and its relation), no identifiers in the body, the read in the
audit log; the household's other members in the context; 404 / 410 / 401 as problem+json."""

from __future__ import annotations

from typing import Any

import pytest

from tests.profile.conftest import Profile, assert_problem
from voc_profile.models import Customer

BODY_KEYS = {
    "id",
    "name",
    "tier",
    "lifetime_value",
    "preferred_language",
    "home_store_id",
    "contact_consent",
    "household_id",
    "household_relation",
    "merged_into",
    "created_at",
    "updated_at",
}


async def read(profile: Profile, customer_id: str, **headers: str) -> dict[str, Any]:
    response = await profile.client.get(f"/v1/customers/{customer_id}", headers={**profile.admin, **headers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


async def test_read_answers_the_stored_attributes_and_household_link(profile: Profile) -> None:
    created = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={
            "customers": [
                {
                    "loyalty_id": "H-OWNER",
                    "phone": "010-2468-1357",
                    "email": "Owner@Example.com",
                    "name": "김소유",
                    "tier": "gold",
                    "lifetime_value": 1_250_000,
                    "preferred_language": "ko",
                    "home_store_id": "store-gangnam",
                    "contact_consent": True,
                    "household_id": "HH-42",
                    "household_relation": "owner",
                },
                {
                    "loyalty_id": "H-DRIVER",
                    "name": "Jane Park",
                    "tier": "silver",
                    "preferred_language": "en",
                    "home_store_id": "store-hongdae",
                    "household_id": "HH-42",
                    "household_relation": "driver",
                },
            ]
        },
    )
    assert created.status_code == 200, created.text
    owner_id, driver_id = (r["customer_id"] for r in created.json())
    # A third member arrives by bulk import, as family_member of the same household.
    imported = await profile.client.post(
        "/v1/customers:import",
        headers={**profile.admin, "Content-Type": "text/csv"},
        content="loyalty_id,name,tier,household_id,household_relation\nH-KID,김아이,basic,HH-42,family_member\n",
    )
    assert imported.json()["created"] == 1

    owner = await read(profile, owner_id, **{"X-Voc-Actor": "cx.lee"})
    assert set(owner) == BODY_KEYS  # attributes only: no phone, e-mail or loyalty id in the body
    assert {k: v for k, v in owner.items() if k not in ("created_at", "updated_at")} == {
        "id": owner_id,
        "name": "김소유",
        "tier": "gold",
        "lifetime_value": 1_250_000.0,
        "preferred_language": "ko",
        "home_store_id": "store-gangnam",
        "contact_consent": True,
        "household_id": "HH-42",
        "household_relation": "owner",
        "merged_into": None,
    }
    assert 0 < owner["created_at"] <= owner["updated_at"]

    driver = await read(profile, driver_id)
    assert (driver["tier"], driver["home_store_id"], driver["preferred_language"]) == (
        "silver",
        "store-hongdae",
        "en",
    )
    assert (driver["household_id"], driver["household_relation"]) == ("HH-42", "driver")
    assert driver["contact_consent"] is None and driver["lifetime_value"] == 0.0  # never stated

    # An update by another identifier changes only what it names; the read shows it.
    updated = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={"customers": [{"email": "owner@example.com", "tier": "vip", "home_store_id": "store-busan"}]},
    )
    assert updated.json()[0] == {"index": 0, "customer_id": owner_id, "created": False, "error": None}
    owner = await read(profile, owner_id)
    assert (owner["tier"], owner["home_store_id"], owner["name"], owner["household_relation"]) == (
        "vip",
        "store-busan",
        "김소유",
        "owner",
    )

    # The household links from the owner's side: the other members with their relation (masked).
    context = (await profile.client.get(f"/v1/customers/{owner_id}/context", headers=profile.admin)).json()
    members = sorted((m["relation"], m["masked_name"], m["tier"]) for m in context["household"])
    assert members == [("driver", "J*** P***", "silver"), ("family_member", "김**", "basic")]
    assert context["household_relation"] == "owner"

    # Every read is in the audit log: the admin token is the actor; the name its caller declared
    # (X-Voc-Actor) is kept beside it, as declared, never as the actor.
    entries = (
        await profile.client.get(
            "/v1/audit", params={"target": f"customer:{owner_id}"}, headers=profile.admin
        )
    ).json()["entries"]
    reads = [(e["actor"], e["on_behalf_of"]) for e in entries if e["action"] == "read"]
    assert ("admin", "cx.lee") in reads and reads.count(("admin", None)) == 1


async def test_read_problems(profile: Profile) -> None:
    missing = assert_problem(await profile.client.get("/v1/customers/no-such-id", headers=profile.admin), 404)
    assert "no-such-id" in missing["detail"]
    created = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={"customers": [{"loyalty_id": "GONE-1", "name": "곧삭제"}]},
    )
    customer_id = created.json()[0]["customer_id"]
    assert_problem(await profile.client.get(f"/v1/customers/{customer_id}"), 401)
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    assert_problem(await profile.client.get(f"/v1/customers/{customer_id}", headers=wrong), 401)
    assert (
        await profile.client.delete(f"/v1/customers/{customer_id}", headers=profile.admin)
    ).status_code == 200
    gone = assert_problem(
        await profile.client.get(f"/v1/customers/{customer_id}", headers=profile.admin), 410
    )
    assert gone["title"] == "Gone"


async def test_a_crm_batch_of_1000_customers_goes_in_one_call(profile: Profile) -> None:
    """The upsert takes 1,000 customers a call; that many are about 200 KiB of JSON, and the
    64 KiB limit of every other call refused more than about 300 of them with 413."""
    customers = [
        {
            "loyalty_id": f"B-{n:05d}",
            "phone": f"010-7{n // 10000:03d}-{n % 10000:04d}",
            "email": f"customer.{n}@example.com",
            "name": f"고객 {n}",
            "tier": "silver",
            "lifetime_value": n * 1000,
            "preferred_language": "ko",
            "home_store_id": "store-gangnam",
            "contact_consent": True,
        }
        for n in range(1000)
    ]
    answer = await profile.client.post("/v1/customers", headers=profile.admin, json={"customers": customers})
    assert len(answer.request.content) > 3 * 64 * 1024
    assert answer.status_code == 200, answer.text[:300]
    assert [r["created"] for r in answer.json()] == [True] * 1000


async def test_a_blank_home_store_is_none_and_a_malformed_one_is_refused(profile: Profile) -> None:
    """Store ids follow one rule everywhere; a blank optional one (a CRM export's empty cell) is
    none rather than a refusal of the whole batch."""
    answer = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={"customers": [{"loyalty_id": "BLANK-1", "home_store_id": ""}]},
    )
    assert answer.status_code == 200 and answer.json()[0]["created"] is True, answer.text
    assert (await read(profile, answer.json()[0]["customer_id"]))["home_store_id"] is None
    refused = await profile.client.post(
        "/v1/customers",
        headers=profile.admin,
        json={"customers": [{"loyalty_id": "BAD-1", "home_store_id": "a b"}]},
    )
    assert refused.status_code == 422 and "home_store_id" in refused.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
async def test_a_lifetime_value_must_be_a_finite_number(profile: Profile, value: str) -> None:
    """The JSON parser takes NaN and Infinity; they were refused as "less than or equal to
    10000000000000", which no NaN is or is not."""
    body = '{"customers": [{"loyalty_id": "NAN-1", "lifetime_value": ' + value + "}]}"
    response = await profile.client.post(
        "/v1/customers", headers={**profile.admin, "Content-Type": "application/json"}, content=body
    )
    (error,) = assert_problem(response, 422)["errors"]
    assert error["field"].endswith("lifetime_value") and "finite number" in error["message"], error
    assert await profile.count(Customer) == 0
