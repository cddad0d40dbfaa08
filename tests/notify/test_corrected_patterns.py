"""Pattern windows count the corrected category (#18 with #17): when staff correct an item's
category, notify's `voc.feedback.corrected` consumer moves the item to the corrected category's
window (so it counts towards that category's pattern alert, and no longer towards the model's);
an item corrected to neutral or positive leaves the windows; an older correction arriving late
changes nothing. On a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import time

from tests.notify.test_patterns import _record
from voc.events.v1 import events_pb2
from voc_notify import corrections, patterns
from voc_notify.models import PatternItem
from voc_notify.patterns import Spike
from voc_platform.db import Database


def corrected(
    feedback_id: str, *, category: str, sentiment: str = "negative", at: float
) -> events_pb2.ClassificationCorrected:
    return events_pb2.ClassificationCorrected(
        correction_id=f"c-{feedback_id}-{at}",
        feedback_id=feedback_id,
        store_id="s1",
        category=category,
        sentiment=sentiment,
        previous_category="food_quality",
        previous_sentiment="negative",
        category_corrected=True,
        corrected_by="staff-1",
        corrected_at_ms=int(at * 1000),
    )


async def correct(db: Database, event: events_pb2.ClassificationCorrected) -> None:
    async with db.transaction() as session:
        await corrections.apply(session, event)


async def category_of(db: Database, feedback_id: str) -> str | None:
    async with db.session() as session:
        item = await session.get(PatternItem, feedback_id)
        return None if item is None else item.category


async def test_a_corrected_item_counts_in_its_corrected_category(notify_db: Database) -> None:
    now = time.time()
    assert await _record(notify_db, "w1", "c1", now=now - 90) is None  # wait_time
    assert await _record(notify_db, "w2", "c2", now=now - 60) is None  # wait_time
    async with notify_db.transaction() as session:  # the model said food quality
        key = patterns.customer_key("c3", "q3")
        session.add(
            PatternItem(
                feedback_id="q3",
                store_id="s1",
                category="food_quality",
                customer_key=key,
                at=now - 30,
                excerpt="",
            )
        )

    await correct(notify_db, corrected("q3", category="wait_time", at=now))
    assert await category_of(notify_db, "q3") == "wait_time"
    # A late, older correction does not move it back.
    await correct(notify_db, corrected("q3", category="food_quality", at=now - 10))
    assert await category_of(notify_db, "q3") == "wait_time"

    # c1 again: three different customers about the wait within the hour (c1, c2 and c3, whose
    # item the model had filed under food quality).
    spike = await _record(notify_db, "w4", "c1", now=now)
    assert isinstance(spike, Spike) and spike.category == "wait_time" and spike.customers == 3


async def test_an_item_corrected_to_not_negative_leaves_the_windows(notify_db: Database) -> None:
    now = time.time()
    assert await _record(notify_db, "p1", "c1", now=now - 60) is None
    assert await _record(notify_db, "p2", "c2", now=now - 30) is None
    await correct(notify_db, corrected("p2", category="praise", sentiment="positive", at=now))
    assert await category_of(notify_db, "p2") is None
    # c3 makes two customers, not three: no spike.
    assert await _record(notify_db, "p3", "c3", now=now) is None
