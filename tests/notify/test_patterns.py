"""Pattern alerts (#18) on a real database (SQLite or PostgreSQL): the rules and their refusal
at start, different customers counted per window, the store's baseline, one alert opened and
later items folded into it (re-pushed at most every interval), the area manager when the
category spikes at two stores of an area, and one alert however many replicas decide at once."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.notify.conftest import add_device
from voc_notify import patterns, views
from voc_notify.__main__ import pattern_rules_checker
from voc_notify.facts import Plan, PlanStep
from voc_notify.models import Alert, PatternItem, Staff, Store
from voc_notify.patterns import PatternOutcome, PatternRule, PatternWatch, Spike, parse_rules
from voc_notify.settings import Settings
from voc_platform import dbsync, taxonomy
from voc_platform.db import Database
from voc_platform.settings import describe

PLAN = Plan(
    playbook_id="pattern-default",
    version=1,
    title="Same complaint",
    priority="urgent",
    steps=(PlanStep("Find the cause", "store_manager"), PlanStep("Brief the staff", "shift_lead")),
    notify_roles=("store_manager",),
)
WATCH = PatternWatch(
    rules={"*": PatternRule(3, 3600)}, baseline_days=28, baseline_factor=1.5, repush_seconds=300
)
SUBSCRIPTION = {"endpoint": "https://push.example.test/sub/mgr", "keys": {"p256dh": "k", "auth": "a"}}


def test_rules_parse_and_a_zero_window_is_refused_at_start() -> None:
    assert parse_rules("*=3/60m, food_safety=1/60m") == {
        "*": PatternRule(3, 3600),
        "food_safety": PatternRule(1, 3600),
    }
    assert parse_rules("") == {}
    assert parse_rules("wait_time=5/2h") == {"wait_time": PatternRule(5, 7200)}
    for bad, said in (
        ("wait_time=3/0m", "the window must be longer than zero"),
        ("Weather=3/60m", "write category=count/window"),
        ("wait_time=0/60m", "the count must be at least 1"),
        ("wait_time:3", "write category=count/window"),
    ):
        with pytest.raises(ValueError, match=said):
            parse_rules(bad)
    with pytest.raises(ValidationError) as caught:
        Settings(VOC_NOTIFY_PATTERN_RULES="*=3/60m,wait_time=3/0m")  # type: ignore[call-arg]
    line = describe(caught.value, Settings)
    assert "VOC_NOTIFY_PATTERN_RULES" in line and "the window must be longer than zero" in line


async def test_a_rule_for_a_category_published_later_waits_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """#20 §3: start-up accepts a well-formed category id the seed does not know; the rule waits
    (a warning names it) until the category is published, then it is in force."""
    settings = Settings(VOC_NOTIFY_PATTERN_RULES="*=3/60m,weather2=1/60m")  # type: ignore[call-arg]
    watch = settings.pattern_watch()
    assert watch.rule_for("weather2") == PatternRule(1, 3600)
    assert watch.unpublished(taxonomy.seed()) == ["weather2"]
    caplog.set_level(logging.INFO, logger="voc_notify")
    taxonomy.reset()
    task = asyncio.create_task(pattern_rules_checker(watch, seconds=0.01)())
    try:
        await asyncio.sleep(0.05)
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "weather2" in warned[0] and "version 1" in warned[0]
        seed = taxonomy.seed()
        later = replace(
            seed, version=2, categories=(*seed.categories, taxonomy.Category("weather2", "날씨", "Weather"))
        )
        taxonomy.serve(later)
        assert watch.unpublished(later) == []
        await asyncio.sleep(0.05)
        said = [r.getMessage() for r in caplog.records]
        assert any("weather2 are in force now (taxonomy version 2)" in m for m in said)
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # said once
    finally:
        task.cancel()
        taxonomy.reset()


async def _store(db: Database, store_id: str) -> Store:
    async with db.session() as s:
        store = await s.get(Store, store_id)
    assert store is not None
    return store


async def _record(
    db: Database,
    feedback_id: str,
    customer: str | None,
    *,
    now: float,
    store: str = "s1",
    watch: PatternWatch = WATCH,
) -> Spike | PatternOutcome | None:
    return await dbsync.write(
        db,
        patterns.record_item_sync,
        watch=watch,
        feedback_id=feedback_id,
        store=await _store(db, store),
        category="wait_time",
        customer_key=patterns.customer_key(customer, feedback_id),
        alert_id=None,
        excerpt=f"waited ({feedback_id})",
        language="en",
        now=now,
    )


async def _spike(db: Database, feedback_id: str, customer: str, *, now: float, store: str = "s1") -> Spike:
    spike = await _record(db, feedback_id, customer, now=now, store=store)
    assert isinstance(spike, Spike), spike
    return spike


async def _raise(db: Database, spike: Spike, *, now: float, store_id: str = "s1") -> PatternOutcome | None:
    store = await _store(db, store_id)
    return await dbsync.write(
        db, patterns.raise_pattern_sync, spike=spike, store=store, plan=PLAN, language="en",
        repush_seconds=WATCH.repush_seconds, now=now,
    )  # fmt: skip


async def test_different_customers_within_the_window_make_a_spike(notify_db: Database) -> None:
    now = time.time()
    assert await _record(notify_db, "f0", "c0", now=now - 4000) is None  # outside the window
    assert await _record(notify_db, "f1", "c1", now=now - 90) is None
    assert await _record(notify_db, "f2", "c2", now=now - 60) is None
    assert await _record(notify_db, "f3", "c2", now=now - 30) is None  # the same customer again
    spike = await _record(notify_db, "f4", None, now=now)  # anonymous: a customer of its own
    assert isinstance(spike, Spike) and spike.customers == 3 and spike.threshold == 3 and spike.usual is None
    # A category without a rule is not watched.
    narrow = PatternWatch(rules={"food_safety": PatternRule(1, 3600)})
    assert await _record(notify_db, "f5", "c9", now=now, watch=narrow) is None


async def test_the_store_baseline_raises_the_threshold(notify_db: Database) -> None:
    """A store that usually gets 10 an hour (two days of history) does not page at 3: 1.5 x 10."""
    now = time.time()
    async with notify_db.transaction() as s:
        for hour in range(1, 49):
            for i in range(10):
                at = now - 3600 - hour * 3600 + i * 300
                s.add(PatternItem(feedback_id=f"h{hour}-{i}", store_id="s1", category="wait_time",
                                  customer_key=f"old{hour}-{i}", at=at, excerpt=""))  # fmt: skip
    spikes = [await _record(notify_db, f"n{i}", f"new{i}", now=now - 60 + i) for i in range(20)]
    first = next(i for i, spike in enumerate(spikes) if spike is not None)
    spike = spikes[first]
    assert isinstance(spike, Spike) and spike.usual is not None and 9.9 <= spike.usual <= 10.1
    assert spike.threshold == math.ceil(spike.usual * 1.5) and spike.customers == spike.threshold
    assert first + 1 == spike.threshold >= 15  # not at 3, nor at 10: half again the usual


async def test_one_alert_opens_and_later_items_fold_in_without_paging_again(notify_db: Database) -> None:
    await add_device(notify_db, "mgr", SUBSCRIPTION, "dev-mgr")
    now = time.time()
    for i in range(2):
        assert await _record(notify_db, f"a{i}", f"c{i}", now=now + i) is None
    spike = await _spike(notify_db, "a2", "c2", now=now + 2)
    opened = await _raise(notify_db, spike, now=now + 2)
    assert opened is not None and opened.created and opened.deliveries == 1
    assert [r.id for r in opened.recipients] == ["mgr"]
    alert = opened.alert
    assert alert.kind == "pattern" and alert.feedback_id is None and len(alert.items or []) == 3
    # Later items fold in, in their own hop: one insert each, nobody paged within the interval;
    # the stored list and text are refreshed at most once a minute (the detail reads them live).
    for i, customer in ((3, "c3"), (4, "c3"), (5, "c5")):
        assert await _record(notify_db, f"a{i}", customer, now=now + i) is None
    async with notify_db.session() as s:
        stored = await s.get(Alert, alert.id)
        assert stored is not None and stored.updates == 0 and len(stored.items or []) == 3
        live = await views.pattern_window(s, alert=stored)
    assert live is not None
    assert [i["feedback_id"] for i in live[0]] == ["a5", "a4", "a3", "a2", "a1", "a0"] and live[1] == 5
    assert await _record(notify_db, "a6", "c6", now=now + 70) is None  # a minute on: refreshed
    async with notify_db.session() as s:
        stored = await s.get(Alert, alert.id)
        assert stored is not None and stored.updates == 1 and len(stored.items or []) == 7
        assert (stored.context or {})["pattern"]["customers"] == 6  # c3's second item counts once
        assert "6 customers" in stored.body
    # After the re-push interval the next item pushes it again (same alert, so the same Topic).
    again = await _record(notify_db, "a9", "c9", now=now + 400)
    assert isinstance(again, PatternOutcome) and not again.created
    assert again.alert.id == alert.id and again.deliveries == 1
    async with notify_db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "pattern")) == 1


async def test_a_resolved_pattern_alert_needs_the_threshold_again(notify_db: Database) -> None:
    now = time.time()
    for i in range(2):
        await _record(notify_db, f"r{i}", f"c{i}", now=now + i)
    opened = await _raise(notify_db, await _spike(notify_db, "r2", "c2", now=now + 2), now=now + 3)
    assert opened is not None
    async with notify_db.transaction() as s:
        stored = await s.get(Alert, opened.alert.id)
        assert stored is not None
        stored.status, stored.resolved_at = "resolved", now + 10
    # The window still holds 4 customers, but only 1 since the resolution.
    assert await _record(notify_db, "r3", "c3", now=now + 20) is None
    assert await _record(notify_db, "r4", "c4", now=now + 21) is None
    reopened = await _raise(notify_db, await _spike(notify_db, "r5", "c5", now=now + 22), now=now + 22)
    assert reopened is not None and reopened.created and reopened.alert.id != opened.alert.id
    assert {i["feedback_id"] for i in reopened.alert.items or []} == {"r3", "r4", "r5"}


async def test_the_area_manager_is_paged_when_a_second_store_of_the_area_spikes(notify_db: Database) -> None:
    async with notify_db.transaction() as s:
        s.add(Store(id="s2", name="Store 2", area_id="a1", timezone="Asia/Seoul", language="en"))
        s.add(Staff(id="mgr2", name="mgr2", email="mgr2@x.demo", password_hash="x", role="store_manager",
                    store_ids=["s2"], area_id=None, language="en", active=True))  # fmt: skip
    now = time.time()
    paged: dict[str, set[str]] = {}
    for store in ("s1", "s2"):
        for i in range(2):
            await _record(notify_db, f"{store}-{i}", f"{store}-c{i}", now=now + i, store=store)
        spike = await _spike(notify_db, f"{store}-2", f"{store}-c2", now=now + 2, store=store)
        outcome = await _raise(notify_db, spike, now=now + 3, store_id=store)
        assert outcome is not None and outcome.created
        paged[store] = {r.id for r in outcome.recipients}
    assert paged == {"s1": {"mgr"}, "s2": {"mgr2", "area"}}


async def test_replicas_deciding_at_once_make_one_pattern_alert(notify_db: Database) -> None:
    """Two replicas (two connection pools on one database) consume a burst of 10 at once: the
    database decides, so one alert lists every item. (On PostgreSQL the hops really overlap.)"""
    other = Database(notify_db.url)
    try:
        now = time.time()

        async def consume(db: Database, i: int) -> None:
            spike = await _record(db, f"b{i}", f"c{i}", now=now + i / 100)
            if isinstance(spike, Spike):
                await _raise(db, spike, now=now + i / 100)

        await asyncio.gather(*(consume(notify_db if i % 2 else other, i) for i in range(10)))
        async with notify_db.session() as s:
            found = list(await s.scalars(select(Alert).where(Alert.kind == "pattern")))
        assert len(found) == 1
        assert len(found[0].items or []) == 10
    finally:
        await other.dispose()


async def test_items_past_the_baseline_period_are_forgotten(notify_db: Database) -> None:
    now = time.time()
    await _record(notify_db, "old", "c1", now=now - 30 * 86400)
    await _record(notify_db, "recent", "c2", now=now - 86400)
    assert await dbsync.write(notify_db, patterns.prune_sync, watch=WATCH, now=now) == 1
    async with notify_db.session() as s:
        assert list(await s.scalars(select(PatternItem.feedback_id))) == ["recent"]
