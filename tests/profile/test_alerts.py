"""Alerts about a customer's feedback join their timeline and only ever move forward, whatever
order the events arrive in."""

from __future__ import annotations

from tests.profile.conftest import Profile
from tests.profile.helpers import customer_with, facts, give_feedback
from voc_platform import dbsync
from voc_profile import timeline
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
    # No customer in the event: the feedback's customer is used.
    await dbsync.write(
        db,
        timeline.record_alert,
        alert_id="a-1",
        feedback_id="fb-al-1",
        customer_id=None,
        store_id="s",
        priority="high",
        at=10,
    )
    await dbsync.write(
        db,
        timeline.record_alert,
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

    await dbsync.write(  # a redelivered `alert.created` changes nothing
        db,
        timeline.record_alert,
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

    async def progress(alert_id: str, status: str, outcome: str | None, at: float) -> bool:
        return await dbsync.write(
            db, timeline.alert_progress, alert_id=alert_id, status=status, outcome=outcome, at=at
        )

    steps = [
        ("resolved", "compensated", 30, ("resolved", "compensated", 30)),
        ("acknowledged", None, 20, ("resolved", "compensated", 30)),  # late: never back
        ("escalated", None, 25, ("resolved", "compensated", 30)),
        ("resolved", "refunded", 40, ("resolved", "refunded", 40)),
    ]
    for status, outcome, at, expected in steps:
        assert await progress("a-1", status, outcome, at)
        row = await alert(profile, "a-1")
        assert (row.status, row.outcome, row.updated_at) == expected, status

    assert await progress("a-2", "escalated", None, 12)
    assert await progress("a-2", "acknowledged", None, 13)
    assert not await progress("nope", "resolved", "x", 1)
    row = await alert(profile, "a-2")
    assert (row.status, row.outcome, row.updated_at) == ("acknowledged", None, 13)
