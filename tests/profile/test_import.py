"""Bulk import of customers and visits: streamed CSV / JSON Lines, idempotent upserts, per-row
errors with line numbers while valid rows are kept, and whole-file refusals with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from tests.profile.conftest import TEST_SETTINGS, Profile, assert_problem
from voc_platform.http import BULK_BODY_BYTES
from voc_platform.ids import uuid7
from voc_profile import importer
from voc_profile.models import AuditEntry, Customer, Identifier, Visit
from voc_profile.schemas import CustomerIn
from voc_profile.settings import Settings as ProfileSettings

CSV_HEADER = "loyalty_id,phone,email,name,tier,lifetime_value,preferred_language,contact_consent\n"


def customers_csv(n: int, start: int = 0) -> str:
    rows = [
        f"L-{i:05d},010-{3000 + i // 10000:04d}-{i % 10000:04d},c{i}@example.com,"
        f"고객{i},silver,{i * 1000},ko,true\n"
        for i in range(start, start + n)
    ]
    return CSV_HEADER + "".join(rows)


async def chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


async def test_csv_import_is_streamed_batched_and_idempotent(profile: Profile) -> None:
    body = customers_csv(120).encode()
    first = await profile.client.post(
        "/v1/customers:import",
        headers={**profile.admin, "Content-Type": "text/csv"},
        content=chunks(body),  # chunked, no Content-Length: the server reads it incrementally
    )
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["rows"] == 120 and report["created"] == 120 and report["updated"] == 0
    assert report["failed"] == 0 and report["errors"] == []
    assert await profile.count(Customer) == 120 and await profile.count(Identifier) == 360

    again = await profile.client.post(
        "/v1/customers:import", headers={**profile.admin, "Content-Type": "text/csv"}, content=body
    )
    assert again.json()["created"] == 0 and again.json()["updated"] == 120
    assert await profile.count(Customer) == 120

    # An update by another identifier of the same person changes only the given fields.
    change = "email,tier\nc7@example.com,vip\n"
    updated = await profile.client.post(
        "/v1/customers:import?format=csv", headers=profile.admin, content=change
    )
    assert updated.json()["updated"] == 1
    listed = (await profile.client.get("/v1/customers?signal=vip", headers=profile.admin)).json()["customers"]
    assert [(c["name"], c["tier"], c["lifetime_value"]) for c in listed] == [("고객7", "vip", 7000.0)]


async def test_bad_rows_are_reported_by_line_and_valid_rows_kept(profile: Profile) -> None:
    csv_text = (
        CSV_HEADER
        + "L-1,010-1111-2222,a@example.com,김가나,gold,100,ko,true\n"  # line 2: fine
        + "L-2,12,b@example.com,이다라,gold,100,ko,true\n"  # line 3: phone
        + "L-3,,,박마바,platinum,100,ko,true\n"  # line 4: tier
        + ",,,무식별,basic,0,ko,false\n"  # line 5: no identifier
        + "L-1,010-1111-2222,a@example.com,김가나,gold,100,ko,true\n"  # line 6: duplicate of 2
        + "L-6,010-1111-3333,f@example.com\n"  # line 7: too few fields
        + "L-7,,g@example,최사아,basic,-5,ko,maybe\n"  # line 8: e-mail
        + '"L-8",,"h@example.com","Jane ""JJ"" Doe",vip,5,en,no\n'  # line 9: fine (quoted)
    )
    response = await profile.client.post(
        "/v1/customers:import", headers={**profile.admin, "Content-Type": "text/csv"}, content=csv_text
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 8 and report["created"] == 2
    assert report["failed"] == 5 and report["duplicates"] == 1
    by_line = {e["line"]: e for e in report["errors"]}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert by_line[3]["field"] == "phone"
    assert by_line[4]["field"] == "tier"
    assert by_line[5]["field"] == "identifiers"
    assert "duplicate of line 2" in by_line[6]["message"]
    assert "expected 8 fields" in by_line[7]["message"]
    assert by_line[8]["field"] in ("email", "lifetime_value", "contact_consent")
    assert await profile.count(Customer) == 2


async def test_json_lines_import_and_duplicates_across_batches(profile: Profile) -> None:
    lines = [
        orjson.dumps({"loyalty_id": f"J-{i}", "name": f"Customer {i}", "tier": "basic"}) for i in range(60)
    ]
    lines.insert(55, orjson.dumps({"loyalty_id": "J-3", "name": "again"}))  # a later batch (size 50)
    lines.insert(10, b"{not json")
    lines.insert(11, b"[1, 2]")
    lines.insert(12, orjson.dumps({"loyalty_id": "J-x", "shoe_size": 42}))
    response = await profile.client.post(
        "/v1/customers:import",
        headers={**profile.admin, "Content-Type": "application/x-ndjson"},
        content=b"\n".join(lines) + b"\n",
    )
    report = response.json()
    assert report["created"] == 60 and report["duplicates"] == 1 and report["failed"] == 3
    messages = {e["line"]: e["message"] for e in report["errors"]}
    assert "not valid JSON" in messages[11] and "JSON object" in messages[12]
    assert "duplicate" in messages[59]
    assert await profile.count(Customer) == 60


async def test_whole_file_refusals_write_nothing(profile: Profile) -> None:
    headers = {**profile.admin, "Content-Type": "text/csv"}
    too_big = customers_csv(2000).encode()
    assert len(too_big) > profile.settings.max_import_bytes
    assert_problem(await profile.client.post("/v1/customers:import", headers=headers, content=too_big), 413)
    # Streamed without a length: refused once the limit is crossed, still before any row.
    assert_problem(
        await profile.client.post("/v1/customers:import", headers=headers, content=chunks(too_big)), 413
    )
    unknown = assert_problem(
        await profile.client.post(
            "/v1/customers:import", headers=headers, content="loyalty_id,shoe\nL-1,42\n"
        ),
        422,
    )
    assert unknown["errors"][0]["field"] == "shoe"
    assert_problem(await profile.client.post("/v1/customers:import", headers=headers, content=b""), 422)
    assert_problem(
        await profile.client.post("/v1/customers:import", headers=headers, content=b"loyalty_id\n\xff\xfe\n"),
        400,
    )
    assert_problem(
        await profile.client.post(
            "/v1/customers:import", headers={**profile.admin, "Content-Type": "application/pdf"}, content=b"x"
        ),
        415,
    )
    assert_problem(await profile.client.post("/v1/customers:import", content=b"x"), 401)
    assert await profile.count(Customer) == 0 and await profile.count(Identifier) == 0
    # Other calls keep the 64 KiB limit; the CRM batch its 4 MiB.
    assert_problem(
        await profile.client.post("/v1/visits", headers=profile.admin, content=b"x" * (65 * 1024)), 413
    )
    assert_problem(
        await profile.client.post(
            "/v1/customers", headers=profile.admin, content=b"x" * (BULK_BODY_BYTES + 1)
        ),
        413,
    )


async def test_visits_import_resolves_customers_and_is_idempotent(profile: Profile) -> None:
    await profile.client.post(
        "/v1/customers:import",
        headers={**profile.admin, "Content-Type": "text/csv"},
        content=customers_csv(3),
    )
    visits = (
        "loyalty_id,phone,store_id,visited_at,amount\n"
        "L-00000,,store-gangnam,2025-03-01T12:30:00+09:00,15000\n"
        ",010-3000-0001,store-hongdae,1740800000,9000\n"
        "L-00000,,store-gangnam,2025-03-01T12:30:00+09:00,15000\n"  # duplicate of line 2
        "L-99999,,store-gangnam,2025-03-01T12:30:00+09:00,1\n"  # unknown customer
        "L-00002,,store-gangnam,2025-03-01 12:30,1\n"  # no time zone
        "L-00002,,,2025-03-01T12:30:00Z,1\n"  # no store
        "L-00002,,store-gangnam,1e20,1\n"  # a time no date can hold: every reader of it failed
        "L-00002,,store-gangnam,0001-01-01T00:00:00+14:00,1\n"  # before datetime.min in UTC
        "L-00002,,store-gangnam,nan,1\n"
    )
    headers = {**profile.admin, "Content-Type": "text/csv"}
    report = (await profile.client.post("/v1/visits:import", headers=headers, content=visits)).json()
    assert report["inserted"] == 2 and report["duplicates"] == 1 and report["failed"] == 6
    assert {e["line"] for e in report["errors"]} == {4, 5, 6, 7, 8, 9, 10}
    assert {e["message"] for e in report["errors"] if e["line"] >= 8} == {
        "visited_at is in the future",
        "visited_at is before 2000-01-01",
        "visited_at is not a time",
    }
    again = (await profile.client.post("/v1/visits:import", headers=headers, content=visits)).json()
    assert again["inserted"] == 0 and again["unchanged"] == 2
    assert await profile.count(Visit) == 2
    audit = (await profile.client.get("/v1/audit", headers=profile.admin)).json()["entries"]
    assert [e["action"] for e in audit[:2]] == ["import_visits", "import_visits"]
    assert await profile.count(AuditEntry) >= 3


async def test_concurrent_imports_of_one_file_count_each_row_once(profile: Profile) -> None:
    """Four imports of the same file at once: on PostgreSQL a batch that lost the race rolled
    back and was redone row by row, and its report counted the rows twice (created 200 and
    updated 200 of 200 rows). Each report now counts each row once."""
    headers = {**profile.admin, "Content-Type": "text/csv"}
    body = customers_csv(200, start=70_000)
    answers = await asyncio.gather(
        *(profile.client.post("/v1/customers:import", headers=headers, content=body) for _ in range(4))
    )
    for answer in answers:
        report = answer.json()
        assert answer.status_code == 200, report
        assert report["created"] + report["updated"] + report["failed"] + report["duplicates"] == 200, report
    assert sum(a.json()["created"] for a in answers) == 200
    assert await profile.count(Customer) >= 200


async def test_concurrent_visit_imports_count_each_visit_once(profile: Profile) -> None:
    """A visit another import committed meanwhile is not one this import inserted (PostgreSQL:
    the table was counted before and after, and a concurrent commit landed in between)."""
    headers = {**profile.admin, "Content-Type": "text/csv"}
    await profile.client.post(
        "/v1/customers:import", headers=headers, content=customers_csv(40, start=80_000)
    )
    visits = "loyalty_id,store_id,visited_at,amount\n" + "".join(
        f"L-{80_000 + i:05d},store-gangnam,2025-03-01T12:{i:02d}:00+09:00,1000\n" for i in range(40)
    )
    answers = await asyncio.gather(
        *(profile.client.post("/v1/visits:import", headers=headers, content=visits) for _ in range(4))
    )
    reports = [a.json() for a in answers]
    assert all(a.status_code == 200 for a in answers), reports
    assert all(r["inserted"] + r["unchanged"] == 40 for r in reports), reports
    assert sum(r["inserted"] for r in reports) == 40, reports


async def test_the_row_by_row_redo_counts_a_repeated_row_as_a_duplicate(profile: Profile) -> None:
    """A batch that lost a race is redone row by row; that redo counted a row repeating an
    earlier row of the file as "updated". It now applies the batch's rules to each row."""
    settings = ProfileSettings(**TEST_SETTINGS)
    report = importer.ImportReport(import_id=uuid7(), kind="customers")
    rows = [
        importer._customer_row(2, CustomerIn(loyalty_id="L-90001", name="first"), settings),
        importer._customer_row(3, CustomerIn(loyalty_id="L-90001", name="again"), settings),
        importer._customer_row(4, CustomerIn(loyalty_id="L-90002", email="b@example.com"), settings),
        importer._customer_row(5, CustomerIn(email="b@example.com", tier="vip"), settings),
    ]
    await importer._write_customer_rows(profile.database, rows, report)
    assert (report.created, report.updated, report.duplicates, report.failed) == (2, 0, 2, 0)
    assert [(e.line, e.message) for e in report.errors] == [
        (3, "duplicate of an earlier row of this file (same customer)"),
        (5, "duplicate of an earlier row of this file (same customer)"),
    ]
    assert await profile.count(Customer) == 2


