"""Signals computed incrementally from events, each with its reason, thresholds from settings;
lists by signal with cursor pagination and CSV export; the stated-vs-actual revisit report."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time

import grpc
import pytest
from grpc import aio
from sqlalchemy import select, update

from tests.profile.conftest import Grpc, Profile, assert_problem
from tests.profile.helpers import DAY, customer_with, facts, give_feedback
from voc.profile.v1 import profile_pb2
from voc_platform import dbsync
from voc_profile import context, crm, merges, signals, summary
from voc_profile.models import CustomerSignals, Visit
from voc_profile.schemas import CustomerIn


async def context_of(profile: Profile, customer_id: str, now: float | None = None) -> dict:
    ctx = await dbsync.read(
        profile.database, context.read_context, customer_id=customer_id, settings=profile.settings, now=now
    )
    return ctx.to_dict()


async def test_each_signal_says_why(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    repeat = await customer_with(db, settings, loyalty_id="R-1")
    await give_feedback(
        db,
        settings,
        repeat,
        facts("r1", category="wait_time", days_ago=20),
        facts("r2", category="wait_time", days_ago=2),
        facts("r3", category="cleanliness", days_ago=1),
        facts("r0", category="cleanliness", days_ago=40),  # outside the 30-day window
    )
    sig = (await context_of(profile, repeat))["signals"]
    assert sig["repeat_issue"] is True and sig["repeat_counts"] == {"wait_time": 2, "cleanliness": 1}
    [reason] = [r for r in sig["reasons"] if r["signal"] == "repeat_issue"]
    assert reason["feedback_ids"] == ["r1", "r2"] and reason["reason"] == "2 complaints in 30 days: Wait time"

    swing = await customer_with(db, settings, loyalty_id="S-1")
    await give_feedback(
        db,
        settings,
        swing,
        facts("s1", sentiment="positive", csat=5, days_ago=3),
        facts("s2", sentiment="positive", csat=4, days_ago=2),
        facts("s3", sentiment="negative", csat=2, days_ago=1),
    )
    sig = (await context_of(profile, swing))["signals"]
    assert sig["score_swing"] is True and sig["score_swing_delta"] == -2.5
    [reason] = [r for r in sig["reasons"] if r["signal"] == "score_swing"]
    assert reason["feedback_ids"][0] == "s3" and "CSAT 2 vs rolling mean 4.5" in reason["reason"]
    assert sig["low_satisfaction"] is False  # mean 3.67 is above 2.5

    nps = await customer_with(db, settings, loyalty_id="N-1")
    await give_feedback(
        db,
        settings,
        nps,
        facts("n1", sentiment="positive", nps=9, days_ago=2),
        facts("n2", sentiment="neutral", nps=6, days_ago=1),
    )
    assert (await context_of(profile, nps))["signals"]["score_swing"] is False  # a drop of 3 < 4
    await give_feedback(db, settings, nps, facts("n3", nps=3))
    assert (await context_of(profile, nps))["signals"]["score_swing"] is True  # 3 vs mean 7.5

    low = await customer_with(db, settings, loyalty_id="LOW-1")
    await give_feedback(db, settings, low, facts("l1", csat=2, days_ago=1), facts("l2", csat=2))
    sig = (await context_of(profile, low))["signals"]
    assert sig["low_satisfaction"] is True
    low_reason = next(r for r in sig["reasons"] if r["signal"] == "low_satisfaction")
    assert low_reason["feedback_ids"] == ["l1", "l2"]

    async with db.transaction() as session:
        vip_id, _ = await crm.upsert_customer(
            session, customer=CustomerIn(loyalty_id="V-1", lifetime_value=6_000_000), region="KR"
        )
    sig = (await context_of(profile, vip_id))["signals"]
    assert sig["vip"] is True and sig["reasons"][0]["reason"].endswith("tier, lifetime value 6,000,000")


async def test_chronic_complainers_are_ranked(profile: Profile) -> None:
    db, settings = profile.database, profile.settings  # chronic_top_n = 2 in these tests
    counts = {"C-A": 6, "C-B": 4, "C-C": 3, "C-D": 2}
    ids = {}
    for loyalty, count in counts.items():
        ids[loyalty] = await customer_with(db, settings, loyalty_id=loyalty)
        await give_feedback(
            db,
            settings,
            ids[loyalty],
            *[facts(f"{loyalty}-{i}", category=f"cat{i}", days_ago=i * 10) for i in range(count)],
        )
    a = (await context_of(profile, ids["C-A"]))["signals"]
    assert a["chronic_complainer"] is True and a["chronic_rank"] == 1 and a["complaint_count_90d"] == 6
    b = (await context_of(profile, ids["C-B"]))["signals"]
    assert b["chronic_rank"] == 2 and b["chronic_complainer"] is True
    c = (await context_of(profile, ids["C-C"]))["signals"]
    assert c["chronic_rank"] == 3 and c["chronic_complainer"] is False  # outside the top 2
    assert (await context_of(profile, ids["C-D"]))["signals"]["chronic_rank"] == 0  # under the minimum 3

    first = (
        await profile.client.get(
            "/v1/customers", params={"signal": "chronic_complainer", "limit": 1}, headers=profile.admin
        )
    ).json()
    assert [(c["id"], c["chronic_rank"], c["complaint_count_90d"]) for c in first["customers"]] == [
        (ids["C-A"], 1, 6)
    ]
    second = (
        await profile.client.get(
            "/v1/customers",
            params={"signal": "chronic_complainer", "limit": 1, "cursor": first["next_cursor"]},
            headers=profile.admin,
        )
    ).json()
    assert [c["id"] for c in second["customers"]] == [ids["C-B"]]
    assert second["next_cursor"] is None  # rank 3 is not a top complainer: the list ends


async def test_churn_risk_and_the_store_revisit_report(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    now = time.time()
    stayed_away = await customer_with(db, settings, loyalty_id="CH-1")
    came_back = await customer_with(db, settings, loyalty_id="CH-2")
    recent = await customer_with(db, settings, loyalty_id="CH-3")
    await give_feedback(
        db, settings, stayed_away, facts("c1", sentiment="positive", revisit_intent=True, days_ago=40)
    )
    await give_feedback(
        db, settings, came_back, facts("c2", sentiment="positive", revisit_intent=True, days_ago=40)
    )
    await give_feedback(
        db, settings, recent, facts("c3", sentiment="positive", revisit_intent=True, days_ago=5)
    )
    visits = (
        "customer_id,store_id,visited_at,amount\n" + f"{came_back},store-gangnam,{now - 30 * DAY},12000\n"
    )
    report = (
        await profile.client.post(
            "/v1/visits:import", headers={**profile.admin, "Content-Type": "text/csv"}, content=visits
        )
    ).json()
    assert report["inserted"] == 1

    sig = (await context_of(profile, stayed_away))["signals"]
    assert sig["churn_risk"] is True
    assert [r["feedback_ids"] for r in sig["reasons"] if r["signal"] == "churn_risk"] == [["c1"]]
    assert (await context_of(profile, came_back))["signals"]["churn_risk"] is False
    assert (await context_of(profile, recent))["signals"]["churn_risk"] is False

    listed = (await profile.client.get("/v1/customers?signal=churn_risk", headers=profile.admin)).json()
    assert [c["id"] for c in listed["customers"]] == [stayed_away]

    # Incremental: the stored signal turns on when the window passes, by the refresh pass alone.
    async with db.session() as session:
        row = await session.get(CustomerSignals, recent)
        assert row is not None and row.churn_risk is False and row.refresh_at is not None
        assert abs(row.refresh_at - (now - 5 * DAY + 30 * DAY)) < 5
    assert await signals.refresh_due(db, settings=settings, now=now + 26 * DAY) >= 1
    async with db.session() as session:
        row = await session.get(CustomerSignals, recent)
        assert row is not None and row.churn_risk is True

    stores = (await profile.client.get("/v1/reports/revisit", headers=profile.admin)).json()["stores"]
    assert stores == [
        {
            "store_id": "store-gangnam",
            "stated_intent": 2,  # the 5-day-old statement has not had its 30 days yet
            "returned": 1,
            "returned_any_store": 1,
            "revisit_rate": 0.5,
            "window_days": 30,
        }
    ]
    assert await profile.count(Visit) == 1


async def test_lists_paginate_and_export_csv(profile: Profile) -> None:
    db, settings = profile.database, profile.settings
    low_ids = []
    for i in range(5):
        cid = await customer_with(db, settings, loyalty_id=f"P-{i}", phone=f"010-5555-000{i}")
        async with db.transaction() as session:
            await crm.upsert_customer(
                session,
                customer=CustomerIn(loyalty_id=f"P-{i}", name='=HYPERLINK("x")' if i == 0 else f"박{i}"),
                region="KR",
            )
        await give_feedback(db, settings, cid, facts(f"p{i}", csat=1))
        low_ids.append(cid)
    seen, cursor = [], None
    while True:
        params = {"signal": "low_satisfaction", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await profile.client.get("/v1/customers", params=params, headers=profile.admin)).json()
        seen += [c["id"] for c in page["customers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(low_ids)

    exported = await profile.client.get(
        "/v1/customers", params={"signal": "low_satisfaction", "format": "csv"}, headers=profile.admin
    )
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["customer_id"] for r in rows] == sorted(low_ids)
    by_id = {r["customer_id"]: r for r in rows}
    assert by_id[low_ids[1]]["phone"] == "+821055550001" and by_id[low_ids[1]]["name"] == "박1"
    assert by_id[low_ids[0]]["name"].startswith("'=")  # no formula reaches a spreadsheet
    assert "mean CSAT 1.0" in by_id[low_ids[1]]["reason"]

    bad = assert_problem(await profile.client.get("/v1/customers?signal=grumpy", headers=profile.admin), 422)
    assert bad["errors"][0]["field"] == "signal"
    assert_problem(
        await profile.client.get("/v1/customers?signal=vip&cursor=%%%", headers=profile.admin), 422
    )
    assert_problem(await profile.client.get("/v1/customers?signal=vip&limit=0", headers=profile.admin), 422)
    assert_problem(await profile.client.get("/v1/customers", headers=profile.admin), 422)


SIGNAL_COLUMNS = (
    "repeat_issue",
    "score_swing",
    "complaint_count_90d",
    "low_satisfaction",
    "churn_risk",
    "satisfaction_mean",
    "pending_intent_at",
    "reasons",
    "refresh_at",
)


async def stored_signals(profile: Profile, customer_id: str) -> dict | None:
    async with profile.database.session() as session:
        row = await session.get(CustomerSignals, customer_id)
        return {name: getattr(row, name) for name in SIGNAL_COLUMNS} if row else None


async def test_the_summary_gives_what_the_whole_history_gives(profile: Profile) -> None:
    """Events update each customer's summary in place; the context and the stored signals read
    it instead of the history. Out-of-order items, long histories, items outside the windows and
    the feedback being handled must give exactly what the history itself gives."""
    db, settings = profile.database, profile.settings
    rng = random.Random(5)
    customers = [await customer_with(db, settings, loyalty_id=f"SUM-{k}") for k in range(3)]
    # Away from the window edges (30, 90, 365 days), so the time the test takes moves nothing.
    ages = (0.01, 0.5, 2, 7, 20, 29, 31, 44, 60, 89, 91, 150, 300, 364, 366, 500)

    async def compare(now: float, label: str) -> None:
        fresh = facts("not-yet-recorded", category="a", csat=1, revisit_intent=True, now=now)
        fast = {}
        for c in customers:
            currents = [None, fresh]
            if ids_of[c]:  # already in the history: it must not count twice
                currents.append(recorded_facts[rng.choice(ids_of[c])])
                # The latest stated intent: churn then reads the one before it.
                intents = [recorded_facts[i] for i in ids_of[c] if recorded_facts[i].revisit_intent]
                currents += [max(intents, key=lambda i: i.occurred_at)] if intents else []
            for current in currents:
                ctx = await dbsync.read(
                    db, context.read_context, customer_id=c, settings=settings, current=current, now=now
                )
                fast[(c, current.feedback_id if current else None)] = ctx.to_dict()
        rows = {c: await stored_signals(profile, c) for c in customers}
        async with db.session() as session:  # what was compared is what the summaries give
            for c in customers:
                kept = await session.scalar(
                    select(CustomerSignals.summary).where(CustomerSignals.customer_id == c)
                )
                assert summary.usable(kept, shape=summary.Shape.of(settings), now=now), label
        async with db.transaction() as session:  # forget the summaries: read the history
            await session.execute(update(CustomerSignals).values(summary=None))
        for (c, current_id), expected in fast.items():
            current = (
                None
                if current_id is None
                else fresh
                if current_id == fresh.feedback_id
                else (recorded_facts[current_id])
            )
            ctx = await dbsync.read(
                db, context.read_context, customer_id=c, settings=settings, current=current, now=now
            )
            assert ctx.to_dict() == expected, (label, c, current_id)
        for c in customers:
            await dbsync.write(db, signals.refresh, customer_id=c, settings=settings)
        for c in customers:
            assert await stored_signals(profile, c) == rows[c], (label, c)

    ids_of: dict[str, list[str]] = {c: [] for c in customers}
    recorded_facts: dict[str, dict] = {}
    for step in range(90):
        c = rng.choice(customers)
        item = facts(
            f"sum-{step}",
            category=rng.choice("abc"),
            sentiment=rng.choice(("negative", "negative", "positive", "neutral")),
            csat=rng.choice((None, 1, 2, 3, 4, 5)),
            nps=rng.choice((None, None, 0, 3, 7, 10)),
            revisit_intent=rng.choice((None, None, True, False)),
            days_ago=rng.choice(ages) + rng.random() / 1000,
        )
        await give_feedback(db, settings, c, item)
        ids_of[c].append(item.feedback_id)
        recorded_facts[item.feedback_id] = item
        if step % 10 == 9:
            await compare(time.time(), f"step {step}")

    # Churn reads the latest stated intent that is not the feedback being handled: the summary
    # keeps the one before too, however old and unremarkable it is.
    intent = await customer_with(db, settings, loyalty_id="SUM-intent")
    latest = facts("said-2", sentiment="positive", revisit_intent=True, days_ago=40)
    await give_feedback(
        db,
        settings,
        intent,
        facts("said-1", sentiment="positive", revisit_intent=True, days_ago=200),
        *[facts(f"rated-{k}", sentiment="positive", csat=4, nps=9, days_ago=50 - k) for k in range(8)],
        latest,
    )
    customers.append(intent)
    ids_of[intent] = ["said-2"]
    recorded_facts["said-2"] = latest
    await compare(time.time(), "intents")

    # A merge moves history between customers: their summaries are rebuilt, never trusted.
    async with db.transaction() as session:
        await merges.merge_customers(
            session, survivor_id=customers[0], merged_id=customers[1], trigger="test"
        )
    customers.remove(customers[1])
    await give_feedback(db, settings, customers[0], facts("after-merge", category="b"))
    # A survivor without history of its own (so without stored signals) takes the merged one's.
    empty = await customer_with(db, settings, loyalty_id="SUM-empty")
    async with db.transaction() as session:
        await merges.merge_customers(session, survivor_id=empty, merged_id=intent, trigger="test")
    customers.remove(intent)
    first = facts("first-of-survivor", category="a", csat=1)
    await give_feedback(db, settings, empty, first)
    customers.append(empty)
    ids_of[empty] = ["first-of-survivor"]
    recorded_facts["first-of-survivor"] = first
    await compare(time.time(), "after merge")


async def test_concurrent_events_of_one_customer_all_count(profile: Profile) -> None:
    """PostgreSQL runs the handlers of one customer's events in parallel: each adds its item to
    the summary after the previous one committed (the customer row is locked), none is lost."""
    db, settings = profile.database, profile.settings
    customer = await customer_with(db, settings, loyalty_id="PAR-1")

    async def one(k: int) -> None:
        await dbsync.write(
            db,
            signals.record_feedback,
            customer_id=customer,
            item=facts(f"par-{k}", csat=k % 5 + 1, days_ago=k),
            severity="medium",
            settings=settings,
            now=time.time(),
        )

    await asyncio.gather(*(one(k) for k in range(12)))
    ctx = await context_of(profile, customer)
    assert ctx["feedback_count"] == 12 and ctx["signals"]["complaint_count_90d"] == 12
    async with db.session() as session:
        row = (
            await session.execute(
                select(CustomerSignals.summary, CustomerSignals.complaint_count_90d).where(
                    CustomerSignals.customer_id == customer
                )
            )
        ).one()
    assert row.summary is not None and row.summary["n"] == 12 and row.complaint_count_90d == 12


async def test_grpc_page_tokens_are_checked_as_rest_cursors_are(rpc: Grpc) -> None:
    """A token past int64 was UNKNOWN (OverflowError; past int32 on PostgreSQL); 5,000 digits and
    '²' (`str.isdigit` is true for it) were UNKNOWN (ValueError)."""

    async def list_from(token: str) -> profile_pb2.ListCustomersResponse:
        request = profile_pb2.ListCustomersRequest(signal="chronic_complainer", page_token=token)
        response: profile_pb2.ListCustomersResponse = await rpc.stub.ListCustomers(request)
        return response

    for token in (f"{2**63}:x", f"{2**31}:x", "9" * 5000 + ":x", "²:x", "-1:x", "1:", "1", "1:a\x00"):
        with pytest.raises(aio.AioRpcError) as err:
            await list_from(token)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, token[:40]
        assert "page_token" in (err.value.details() or "")
    assert not (await list_from(f"{2**31 - 1}:x")).customers  # the INTEGER column's largest
