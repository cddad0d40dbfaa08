"""Real-time check-ins (#18), profile's side, on a real database: who gets a heads-up (a negative
contact within 30 days or one still unresolved, churn risk, VIP) and who does not, the event it
publishes, the visit joining the customer's, idempotency, and nothing written on bad input.
The store-key check against feedback runs end to end in tests/e2e/test_anticipate.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.profile.conftest import Profile, assert_problem
from tests.profile.helpers import DAY, customer_with, facts, give_feedback
from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_platform.errors import Conflict, Invalid
from voc_profile import checkins, timeline
from voc_profile.models import Checkin, Visit
from voc_profile.schemas import CheckinIn
from voc_profile.store_access import Caller

ADMIN = Caller("admin")


def body(loyalty_id: str, **extra: object) -> CheckinIn:
    return CheckinIn.model_validate(
        {"store_id": "store-gangnam", "customer": {"loyalty_id": loyalty_id}, **extra}
    )


async def check_in(
    profile: Profile, loyalty_id: str, key: str | None = None, **extra: object
) -> checkins.CheckinResult:
    return await checkins.check_in(
        profile.database,
        body=body(loyalty_id, **extra),
        caller=ADMIN,
        idempotency_key=key,
        settings=profile.settings,
    )


async def arrivals(profile: Profile) -> list[events_pb2.CustomerArrived]:
    return [
        events_pb2.CustomerArrived.FromString(p) for p in await profile.events("voc.profile.customer_arrived")
    ]


async def test_a_customer_without_trouble_checks_in_quietly(profile: Profile) -> None:
    customer = await customer_with(profile.database, profile.settings, loyalty_id="L-quiet")
    await give_feedback(profile.database, profile.settings, customer, facts("f-old", days_ago=45))
    done = await check_in(profile, "L-quiet", amount=12000)
    assert done.customer_id == customer and not done.heads_up
    assert await arrivals(profile) == []
    assert await profile.count(Visit) == 1 and await profile.count(Checkin) == 1


async def test_a_recent_negative_contact_raises_a_heads_up(profile: Profile) -> None:
    customer = await customer_with(profile.database, profile.settings, loyalty_id="L-recent")
    await give_feedback(
        profile.database, profile.settings, customer, facts("f-cold", category="food_quality", days_ago=3)
    )
    done = await check_in(profile, "L-recent", channel="kiosk")
    assert done.heads_up
    (event,) = await arrivals(profile)
    assert event.customer_id == customer and event.store_id == "store-gangnam" and event.channel == "kiosk"
    assert event.visit_id == done.id and event.last_contact.feedback_id == "f-cold"
    assert event.last_contact.category == "food_quality" and not event.unresolved
    assert not event.vip and not event.churn_risk


async def test_an_unresolved_old_complaint_raises_one_and_a_resolved_one_does_not(profile: Profile) -> None:
    open_one = await customer_with(profile.database, profile.settings, loyalty_id="L-open")
    closed = await customer_with(profile.database, profile.settings, loyalty_id="L-closed")
    for customer, feedback_id in ((open_one, "f-open"), (closed, "f-closed")):
        await give_feedback(profile.database, profile.settings, customer, facts(feedback_id, days_ago=40))
        await dbsync.write(
            profile.database,
            timeline.record_alert,
            alert_id=f"a-{feedback_id}",
            feedback_id=feedback_id,
            customer_id=customer,
            store_id="store-gangnam",
            priority="normal",
            at=time.time() - 40 * DAY,
        )
    await dbsync.write(
        profile.database,
        timeline.alert_progress,
        alert_id="a-f-closed",
        status="resolved",
        outcome="resolved",
        at=time.time() - 39 * DAY,
    )
    assert (await check_in(profile, "L-open")).heads_up
    assert not (await check_in(profile, "L-closed")).heads_up
    (event,) = await arrivals(profile)
    assert event.customer_id == open_one and event.unresolved and event.last_contact.status == "open"


async def test_a_vip_always_gets_a_heads_up(profile: Profile) -> None:
    response = await profile.client.post(
        "/v1/customers",
        json={"customers": [{"loyalty_id": "L-vip", "name": "김민수", "tier": "vip"}]},
        headers=profile.admin,
    )
    assert response.status_code == 200
    assert (await check_in(profile, "L-vip")).heads_up
    (event,) = await arrivals(profile)
    assert event.vip and event.tier == "vip" and event.masked_name == "김**" and event.name == "김민수"
    assert not event.HasField("last_contact")


async def test_idempotency_and_bad_input_write_nothing_twice(profile: Profile) -> None:
    await customer_with(profile.database, profile.settings, loyalty_id="L-idem")
    first = await check_in(profile, "L-idem", key="k-1")
    again = await check_in(profile, "L-idem", key="k-1")
    assert again.replay and again.id == first.id
    with pytest.raises(Conflict):
        await check_in(profile, "L-idem", key="k-1", amount=5)
    with pytest.raises(Invalid) as unknown:
        await check_in(profile, "L-nobody")
    assert [e.field for e in unknown.value.errors] == ["body.customer"]
    with pytest.raises(Invalid) as phone:
        await checkins.check_in(
            profile.database,
            body=CheckinIn.model_validate({"store_id": "s", "customer": {"phone": "12"}}),
            caller=ADMIN,
            idempotency_key=None,
            settings=profile.settings,
        )
    assert [e.field for e in phone.value.errors] == ["body.customer.phone"]
    # A time no date can hold: accepted once, it dead-lettered every later alert of the customer.
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-11-23T09:30:00"):
        refused = await profile.client.post(
            "/v1/visits",
            headers=profile.admin,
            json={"store_id": "s", "customer": {"loyalty_id": "L-idem"}, "occurred_at": when},
        )
        assert_problem(refused, 422)
        assert [e["field"] for e in refused.json()["errors"]] == ["body.occurred_at"], refused.json()
    assert await profile.count(Visit) == 1 and await profile.count(Checkin) == 1


async def test_a_churn_risk_gets_a_heads_up_and_the_visit_then_clears_it(profile: Profile) -> None:
    """Said they would come back 45 days ago (praise, nothing negative) and never did: the
    check-in warns staff (the churn risk as it was on arrival); the visit itself then clears it."""
    customer = await customer_with(profile.database, profile.settings, loyalty_id="L-churn")
    said = facts("f-said", category="praise", sentiment="positive", days_ago=45, revisit_intent=True)
    await give_feedback(profile.database, profile.settings, customer, said)
    before = await profile.client.get(f"/v1/customers/{customer}/context", headers=profile.admin)
    assert before.json()["signals"]["churn_risk"] is True
    assert (await check_in(profile, "L-churn")).heads_up
    (event,) = await arrivals(profile)
    assert event.churn_risk and not event.vip and not event.HasField("last_contact")
    assert any(r.startswith("churn_risk:") for r in event.reasons)
    after = await profile.client.get(f"/v1/customers/{customer}/context", headers=profile.admin)
    assert after.json()["signals"]["churn_risk"] is False


async def test_concurrent_check_ins_with_one_key_make_one(profile: Profile) -> None:
    """A POS retrying before its first answer came back: on PostgreSQL both read the key as free
    and the second commit hit the unique index (a 500)."""
    await customer_with(profile.database, profile.settings, loyalty_id="L-race")
    done = await asyncio.gather(*(check_in(profile, "L-race", key="k-race") for _ in range(8)))
    assert len({d.id for d in done}) == 1 and sum(not d.replay for d in done) == 1
    other = await asyncio.gather(
        *(check_in(profile, "L-race", key="k-race-2", amount=i) for i in range(6)), return_exceptions=True
    )
    assert sum(isinstance(o, checkins.CheckinResult) for o in other) == 1
    assert sum(isinstance(o, Conflict) for o in other) == 5, other
    assert await profile.count(Checkin) == 2


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
async def test_an_amount_must_be_a_finite_number(profile: Profile, value: str) -> None:
    """NaN and Infinity were refused as "less than or equal to 1000000000000"."""
    await customer_with(profile.database, profile.settings, loyalty_id="L-nan")
    body = '{"store_id": "s", "customer": {"loyalty_id": "L-nan"}, "amount": ' + value + "}"
    response = await profile.client.post(
        "/v1/visits", headers={**profile.admin, "Content-Type": "application/json"}, content=body
    )
    (error,) = assert_problem(response, 422)["errors"]
    assert error["field"] == "body.amount" and "finite number" in error["message"], error
    assert await profile.count(Visit) == 0
