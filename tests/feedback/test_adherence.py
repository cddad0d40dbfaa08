"""Plan adherence (#18 §5) on a real database (SQLite or PostgreSQL): each resolved alert counts
once (the event comes once per feedback item it answers), by the steps ticked done before it was
resolved; overall, per store and per playbook, in the analytics' place and period; events from
before #18 (no plan size) are skipped."""

from __future__ import annotations

from tests.conftest import DatabaseFactory
from voc.events.v1 import events_pb2
from voc_feedback import adherence
from voc_feedback.__main__ import MIGRATIONS
from voc_feedback.listing import FeedbackFilter
from voc_feedback.models import Store
from voc_platform import migrations
from voc_platform.db import Database

T = 1_790_000_000.0


def resolved(
    alert_id: str,
    store: str,
    playbook: str,
    done: int,
    total: int,
    *,
    at: float = T,
    kind: str = "feedback",
    feedback_id: str = "",
) -> events_pb2.AlertResolved:
    return events_pb2.AlertResolved(
        alert_id=alert_id, feedback_id=feedback_id, kind=kind, store_id=store, playbook_id=playbook,
        steps_done=done, steps_total=total, resolved_at_ms=int(at * 1000), outcome="resolved",
    )  # fmt: skip


async def test_adherence_per_store_and_per_playbook(databases: DatabaseFactory) -> None:
    database = Database(databases.url("feedback_adherence"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="feedback")
        async with database.transaction() as s:
            s.add(Store(id="s1", name="강남점", area_id="a1", updated_at=T))
            s.add(Store(id="s2", name="홍대입구점", area_id="a2", updated_at=T))
        events = [
            resolved("a1", "s1", "wait-time-default", 4, 4, feedback_id="f1"),
            resolved("a1", "s1", "wait-time-default", 4, 4, feedback_id="f1b"),  # a folded repeat: once
            resolved("a2", "s1", "food-quality-default", 1, 3),
            resolved("a3", "s2", "wait-time-default", 2, 4),
            resolved("a4", "s2", "pattern-default", 0, 2, kind="pattern"),
            resolved("a5", "s2", "wait-time-default", 0, 0),  # before #18: no plan size
            resolved("a6", "s1", "wait-time-default", 1, 4, at=T - 40 * 86400),  # outside the period
        ]
        async with database.transaction() as s:
            for event in events:
                await adherence.record(s, event)
        async with database.session() as s:
            got = await adherence.summary(s, where=FeedbackFilter(since=T - 86400))
            only_s2 = await adherence.summary(s, where=FeedbackFilter(since=T - 86400, store_id="s2"))
        assert (got["alerts"], got["steps_done"], got["steps_total"]) == (4, 7, 13)
        assert got["rate"] == round(7 / 13, 4) and got["fully_followed"] == 1
        by_store = {
            r["store_id"]: (r["store_name"], r["alerts"], r["steps_done"], r["steps_total"])
            for r in got["by_store"]
        }
        assert by_store == {"s1": ("강남점", 2, 5, 7), "s2": ("홍대입구점", 2, 2, 6)}
        by_playbook = {r["playbook_id"]: (r["kind"], r["alerts"], r["rate"]) for r in got["by_playbook"]}
        assert by_playbook == {
            "wait-time-default": ("feedback", 2, 0.75),
            "food-quality-default": ("feedback", 1, round(1 / 3, 4)),
            "pattern-default": ("pattern", 1, 0.0),
        }
        assert got["by_playbook"][0]["playbook_id"] == "wait-time-default"  # busiest first
        assert (only_s2["alerts"], [r["store_id"] for r in only_s2["by_store"]]) == (2, ["s2"])
    finally:
        await database.dispose()