async def test_a_visit_row_says_what_is_wrong_with_its_time_and_amount(profile: Profile) -> None:
    """Python's own "offset must be a timedelta strictly between ..." was the message of an
    offset of +25:00; a JSON `true` was read as 1.0 and refused as "before 2000-01-01"; a NaN or
    infinite amount as "less than or equal to 1000000000000"."""
    await profile.client.post(
        "/v1/customers:import",
        headers={**profile.admin, "Content-Type": "text/csv"},
        content=customers_csv(1),
    )
    lines = [
        {"loyalty_id": "L-00000", "store_id": "store-gangnam", "visited_at": "2025-03-01T12:30:00+25:00"},
        {"loyalty_id": "L-00000", "store_id": "store-gangnam", "visited_at": "yesterday"},
        {"loyalty_id": "L-00000", "store_id": "store-gangnam", "visited_at": True},
        {"loyalty_id": "L-00000", "store_id": "store-gangnam", "visited_at": 1740800000, "amount": "NaN"},
        {"loyalty_id": "L-00000", "store_id": "store-gangnam", "visited_at": 1740800000, "amount": "inf"},
    ]
    report = (
        await profile.client.post(
            "/v1/visits:import",
            headers={**profile.admin, "Content-Type": "application/x-ndjson"},
            content=b"\n".join(orjson.dumps(line) for line in lines) + b"\n",
        )
    ).json()
    assert report["failed"] == 5 and report["inserted"] == 0, report
    messages = {e["line"]: e["message"] for e in report["errors"]}
    for line in (1, 2):
        assert "not an ISO 8601 date-time with a valid offset" in messages[line], messages
    assert "timedelta" not in messages[1]
    assert "must be a string or a number, not a boolean" in messages[3], messages
    assert "finite number" in messages[4] and "finite number" in messages[5], messages
    assert await profile.count(Visit) == 0
