"""A correction of the classifier reaches the customer's story (#17 with #18): profile's
`profile-corrections` consumer of `voc.feedback.corrected` gives its copy of the item the
corrected category and sentiment, so the recent contacts and the signals (repeat issue per
category, complaint count) read them; the latest correction wins whatever order the events
arrive in; a redelivery and an item profile does not hold change nothing."""

from __future__ import annotations

import time
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import func, select

from tests.profile.conftest import Profile
from tests.profile.helpers import customer_with, facts, give_feedback
from voc.events.v1 import events_pb2
from voc_platform import dbsync
from voc_profile import corrections
from voc_profile.models import history_table


def corrected(
    feedback_id: str, *, category: str, sentiment: str = "negative", at: float, correction_id: str
) -> events_pb2.ClassificationCorrected:
    return events_pb2.ClassificationCorrected(
        correction_id=correction_id,
        feedback_id=feedback_id,
        store_id="store-gangnam",
        category=category,
        sentiment=sentiment,
        previous_category="food_quality",
        previous_sentiment="negative",
        category_corrected=True,
        corrected_by="staff-1",
        corrected_at_ms=int(at * 1000),
    )


async def hear(profile: Profile, event: events_pb2.ClassificationCorrected) -> None:
    handle = corrections.consumer(profile.database, profile.settings).handler
    await handle(
        Msg(
            _client=None,  # type: ignore[arg-type]  # the handler never replies or acks itself
            subject=corrections.SUBJECT,
            data=event.SerializeToString(),
            headers={"Nats-Msg-Id": f"corrected:{event.correction_id}"},
        )
    )


async def context(profile: Profile, customer: str) -> dict[str, Any]:
    response = await profile.client.get(f"/v1/customers/{customer}/context", headers=profile.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_corrected_category_is_the_story(profile: Profile) -> None:
    customer = await customer_with(profile.database, profile.settings, loyalty_id="CORR-1")
    now = time.time()
    await give_feedback(
        profile.database,
        profile.settings,
        customer,
        facts("corr-1", category="food_quality", days_ago=3, now=now),
        facts("corr-2", category="wait_time", days_ago=1, now=now),
    )
    before = await context(profile, customer)
    assert not before["signals"]["repeat_issue"]
    assert [(c["feedback_id"], c["category"]) for c in before["recent_contacts"]] == [
        ("corr-2", "wait_time"),
        ("corr-1", "food_quality"),
    ]

    # Staff say the first one was about the wait too: a repeat wait-time complaint now.
    await hear(profile, corrected("corr-1", category="wait_time", at=now, correction_id="c-1"))
    after = await context(profile, customer)
    assert [(c["feedback_id"], c["category"]) for c in after["recent_contacts"]] == [
        ("corr-2", "wait_time"),
        ("corr-1", "wait_time"),
    ]
    signals = after["signals"]
    assert signals["repeat_issue"] and signals["repeat_counts"] == {"wait_time": 2}
    repeat = next(r for r in signals["reasons"] if r["signal"] == "repeat_issue")
    assert repeat["reason"].endswith("Wait time") and "corr-1" in repeat["feedback_ids"]

    # An older correction arriving late changes nothing; neither does a redelivery.
    await hear(profile, corrected("corr-1", category="cleanliness", at=now - 60, correction_id="c-0"))
    await hear(profile, corrected("corr-1", category="cleanliness", at=now, correction_id="c-1"))
    assert (await context(profile, customer))["recent_contacts"][1]["category"] == "wait_time"

    # Corrected to positive: no longer a complaint, no longer a repeat.
    await hear(
        profile,
        corrected("corr-1", category="praise", sentiment="positive", at=now + 1, correction_id="c-2"),
    )
    last = await context(profile, customer)
    assert (last["recent_contacts"][1]["category"], last["recent_contacts"][1]["sentiment"]) == (
        "praise",
        "positive",
    )
    assert not last["signals"]["repeat_issue"] and last["signals"]["complaint_count_90d"] == 1


async def test_a_correction_of_an_item_profile_does_not_hold_changes_nothing(profile: Profile) -> None:
    # Anonymous feedback never joins a history: its correction is acknowledged and forgotten.
    event = corrected("corr-anon", category="wait_time", at=time.time(), correction_id="c-9")
    args = (event, "corrected:c-9", profile.settings, time.time())
    assert await dbsync.write(profile.database, corrections.apply_correction, *args) is None
    count = select(func.count()).select_from(history_table).where(history_table.c.feedback_id == "corr-anon")
    async with profile.database.transaction() as session:
        assert await session.scalar(count) == 0
