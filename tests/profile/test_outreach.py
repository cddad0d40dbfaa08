"""Outreach work (#20) on a real database, with notify's real gRPC directory on loopback: a
manager assigns a list customer to staff of their store, the assignee records contacts, the list
shows the assignment and the last contact, the report counts revisits of reached vs not reached
customers; another store is 403 (a field) or 404 (an id); bad input writes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc import aio
from sqlalchemy import insert

from tests.conftest import DatabaseFactory
from tests.profile.conftest import Grpc, Profile, assert_problem, open_profile
from tests.profile.helpers import DAY, customer_with, facts, give_feedback
from voc.profile.v1 import profile_pb2
from voc_cli.supervisor import free_port
from voc_notify import grpc_server as notify_grpc
from voc_notify.__main__ import MIGRATIONS as NOTIFY_MIGRATIONS
from voc_notify.models import Staff, Store
from voc_platform import migrations
from voc_platform.db import Database
from voc_platform.grpc import create_server
from voc_platform.identity import Principal, issue_token
from voc_profile.models import AuditEntry, OutreachAssignment, OutreachContact, Visit

TOKEN = "test-internal-token-outreach"
GANGNAM, BUSAN = "store-gangnam", "store-busan"
STAFF = (
    # id, role, stores, area
    ("mgr-gn", "store_manager", [GANGNAM], None),
    ("lead-gn", "shift_lead", [GANGNAM], None),
    ("staff-gn", "staff", [GANGNAM], None),
    ("lead-bs", "shift_lead", [BUSAN], None),
    ("mgr-bs", "store_manager", [BUSAN], None),
    ("gone-gn", "staff", [GANGNAM], None),  # deactivated
)


@dataclass
class Outreach:
    profile: Profile
    gangnam_customer: str
    busan_customer: str

    def as_(self, staff_id: str) -> dict[str, str]:
        role, stores = next((r, s) for i, r, s, _ in STAFF if i == staff_id)
        token = issue_token(
            Principal(staff_id, role, tuple(stores), None), secret=self.profile.settings.jwt_secret, ttl=600
        )
        return {"Authorization": f"Bearer {token}"}

    async def assign(self, by: str, **body: Any) -> Any:
        payload = {
            "customer_id": self.gangnam_customer,
            "list_kind": "low_satisfaction",
            "store_id": GANGNAM,
            "assignee_id": "lead-gn",
            **body,
        }
        return await self.profile.client.post("/v1/outreach/assignments", json=payload, headers=self.as_(by))


@pytest.fixture
async def work(databases: DatabaseFactory) -> AsyncIterator[Outreach]:
    notify_db = Database(databases.url("notify_directory"))
    await migrations.upgrade(notify_db, NOTIFY_MIGRATIONS, name="notify")
    async with notify_db.transaction() as session:
        await session.execute(
            insert(Store), [{"id": GANGNAM, "name": "강남역점"}, {"id": BUSAN, "name": "Busan"}]
        )
        await session.execute(
            insert(Staff),
            [
                {
                    "id": staff_id,
                    "name": f"Name {staff_id}",
                    "email": f"{staff_id}@demo",
                    "password_hash": "x",
                    "role": role,
                    "store_ids": stores,
                    "area_id": area,
                    "active": staff_id != "gone-gn",
                }
                for staff_id, role, stores, area in STAFF
            ],
        )
    server, _, port = create_server(
        port=0,
        host="127.0.0.1",
        token=TOKEN,
        register=notify_grpc.register(notify_db),
        service_names=[notify_grpc.SERVICE_NAME],
    )
    await server.start()
    try:
        async with open_profile(
            databases, notify_grpc_target=f"127.0.0.1:{port}", internal_token=TOKEN
        ) as profile:
            db, settings = profile.database, profile.settings
            gangnam = await customer_with(db, settings, loyalty_id="L-gn")
            busan = await customer_with(db, settings, loyalty_id="L-bs")
            for customer, store, prefix in ((gangnam, GANGNAM, "g"), (busan, BUSAN, "b")):
                await give_feedback(
                    db,
                    settings,
                    customer,
                    *(facts(f"f-{prefix}{i}", csat=1, days_ago=10 - i, store_id=store) for i in range(5)),
                )
            yield Outreach(profile, gangnam, busan)
    finally:
        await server.stop(None)
        await notify_db.dispose()


async def test_a_manager_assigns_the_assignee_records_and_the_list_shows_it(work: Outreach) -> None:
    client = work.profile.client
    created = await work.assign("mgr-gn", due_at="2030-01-01T18:00:00+09:00")
    assert created.status_code == 201, created.text
    assignment = created.json()
    assert assignment["assignee_name"] == "Name lead-gn" and assignment["status"] == "open"
    assert assignment["assigned_by"] == "staff:mgr-gn"

    mine = await client.get("/v1/outreach/assignments?assignee=me", headers=work.as_("lead-gn"))
    assert mine.status_code == 200
    (listed,) = mine.json()["assignments"]
    assert listed["id"] == assignment["id"] and listed["customer"]["id"] == work.gangnam_customer

    url = f"/v1/outreach/assignments/{assignment['id']}/contacts"
    first = await client.post(
        url, json={"channel": "phone", "outcome": "no_answer"}, headers=work.as_("lead-gn")
    )
    assert first.status_code == 201 and first.json()["status"] == "in_progress"
    note = "고객님이 010-1234-5678 번호로 저녁에 다시 연락 달라고 하심"
    second = await client.post(
        url, json={"channel": "kakao", "outcome": "resolved", "note": note}, headers=work.as_("lead-gn")
    )
    assert second.status_code == 201
    body = second.json()
    assert body["status"] == "done" and [c["outcome"] for c in body["contacts"]] == ["no_answer", "resolved"]
    assert body["last_contact"]["by"] == "staff:lead-gn" and body["last_contact"]["note"] == note
    # Done: nothing more is recorded on it.
    again = await client.post(
        url, json={"channel": "phone", "outcome": "reached"}, headers=work.as_("lead-gn")
    )
    assert_problem(again, 409)

    page = await client.get("/v1/customers?signal=low_satisfaction", headers=work.as_("mgr-gn"))
    assert page.status_code == 200
    (customer,) = page.json()["customers"]
    assert customer["outreach"]["id"] == assignment["id"]
    assert customer["outreach"]["last_contact"]["outcome"] == "resolved"

    # Audited with the token's actor; the note never reaches the audit log.
    await work.profile.trail.flush()
    async with work.profile.database.session() as session:
        entries = [
            (e.actor, e.action, e.detail)
            for e in await session.execute(
                AuditEntry.__table__.select().where(AuditEntry.__table__.c.action.like("outreach%"))
            )
        ]
    actions = [(actor, action) for actor, action, _ in entries]
    assert ("staff:mgr-gn", "outreach_assign") in actions
    assert actions.count(("staff:lead-gn", "outreach_contact")) == 2
    assert ("staff:lead-gn", "outreach_list") in actions
    assert all(note not in str(detail) for _, _, detail in entries)


async def test_the_gangnam_manager_cannot_see_or_assign_busan(work: Outreach) -> None:
    client = work.profile.client
    refused = await work.assign(
        "mgr-gn", store_id=BUSAN, customer_id=work.busan_customer, assignee_id="lead-bs"
    )
    body = assert_problem(refused, 403)
    assert body["errors"][0]["field"] == "body.store_id"
    listed = await client.get(f"/v1/outreach/assignments?store_id={BUSAN}", headers=work.as_("mgr-gn"))
    assert assert_problem(listed, 403)["errors"][0]["field"] == "query.store_id"
    report = await client.get(f"/v1/outreach/report?store_id={BUSAN}", headers=work.as_("mgr-gn"))
    assert_problem(report, 403)

    busan = await work.assign(
        "mgr-bs", store_id=BUSAN, customer_id=work.busan_customer, assignee_id="lead-bs"
    )
    assert busan.status_code == 201, busan.text
    busan_id = busan.json()["id"]
    # Busan's assignment is not Gangnam's to see, record on or cancel: answered as missing.
    everything = await client.get("/v1/outreach/assignments", headers=work.as_("mgr-gn"))
    assert everything.status_code == 200 and busan_id not in everything.text
    contact = await client.post(
        f"/v1/outreach/assignments/{busan_id}/contacts",
        json={"channel": "phone", "outcome": "reached"},
        headers=work.as_("mgr-gn"),
    )
    assert_problem(contact, 404)
    assert_problem(
        await client.delete(f"/v1/outreach/assignments/{busan_id}", headers=work.as_("mgr-gn")), 404
    )
    # A Gangnam staff member who is not the assignee may not record on a Gangnam assignment.
    gangnam = (await work.assign("mgr-gn")).json()
    other = await client.post(
        f"/v1/outreach/assignments/{gangnam['id']}/contacts",
        json={"channel": "phone", "outcome": "reached"},
        headers=work.as_("staff-gn"),
    )
    assert_problem(other, 403)
    # Staff read their own assignments only, and assign nothing.
    assert_problem(
        await client.get("/v1/outreach/assignments?assignee=lead-gn", headers=work.as_("staff-gn")), 403
    )
    assert_problem(await work.assign("lead-gn"), 403)


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"customer_id": "00000000-0000-7000-8000-000000000000"}, "body.customer_id", 422),
        ({"assignee_id": "nobody"}, "body.assignee_id", 422),
        ({"assignee_id": "gone-gn"}, "body.assignee_id", 422),  # deactivated
        ({"assignee_id": "lead-bs"}, "body.assignee_id", 422),  # works at Busan
        ({"list_kind": "grumpy"}, "body.list_kind", 422),
        ({"due_at": "2030-01-01T18:00:00"}, "body.due_at", 422),  # no offset
        ({"store_id": "../etc"}, "body.store_id", 422),
        ({"extra": 1}, "body.extra", 422),
    ],
)
async def test_bad_assignments_name_the_field_and_write_nothing(
    work: Outreach, change: dict[str, Any], field: str, status: int
) -> None:
    body = assert_problem(await work.assign("mgr-gn", **change), status)
    assert field in [e["field"] for e in body["errors"]], body
    assert await work.profile.count(OutreachAssignment) == 0


async def test_bad_contacts_and_repeats_write_nothing(work: Outreach) -> None:
    client = work.profile.client
    created = (await work.assign("mgr-gn")).json()
    assert_problem(await work.assign("mgr-gn"), 409)  # one live assignment per customer and store
    url = f"/v1/outreach/assignments/{created['id']}/contacts"
    lead = work.as_("lead-gn")
    for body, field in (
        ({"channel": "pigeon", "outcome": "reached"}, "body.channel"),
        ({"channel": "phone", "outcome": "maybe"}, "body.outcome"),
        ({"channel": "phone", "outcome": "reached", "note": "x" * 501}, "body.note"),
        (
            {"channel": "phone", "outcome": "reached", "contacted_at": "2099-01-01T00:00:00+00:00"},
            "body.contacted_at",
        ),
    ):
        problem = assert_problem(await client.post(url, json=body, headers=lead), 422)
        assert field in [e["field"] for e in problem["errors"]], problem
    assert_problem(
        await client.post(
            "/v1/outreach/assignments/nope/contacts",
            json={"channel": "phone", "outcome": "reached"},
            headers=lead,
        ),
        404,
    )
    assert await work.profile.count(OutreachContact) == 0
    # A cancelled assignment takes no contact, and frees the customer for a new one.
    assert (
        await client.delete(f"/v1/outreach/assignments/{created['id']}", headers=work.as_("mgr-gn"))
    ).status_code == 204
    assert_problem(await client.post(url, json={"channel": "phone", "outcome": "reached"}, headers=lead), 409)
    assert (await work.assign("mgr-gn")).status_code == 201


async def test_a_customer_who_opted_out_is_not_assigned_nor_called(work: Outreach) -> None:
    """Outreach calls a customer: one who opted out of contact (`contact_consent: false`) is not
    assigned (422 naming `body.customer_id`), and one who opts out after the assignment is not
    called, texted or mailed any more (422 naming `body.channel`); a conversation when they come
    into the store may still be recorded."""
    client, admin = work.profile.client, work.profile.admin
    created = (await work.assign("mgr-gn")).json()
    opt_out = await client.post(
        "/v1/customers", json={"customers": [{"loyalty_id": "L-gn", "contact_consent": False}]}, headers=admin
    )
    assert opt_out.status_code == 200 and opt_out.json()[0]["customer_id"] == work.gangnam_customer
    url = f"/v1/outreach/assignments/{created['id']}/contacts"
    lead = work.as_("lead-gn")
    for channel in ("phone", "sms", "email", "kakao"):
        refused = assert_problem(
            await client.post(url, json={"channel": channel, "outcome": "reached"}, headers=lead), 422
        )
        assert refused["errors"] == [
            {"field": "body.channel", "message": "the customer opted out of contact; in_store only"}
        ]
    assert await work.profile.count(OutreachContact) == 0
    spoken = await client.post(url, json={"channel": "in_store", "outcome": "resolved"}, headers=lead)
    assert spoken.status_code == 201, spoken.text
    refused = assert_problem(await work.assign("mgr-gn"), 422)
    assert refused["errors"] == [
        {"field": "body.customer_id", "message": "the customer opted out of contact"}
    ]
    assert await work.profile.count(OutreachAssignment) == 1


async def test_the_report_compares_revisits_of_reached_and_not_reached(work: Outreach) -> None:
    db, settings, client = work.profile.database, work.profile.settings, work.profile.client
    now = time.time()
    others = [await customer_with(db, settings, loyalty_id=f"L-r{i}") for i in range(3)]
    for i, customer in enumerate(others):
        await give_feedback(db, settings, customer, facts(f"f-r{i}", csat=1, days_ago=20))
    ids = []
    for customer in [work.gangnam_customer, *others]:
        r = await work.assign("mgr-gn", customer_id=customer)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    # Assigned two weeks ago (the report reads the times stored).
    async with db.transaction() as session:
        await session.execute(OutreachAssignment.__table__.update().values(assigned_at=now - 14 * DAY))
    lead = work.as_("lead-gn")
    for assignment_id, outcome in ((ids[0], "reached"), (ids[1], "resolved"), (ids[2], "no_answer")):
        r = await client.post(
            f"/v1/outreach/assignments/{assignment_id}/contacts",
            json={"channel": "phone", "outcome": outcome, "contacted_at": _iso(now - 13 * DAY)},
            headers=lead,
        )
        assert r.status_code == 201, r.text
    # Came back: the first reached customer visited, the not-reached (no answer) one gave
    # feedback at the store after the assignment; a visit elsewhere does not count.
    async with db.transaction() as session:
        await session.execute(
            insert(Visit),
            [
                {
                    "customer_id": work.gangnam_customer,
                    "store_id": GANGNAM,
                    "visited_at": now - 5 * DAY,
                    "amount": 0,
                },
                {"customer_id": others[0], "store_id": BUSAN, "visited_at": now - 5 * DAY, "amount": 0},
            ],
        )
    await give_feedback(db, settings, others[1], facts("f-back", sentiment="positive", csat=5, days_ago=3))

    r = await client.get("/v1/outreach/report", headers=work.as_("mgr-gn"))
    assert r.status_code == 200, r.text
    (row,) = r.json()["rows"]
    assert row["store_id"] == GANGNAM and row["list_kind"] == "low_satisfaction"
    assert (row["assigned"], row["attempted"], row["reached"]) == (4, 3, 2)
    assert row["contact_rate"] == 0.5
    assert (row["came_back_reached"], row["revisit_rate_reached"]) == (1, 0.5)
    assert (row["not_reached"], row["came_back_not_reached"], row["revisit_rate_not_reached"]) == (2, 1, 0.5)
    assert row["still_open"] == 2  # the two who have not come back, 30-day windows not over
    # Busan's manager sees none of it.
    busan = await client.get("/v1/outreach/report", headers=work.as_("mgr-bs"))
    assert busan.status_code == 200 and busan.json()["rows"] == []


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def test_subject_access_shows_the_outreach_and_erasure_clears_its_notes(work: Outreach) -> None:
    client, admin = work.profile.client, work.profile.admin
    assignment = (await work.assign("mgr-gn")).json()
    note = "김민수님이 다음 주 화요일에 다시 오신다고 함"
    recorded = await client.post(
        f"/v1/outreach/assignments/{assignment['id']}/contacts",
        json={"channel": "phone", "outcome": "reached", "note": note},
        headers=work.as_("lead-gn"),
    )
    assert recorded.status_code == 201
    export = await client.get(f"/v1/customers/{work.gangnam_customer}/export", headers=admin)
    assert export.status_code == 200
    (held,) = export.json()["outreach"]
    assert held["id"] == assignment["id"] and held["contacts"][0]["note"] == note

    assert (await client.delete(f"/v1/customers/{work.gangnam_customer}", headers=admin)).status_code == 200
    async with work.profile.database.session() as session:
        notes = list(
            await session.scalars(OutreachContact.__table__.select().with_only_columns(OutreachContact.note))
        )
    assert notes == [""]  # the contact stays as a statistic, what staff wrote of the person does not


async def test_with_notify_unreachable_an_assignment_is_503_and_nothing_is_written(
    databases: DatabaseFactory,
) -> None:
    # A port nothing listens on: the directory cannot be asked.
    async with open_profile(
        databases, notify_grpc_target=f"127.0.0.1:{free_port()}", grpc_timeout_seconds=1
    ) as p:
        customer = await customer_with(p.database, p.settings, loyalty_id="L-down")
        await give_feedback(p.database, p.settings, customer, facts("f-down", csat=1))
        token = issue_token(
            Principal("mgr-gn", "store_manager", (GANGNAM,), None), secret=p.settings.jwt_secret, ttl=60
        )
        body = {
            "customer_id": customer,
            "list_kind": "low_satisfaction",
            "store_id": GANGNAM,
            "assignee_id": "lead-gn",
        }
        response = await p.client.post(
            "/v1/outreach/assignments", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(response, 503)
        assert await p.count(OutreachAssignment) == 0


async def test_the_list_export_shows_who_works_each_customer_and_the_last_contact(work: Outreach) -> None:
    """The outreach list's CSV (#20 §4) carries the assignment columns: the assignee, when
    assigned, the status and the last contact's channel, outcome and time (UTC); the contact's
    note (here with a phone number) never reaches the file; a customer nobody works has blanks."""
    client = work.profile.client
    created = await work.assign("mgr-gn")
    assert created.status_code == 201, created.text
    note = "010-9876-5432 로 다시 연락"
    contact = await client.post(
        f"/v1/outreach/assignments/{created.json()['id']}/contacts",
        json={"channel": "sms", "outcome": "reached", "note": note},
        headers=work.as_("lead-gn"),
    )
    assert contact.status_code == 201, contact.text
    last = contact.json()["last_contact"]

    exported = await client.get(
        "/v1/customers", params={"signal": "low_satisfaction", "format": "csv"}, headers=work.as_("mgr-gn")
    )
    assert exported.status_code == 200, exported.text
    text = exported.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    (row,) = rows  # the Gangnam manager's list: their store's customer only
    assert row["customer_id"] == work.gangnam_customer
    assert {k: row[k] for k in ASSIGNMENT_COLUMNS} == {
        "assignee_id": "lead-gn",
        "assignee_name": "Name lead-gn",
        "assigned_at": _utc(created.json()["assigned_at"]),
        "outreach_status": "done",
        "last_contact_channel": "sms",
        "last_contact_outcome": "reached",
        "last_contact_at": _utc(last["at"]),
    }
    assert note not in text and "9876" not in text

    # Busan's manager exports Busan's customer, whom nobody works: blank assignment columns.
    busan = await client.get(
        "/v1/customers", params={"signal": "low_satisfaction", "format": "csv"}, headers=work.as_("mgr-bs")
    )
    (other,) = list(csv.DictReader(io.StringIO(busan.content.decode("utf-8-sig"))))
    assert other["customer_id"] == work.busan_customer
    assert [other[k] for k in ASSIGNMENT_COLUMNS] == [""] * len(ASSIGNMENT_COLUMNS)


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


ASSIGNMENT_COLUMNS = (
    "assignee_id",
    "assignee_name",
    "assigned_at",
    "outreach_status",
    "last_contact_channel",
    "last_contact_outcome",
    "last_contact_at",
)


async def test_the_report_reads_its_period_as_the_feedback_service_does(work: Outreach) -> None:
    """`from`/`to` are an ISO date (midnight UTC) or a date-time with an offset, as on feedback's
    lists and analytics (`voc_platform.http.query_instant`); a number was taken for epoch
    seconds (`?to=0.5` was 1970) and a bare date was refused for want of an offset."""
    client = work.profile.client
    bad = await client.get("/v1/outreach/report?to=0.5", headers=work.as_("mgr-gn"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.to", bad.text
    naive = await client.get("/v1/outreach/report?from=2026-12-01T09:00:00", headers=work.as_("mgr-gn"))
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.from", naive.text
    dated = await client.get("/v1/outreach/report?from=2026-12-01&to=2026-12-08", headers=work.as_("mgr-gn"))
    assert dated.status_code == 200, dated.text
    midnight = [dt.datetime(2026, 12, day, tzinfo=dt.UTC).timestamp() for day in (1, 8)]
    assert [dated.json()["from"], dated.json()["to"]] == midnight
    backwards = await client.get(
        "/v1/outreach/report?from=2026-12-08&to=2026-12-01T00:00:00%2B09:00", headers=work.as_("mgr-gn")
    )
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "query.to"


async def test_the_grpc_report_takes_the_period_rest_takes(rpc: Grpc) -> None:
    """Bounds outside the years 0001-9999 (what REST's `from`/`to` can name) are INVALID_ARGUMENT:
    int64's extremes were UNKNOWN, the reply echoing 2**63-1 ms rounded past int64. Those within
    are echoed to the millisecond (1234.567 s * 1000 was truncated to ...566)."""

    async def report(**kw: Any) -> profile_pb2.GetOutreachReportResponse:
        request = profile_pb2.GetOutreachReportRequest(every_store=True, **kw)
        response: profile_pb2.GetOutreachReportResponse = await rpc.stub.GetOutreachReport(request)
        return response

    earliest, latest = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01, 9999-12-31 (UTC)
    for bounds in (
        {"from_ms": -(2**63), "to_ms": 2**63 - 1},
        {"from_ms": earliest - 1},
        {"to_ms": latest + 2},
        {"from_ms": 2_000, "to_ms": 1_000},
    ):
        with pytest.raises(aio.AioRpcError) as err:
            await report(**bounds)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bounds
    whole = await report(from_ms=earliest, to_ms=latest)
    assert (whole.from_ms, whole.to_ms, list(whole.rows)) == (earliest, latest, [])
    exact = await report(from_ms=1_234_567, to_ms=1_700_000_000_123)
    assert (exact.from_ms, exact.to_ms) == (1_234_567, 1_700_000_000_123)
    # REST refuses the same instants, naming the parameter (an offset reached past year 0001).
    client, admin = rpc.profile.client, rpc.profile.admin
    past = await client.get(
        "/v1/outreach/report", params={"from": "0001-01-01T00:00:00+05:00"}, headers=admin
    )
    assert assert_problem(past, 422)["errors"][0]["field"] == "query.from"
    ok = await client.get(
        "/v1/outreach/report", params={"from": "0001-01-01", "to": "9999-12-31T23:59:59Z"}, headers=admin
    )
    assert ok.status_code == 200, ok.text
