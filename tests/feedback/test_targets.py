"""Targets (#20 §5) on a real database, in process: cx_admin sets any, an area manager their
area's, a store manager reads; a store target overrides its area's; the analytics answer each
metric against its target with a weekly trend; bad input writes nothing. And the dashboard's
outreach report, asked of profile's real gRPC service on loopback for the reader's stores."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from tests.conftest import DatabaseFactory
from voc_feedback.__main__ import MIGRATIONS
from voc_feedback.api import build_app
from voc_feedback.models import Feedback, Store, Target
from voc_feedback.models import audit_table as feedback_audit
from voc_feedback.settings import Settings
from voc_platform import migrations
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.grpc import create_server
from voc_platform.identity import Principal, issue_token
from voc_profile import grpc_server as profile_grpc
from voc_profile.__main__ import MIGRATIONS as PROFILE_MIGRATIONS
from voc_profile.models import Customer, OutreachAssignment, OutreachContact, audit_table
from voc_profile.settings import Settings as ProfileSettings

ADMIN = "targets-test-admin"
TOKEN = "targets-test-internal"
GANGNAM, HONGDAE, BUSAN = "store-gangnam", "store-hongdae", "store-busan"
WEEK = 7 * 86400.0
CALLERS = {
    "manager": Principal("mgr-gn", "store_manager", (GANGNAM,), None),
    "area": Principal("area-seoul-mgr", "area_manager", (), "area-seoul", (GANGNAM, HONGDAE)),
    "cx": Principal("cx", "cx_admin", (), None),
    "lead": Principal("lead-gn", "shift_lead", (GANGNAM,), None),
    "busan": Principal("mgr-bs", "store_manager", (BUSAN,), None),
}


@dataclass
class Board:
    client: httpx.AsyncClient
    database: Database
    settings: Settings

    def as_(self, who: str) -> dict[str, str]:
        token = issue_token(CALLERS[who], secret=self.settings.jwt_secret, ttl=600)
        return {"Authorization": f"Bearer {token}"}

    async def count(self, model: Any) -> int:
        async with self.database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def feedback_row(i: int, store: str, *, weeks_ago: float, **facts: Any) -> dict[str, Any]:
    at = time.time() - weeks_ago * WEEK
    return {
        "id": f"f-{store}-{i}",
        "store_id": store,
        "channel": "kiosk",
        "language": "ko",
        "sentiment": "negative",
        "score": -0.5,
        "category": "food_quality",
        "severity": "medium",
        "explanation": [],
        "occurred_at": at,
        "received_at": at,
        "customer": {},
        "status": "received",
        "api_key_id": "k",
        **facts,
    }


@pytest.fixture
async def board(databases: DatabaseFactory) -> AsyncIterator[Board]:
    profile_db = Database(databases.url("targets_profile"))
    await migrations.upgrade(profile_db, PROFILE_MIGRATIONS, name="profile")
    now = time.time()
    async with profile_db.transaction() as session:
        await session.execute(
            insert(Customer),
            [
                {
                    "id": f"c{i}",
                    "tier": "basic",
                    "lifetime_value": 0,
                    "contact_consent": False,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(3)
            ],
        )
        await session.execute(
            insert(OutreachAssignment),
            [
                {
                    "id": f"a{i}",
                    "customer_id": f"c{i}",
                    "list_kind": "churn_risk",
                    "store_id": store,
                    "assignee_id": "lead-gn",
                    "assignee_name": "Lead",
                    "assigned_by": "staff:mgr-gn",
                    "assigned_at": now - 3 * 86400,
                    "status": "open",
                    "updated_at": now,
                }
                for i, store in enumerate((GANGNAM, GANGNAM, BUSAN))
            ],
        )
        await session.execute(
            insert(OutreachContact),
            [
                {
                    "assignment_id": "a0",
                    "channel": "phone",
                    "outcome": "reached",
                    "note": "",
                    "contacted_by": "staff:lead-gn",
                    "contacted_at": now - 2 * 86400,
                }
            ],
        )
    server, _, port = create_server(
        port=0,
        host="127.0.0.1",
        token=TOKEN,
        register=profile_grpc.register(profile_db, ProfileSettings(), Audit(profile_db, audit_table)),
        service_names=[profile_grpc.SERVICE_NAME],
    )
    await server.start()
    database = Database(databases.url("targets_feedback"))
    try:
        await migrations.upgrade(database, MIGRATIONS, name="feedback")
        async with database.transaction() as session:
            await session.execute(
                insert(Store),
                [
                    {"id": GANGNAM, "name": "강남역점", "area_id": "area-seoul", "updated_at": now},
                    {"id": HONGDAE, "name": "홍대점", "area_id": "area-seoul", "updated_at": now},
                    {"id": BUSAN, "name": "서면점", "area_id": "area-busan", "updated_at": now},
                ],
            )
            rows = [
                # Gangnam, this week: 2 promoters, 1 detractor; acknowledged 5 and 9 minutes after receipt.
                feedback_row(1, GANGNAM, weeks_ago=0, nps=10, alerted_at=now, acknowledged_at=now + 240),
                feedback_row(2, GANGNAM, weeks_ago=0, nps=9, alerted_at=now, acknowledged_at=now + 480),
                feedback_row(3, GANGNAM, weeks_ago=0, nps=3, csat=2),
                # Gangnam, three weeks ago: detractors only.
                feedback_row(4, GANGNAM, weeks_ago=3, nps=2, csat=1),
                feedback_row(5, HONGDAE, weeks_ago=1, nps=10, csat=5),
                feedback_row(6, BUSAN, weeks_ago=0, nps=0, csat=1),
            ]
            for r in rows:
                r["received_at"] = r["occurred_at"] = min(r["received_at"], now - 60)
            await session.execute(insert(Feedback), rows)
        settings = Settings(admin_token=ADMIN, internal_token=TOKEN, profile_grpc_target=f"127.0.0.1:{port}")
        app = build_app(settings, database)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://feedback"
        ) as client:
            yield Board(client, database, settings)
        await app.state.outreach_reports.close()
    finally:
        await server.stop(None)
        await database.dispose()
        await profile_db.dispose()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


async def test_who_sets_targets_and_a_store_target_overrides_its_area(board: Board) -> None:
    c = board.client
    assert (
        await c.put(
            "/v1/targets",
            json={"area_id": "area-seoul", "metric": "nps", "value": 30},
            headers=board.as_("area"),
        )
    ).status_code == 200
    assert (
        await c.put(
            "/v1/targets",
            json={"area_id": "area-seoul", "metric": "ack_minutes", "value": 5},
            headers=board.as_("area"),
        )
    ).status_code == 200
    put = await c.put(
        "/v1/targets", json={"store_id": GANGNAM, "metric": "nps", "value": 20}, headers=board.as_("cx")
    )
    assert put.status_code == 200 and put.json()["direction"] == "at_least"
    # An area manager not outside their area; a store manager sets nothing.
    body = problem(
        await c.put(
            "/v1/targets", json={"store_id": BUSAN, "metric": "nps", "value": 1}, headers=board.as_("area")
        ),
        403,
    )
    assert body["errors"][0]["field"] == "body.store_id"
    body = problem(
        await c.put(
            "/v1/targets",
            json={"area_id": "area-busan", "metric": "nps", "value": 1},
            headers=board.as_("area"),
        ),
        403,
    )
    assert body["errors"][0]["field"] == "body.area_id"
    problem(
        await c.put(
            "/v1/targets",
            json={"store_id": GANGNAM, "metric": "nps", "value": 1},
            headers=board.as_("manager"),
        ),
        403,
    )
    # The store manager reads what applies to Gangnam: its own and its area's.
    read = await c.get("/v1/targets", headers=board.as_("manager"))
    assert read.status_code == 200
    assert sorted((t.get("store_id") or t["area_id"], t["metric"]) for t in read.json()["targets"]) == [
        ("area-seoul", "ack_minutes"),
        ("area-seoul", "nps"),
        (GANGNAM, "nps"),
    ]
    problem(await c.get(f"/v1/targets?store_id={BUSAN}", headers=board.as_("manager")), 403)
    problem(await c.get("/v1/targets", headers=board.as_("lead")), 403)

    against = await c.get("/v1/analytics/targets?weeks=4", headers=board.as_("manager"))
    assert against.status_code == 200, against.text
    answer = against.json()
    assert len(answer["weeks"]) == 4
    (gangnam,) = answer["places"]  # a store manager: their store, no area row
    metrics = {m["metric"]: m for m in gangnam["metrics"]}
    nps = metrics["nps"]
    # 4 answers: 2 promoters, 2 detractors -> 0; the store's own target (20) wins over the area's.
    assert (nps["value"], nps["target"], nps["target_from"], nps["met"]) == (0.0, 20.0, "store", False)
    assert nps["trend"][-1] == pytest.approx(33.3) and nps["trend"][0] == -100.0 and nps["trend"][1] is None
    ack = metrics["ack_minutes"]
    # Received a minute ago, acknowledged 4 and 8 minutes from now: 5 and 9 minutes, p50 5.
    assert (ack["value"], ack["target"], ack["target_from"], ack["met"]) == (5.0, 5.0, "area", True)
    assert metrics["csat"]["target"] is None and metrics["csat"]["met"] is None

    # The area manager sees both of their stores and the area; Busan is none of theirs.
    area = (await c.get("/v1/analytics/targets?weeks=4", headers=board.as_("area"))).json()
    assert [(p["kind"], p["id"]) for p in area["places"]] == [
        ("store", GANGNAM),
        ("store", HONGDAE),
        ("area", "area-seoul"),
    ]
    hongdae = {m["metric"]: m for m in area["places"][1]["metrics"]}
    assert (hongdae["nps"]["target"], hongdae["nps"]["target_from"]) == (30.0, "area")
    problem(await c.get(f"/v1/analytics/targets?store_id={BUSAN}", headers=board.as_("area")), 403)

    # Removing the store's target falls back to the area's.
    assert (
        await c.delete(f"/v1/targets?store_id={GANGNAM}&metric=nps", headers=board.as_("area"))
    ).status_code == 204
    again = (await c.get("/v1/analytics/targets", headers=board.as_("manager"))).json()
    nps = next(m for m in again["places"][0]["metrics"] if m["metric"] == "nps")
    assert (nps["target"], nps["target_from"]) == (30.0, "area")
    problem(await c.delete(f"/v1/targets?store_id={GANGNAM}&metric=nps", headers=board.as_("area")), 404)
    async with board.database.session() as session:
        actions = list(
            await session.scalars(
                select(feedback_audit.c.actor).where(feedback_audit.c.action.like("target.%"))
            )
        )
    assert actions.count("staff:area-seoul-mgr") == 3 and actions.count("staff:cx") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"store_id": "store-nowhere", "metric": "nps", "value": 10}, "body.store_id"),
        ({"area_id": "area-nowhere", "metric": "nps", "value": 10}, "body.area_id"),
        ({"store_id": GANGNAM, "metric": "nps", "value": 101}, "body.value"),
        ({"store_id": GANGNAM, "metric": "csat", "value": 0.5}, "body.value"),
        ({"store_id": GANGNAM, "metric": "recovery_rate", "value": 1.5}, "body.value"),
        ({"store_id": GANGNAM, "metric": "ack_minutes", "value": 0}, "body.value"),
        ({"store_id": GANGNAM, "metric": "happiness", "value": 1}, "body.metric"),
        ({"store_id": GANGNAM, "area_id": "area-seoul", "metric": "nps", "value": 1}, "body.store_id"),
        ({"metric": "nps", "value": 1}, "body.store_id"),
        ({"store_id": GANGNAM, "metric": "nps", "value": "NaN"}, "body.value"),
    ],
)
async def test_bad_targets_name_the_field_and_write_nothing(
    board: Board, body: dict[str, Any], field: str
) -> None:
    answer = problem(await board.client.put("/v1/targets", json=body, headers=board.as_("cx")), 422)
    assert field in [e["field"] for e in answer["errors"]], answer
    assert await board.count(Target) == 0


async def test_the_dashboard_reads_profiles_outreach_report_for_the_readers_stores(board: Board) -> None:
    mine = await board.client.get("/v1/analytics/outreach", headers=board.as_("manager"))
    assert mine.status_code == 200, mine.text
    (row,) = mine.json()["rows"]
    assert (row["store_id"], row["store_name"], row["list_kind"]) == (GANGNAM, "강남역점", "churn_risk")
    assert (row["assigned"], row["reached"], row["contact_rate"]) == (2, 1, 0.5)
    everything = (
        await board.client.get("/v1/analytics/outreach", headers={"Authorization": f"Bearer {ADMIN}"})
    ).json()
    assert sorted(r["store_id"] for r in everything["rows"]) == [BUSAN, GANGNAM]
    problem(
        await board.client.get(f"/v1/analytics/outreach?store_id={BUSAN}", headers=board.as_("manager")), 403
    )
    problem(await board.client.get("/v1/analytics/outreach", headers=board.as_("lead")), 403)


async def test_against_targets_over_the_dashboards_period_are_the_boards_own_numbers(board: Board) -> None:
    """The dashboard asks for its own period (`from`, as `GET /v1/analytics`): each value is the
    board's number for the same items, the trend runs by the weeks the period touches, the first
    from `from`; `weeks` keeps its meaning (8 by default), and not both. A praise on an info plan
    (FYI) is no case: its acknowledgement after five hours is not in the minutes to acknowledge."""
    now = time.time()
    praise = feedback_row(7, GANGNAM, weeks_ago=0, sentiment="positive", category="praise", priority="info")
    praise.update(status="acknowledged", received_at=now - 6 * 3600, occurred_at=now - 6 * 3600)
    praise.update(alerted_at=now - 6 * 3600 + 1, acknowledged_at=now - 3600)
    async with board.database.transaction() as session:
        await session.execute(insert(Feedback), [praise])
    since = datetime.fromtimestamp(now - 14 * 86400, UTC).isoformat()
    c, manager = board.client, board.as_("manager")
    period = {"from": since, "tz": "Asia/Seoul"}
    tiles = (await c.get("/v1/analytics", params={**period, "store_id": GANGNAM}, headers=manager)).json()
    answer = (await c.get("/v1/analytics/targets", params=period, headers=manager)).json()
    assert answer["from"] == pytest.approx(now - 14 * 86400, abs=1)
    assert len(answer["weeks"]) == 3  # two weeks back touch this week and the two before
    (gangnam,) = answer["places"]
    metrics = {m["metric"]: m for m in gangnam["metrics"]}
    # Three weeks ago (a detractor) is outside the period: two promoters, one detractor.
    assert metrics["nps"]["value"] == tiles["nps"]["score"] == pytest.approx(33.3)
    assert metrics["csat"]["value"] == tiles["csat"]["average"] == 2.0
    ack_p50 = tiles["loop"]["time_to_acknowledge_seconds"]["p50"]
    assert metrics["ack_minutes"]["value"] == round(ack_p50 / 60, 1) == 5.0  # not the praise's 300
    assert (tiles["loop"]["cases"], tiles["loop"]["fyi"]) == (2, 1)
    assert len(metrics["nps"]["trend"]) == 3 and metrics["nps"]["trend"][-1] == pytest.approx(33.3)

    assert len((await c.get("/v1/analytics/targets", headers=manager)).json()["weeks"]) == 8
    both = await c.get("/v1/analytics/targets", params={**period, "weeks": 4}, headers=manager)
    assert problem(both, 422)["errors"][0]["field"] == "query.from"
    for start, why in (
        (datetime.fromtimestamp(now + 3600, UTC).isoformat(), "in the future"),
        (datetime.fromtimestamp(now - 200 * 86400, UTC).isoformat(), "more than 26 weeks back"),
        ("yesterday", "not a date"),
        ("0001-01-01", "year 1: overflowed west of UTC (a 500 before)"),
    ):
        params = {"from": start, "tz": "America/New_York"}
        refused = problem(await c.get("/v1/analytics/targets", params=params, headers=manager), 422)
        assert refused["errors"][0]["field"] == "query.from", (why, refused)
