"""Heads-up alerts (#18) on a real database: one per customer, store and local day (the alert's
unique `dedupe_key`, so the database refuses a second whatever replica tries), the plan's roles
paged, and why staff are told in both languages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.notify.conftest import seoul
from voc_notify import arrivals
from voc_notify.arrivals import Arrival, LastContact
from voc_notify.facts import Plan, PlanStep
from voc_notify.models import Alert, Store
from voc_platform import dbsync
from voc_platform.db import Database

PLAN = Plan(
    playbook_id="heads-up-vip",
    version=1,
    title="VIP 김민수 just arrived",
    priority="normal",
    steps=(PlanStep("Greet them by name", "shift_lead"),),
    notify_roles=("shift_lead",),
)


def arrival(at: float, customer: str = "cust-1") -> Arrival:
    return Arrival(
        visit_id=f"v-{at}",
        customer_id=customer,
        store_id="s1",
        channel="pos",
        occurred_at=at,
        masked_name="김**",
        name="김민수",
        tier="vip",
        vip=True,
        churn_risk=False,
        repeat_issue=False,
        chronic_complainer=False,
        unresolved=False,
        last_contact=LastContact(
            "fb-1", "food_quality", "negative", "app", "s1", at - 3 * 86400, "resolved", "compensated"
        ),
    )


async def heads_up(db: Database, came: Arrival) -> object:
    async with db.session() as s:
        store = await s.get(Store, "s1")
    assert store is not None
    # At the arrival's own time, as in production: the reasons' "3 days ago" is counted from
    # now, and these arrivals are fixed dates (the real clock made it 4 days on Dec 6).
    return await dbsync.write(
        db,
        arrivals.heads_up_sync,
        arrival=came,
        store=store,
        plan=PLAN,
        language="ko",
        now=came.occurred_at,
    )


async def test_one_heads_up_per_customer_store_and_day(notify_db: Database) -> None:
    morning, evening, next_day = seoul(2026, 12, 5, 9), seoul(2026, 12, 5, 23, 30), seoul(2026, 12, 6, 0, 30)
    first = await heads_up(notify_db, arrival(morning))
    assert isinstance(first, arrivals.NewAlert)
    assert [r.id for r in first.recipients] == ["lead"]
    alert = first.alert
    assert alert.kind == "heads_up" and alert.feedback_id is None and alert.customer_id == "cust-1"
    assert alert.dedupe_key == "heads_up:cust-1:s1:2026-12-05"  # the store's local date
    assert "김**" in alert.title and "김민수" not in alert.title + alert.body
    item = (alert.items or [])[0]
    assert item["reasons_ko"] == ["지난 불만: 음식 품질 (3일 전, 보상함)", "VIP"]
    assert item["reasons_en"] == ["last visit: Food quality (3 days ago, compensated)", "VIP"]
    assert await heads_up(notify_db, arrival(evening)) is None  # the same local day
    assert isinstance(await heads_up(notify_db, arrival(next_day)), arrivals.NewAlert)
    assert isinstance(await heads_up(notify_db, arrival(evening, customer="cust-2")), arrivals.NewAlert)
    async with notify_db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "heads_up")) == 3


async def test_the_database_refuses_a_second_heads_up_of_the_day(notify_db: Database) -> None:
    """What keeps two replicas that both passed the look-up from paging twice."""
    first = await heads_up(notify_db, arrival(seoul(2026, 12, 5, 9)))
    assert isinstance(first, arrivals.NewAlert)
    async with notify_db.session() as s:
        row = await s.get(Alert, first.alert.id)
        assert row is not None
        fields = {c.key: getattr(row, c.key) for c in Alert.__table__.columns}
    with pytest.raises(IntegrityError):
        async with notify_db.transaction() as s:
            s.add(Alert(**{**fields, "id": "another-alert"}))
