"""Alerts about a customer's feedback join their timeline and only ever move forward, whatever
order the events arrive in."""

from __future__ import annotations

from tests.profile.conftest import Profile
from tests.profile.helpers import customer_with, facts, give_feedback
from voc_profile import service
from voc_profile.models import AlertHistory


async def alert(profile: Profile, alert_id: str) -> AlertHistory:
    async with profile.database.session() as session:
        row = await session.get(AlertHistory, alert_id)
    assert row is not None
    return row


async def test_alerts_move_forward_only(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    customer = await customer_with(db, settings, loyalty_id="AL-1")
    await give_feedback(db, settings, customer, facts("fb-al-1"))
    async with db.transaction() as session:
        # No customer in the event: the feedback's customer is used.
        await service.record_alert(
            session,
            alert_id="a-1",
            feedback_id="fb-al-1",
            customer_id=None,
            store_id="s",
            priority="high",
            at=10,
        )
        await service.record_alert(
            session,
            alert_id="a-2",
            feedback_id="fb-unknown",
            customer_id="",
            store_id="s",
            priority="low",
            at=11,
        )
    first = await alert(profile, "a-1")
    assert first.customer_id == customer and first.status == "open" and first.updated_at == 10
    assert (await alert(profile, "a-2")).customer_id is None

    async with db.transaction() as session:  # a redelivered `alert.created` changes nothing
        await service.record_alert(
            session,
            alert_id="a-1",
            feedback_id="fb-al-1",
            customer_id="other",
            store_id="x",
            priority="low",
            at=99,
        )
    again = await alert(profile, "a-1")
    assert (again.customer_id, again.store_id, again.priority, again.updated_at) == (
        customer,
        "s",
        "high",
        10,
    )

    steps = [
        ("resolved", "compensated", 30, ("resolved", "compensated", 30)),
        ("acknowledged", None, 20, ("resolved", "compensated", 30)),  # late: never back
        ("escalated", None, 25, ("resolved", "compensated", 30)),
        ("resolved", "refunded", 40, ("resolved", "refunded", 40)),
    ]
    for status, outcome, at, expected in steps:
        async with db.transaction() as session:
            assert await service.alert_progress(
                session, alert_id="a-1", status=status, outcome=outcome, at=at
            )
        row = await alert(profile, "a-1")
        assert (row.status, row.outcome, row.updated_at) == expected, status

    async with db.transaction() as session:
        assert await service.alert_progress(session, alert_id="a-2", status="escalated", outcome=None, at=12)
        assert await service.alert_progress(
            session, alert_id="a-2", status="acknowledged", outcome=None, at=13
        )
        assert not await service.alert_progress(
            session, alert_id="nope", status="resolved", outcome="x", at=1
        )
    row = await alert(profile, "a-2")
    assert (row.status, row.outcome, row.updated_at) == ("acknowledged", None, 13)
