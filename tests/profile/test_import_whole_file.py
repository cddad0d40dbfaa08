"""Whole-file problems found part-way through a large upload — bytes that are not UTF-8, a CSV
the reader cannot get through (an unclosed quote, a field over the csv limit), a JSON line over
the line limit — answer problem+json naming the line, and not one row is written, even with
thousands of valid rows (many batches) before the problem. Per-row problems stay per-row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from tests.conftest import DatabaseFactory
from tests.profile.conftest import Profile, assert_problem, open_profile
from tests.profile.test_import import CSV_HEADER, chunks, customers_csv
from voc_profile.models import AuditEntry, Customer, Identifier, Visit
from voc_profile.uploads import MAX_LINE_CHARS

VISITS_HEADER = "loyalty_id,store_id,visited_at,amount\n"


@pytest.fixture
async def big(databases: DatabaseFactory) -> AsyncIterator[Profile]:
    """Batches of 50 rows as in the other import tests, but room for files of a few MB."""
    async with open_profile(databases, max_import_bytes=8 * 1024 * 1024) as opened:
        yield opened


def visits_csv(n: int) -> str:
    return VISITS_HEADER + "".join(
        f"L-{i % 3:05d},store-{i % 7},{1_740_000_000 + i * 60},{1000 + i}\n" for i in range(n)
    )


async def post(profile: Profile, kind: str, body: bytes, content_type: str = "text/csv") -> httpx.Response:
    response = await profile.client.post(
        f"/v1/{kind}:import",
        headers={**profile.admin, "Content-Type": content_type},
        content=chunks(body, 16 * 1024),  # streamed: the problem arrives after many chunks
    )
    assert response.status_code != 500, response.text
    return response


def report_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rejected(response: httpx.Response, *, line: int, says: str) -> dict[str, Any]:
    """A 400 problem+json naming the line in its detail, `line` and `errors`."""
    body = assert_problem(response, 400)
    assert body["title"] == "Bad request"
    assert f"Line {line}:" in body["detail"] and "nothing was imported" in body["detail"]
    assert body["line"] == line
    [error] = body["errors"]
    assert error["line"] == line and error["field"] is None and says in error["message"], body
    return body


async def test_bad_utf8_after_3000_valid_rows_writes_nothing(big: Profile) -> None:
    good = customers_csv(3000).encode()  # header + 3,000 rows: line 3,002 is the bad one
    bad_row = "L-99999,010-9999-0000,bad@example.com,깨진".encode() + b"\xff\xfe,basic,0,ko,true\n"
    body = good + bad_row + customers_csv(500, start=5000).split("\n", 1)[1].encode()
    assert len(good) > 200 * 1024  # far past the first batches and the spool's memory part
    problem = rejected(await post(big, "customers", body), line=3002, says="not UTF-8 text")
    at = len(good) + bad_row.index(b"\xff")
    assert f"byte {at} of the file" in problem["errors"][0]["message"]
    assert await big.count(Customer) == 0 and await big.count(Identifier) == 0
    assert await big.count(AuditEntry) == 0

    # A character cut off by the end of the file, and bad bytes in JSON Lines, the same way.
    cut = good + "L-99999,,x@example.com,고".encode()[:-1]
    rejected(await post(big, "customers", cut), line=3002, says="not UTF-8")
    lines = b"".join(orjson.dumps({"loyalty_id": f"J-{i}"}) + b"\n" for i in range(3000))
    rejected(
        await post(big, "customers", lines + b'{"loyalty_id": "J-\xc3("}\n', "application/x-ndjson"),
        line=3001,
        says="not UTF-8",
    )
    assert await big.count(Customer) == 0 and await big.count(AuditEntry) == 0

    # The same file without the bad row imports whole: the refusals left nothing behind.
    report = report_of(await post(big, "customers", good))
    assert report["created"] == 3000 and report["failed"] == 0
    assert await big.count(Customer) == 3000


async def test_a_field_over_the_csv_limit_is_refused_not_a_500(big: Profile) -> None:
    huge = "x" * 200_000
    body = (customers_csv(150) + f"L-HUGE,,huge@example.com,{huge},basic,0,ko,true\n").encode()
    body += customers_csv(100, start=500).split("\n", 1)[1].encode()
    rejected(await post(big, "customers", body), line=152, says="longer than 131072 characters")
    assert await big.count(Customer) == 0 and await big.count(AuditEntry) == 0

    # Visits: the same refusal, and the visits before it are not written either.
    assert report_of(await post(big, "customers", customers_csv(3).encode()))["created"] == 3
    visits = visits_csv(200) + f"L-00001,store-{huge},1740000000,1\n"
    rejected(await post(big, "visits", visits.encode()), line=202, says="longer than 131072")
    assert await big.count(Visit) == 0 and await big.count(Customer) == 3


async def test_an_unclosed_quote_is_refused_naming_its_line(big: Profile) -> None:
    body = (
        customers_csv(120)
        + 'L-Q,010-5555-6666,"q@example.com,김따옴,gold,100,ko,true\n'  # line 122: never closed
        + customers_csv(200, start=1000).split("\n", 1)[1]
    ).encode()
    rejected(await post(big, "customers", body), line=122, says="never closed")
    assert await big.count(Customer) == 0 and await big.count(AuditEntry) == 0

    # A quote closed in the middle of a field cannot be read either (strict CSV).
    stray = customers_csv(60) + '"L-S"x,,s@example.com,S,basic,0,ko,true\n'
    rejected(await post(big, "customers", stray.encode()), line=62, says="not readable as CSV")
    assert await big.count(Customer) == 0

    assert report_of(await post(big, "customers", customers_csv(3).encode()))["created"] == 3
    visits = visits_csv(80) + 'L-00002,"store-open,1740000000,1\n' + visits_csv(80).split("\n", 1)[1]
    rejected(await post(big, "visits", visits.encode()), line=82, says="never closed")
    assert await big.count(Visit) == 0


async def test_quoted_multiline_fields_still_import_and_report_their_first_line(big: Profile) -> None:
    body = (
        CSV_HEADER
        + 'L-1,010-1111-2222,a@example.com,"김\n가나",gold,100,ko,true\n'  # lines 2-3
        + 'L-2,12,b@example.com,"이\n다\n라",gold,100,ko,true\n'  # lines 4-6: bad phone
        + "L-3,,c@example.com,박,gold,100,ko,true\n"  # line 7
    ).encode()
    report = report_of(await post(big, "customers", body))
    assert report["created"] == 2 and report["failed"] == 1
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(4, "phone")]
    async with big.database.session() as session:
        names = set(await session.scalars(select(Customer.name)))
    assert names == {"김\n가나", "박"}


async def test_json_lines_bad_lines_stay_per_row_but_an_oversized_line_refuses_the_file(big: Profile) -> None:
    lines = [orjson.dumps({"loyalty_id": f"J-{i}", "name": f"고객 {i}"}) for i in range(3000)]
    lines[1500] = b'{"loyalty_id": "J-broken", "name": '  # cut off: one bad row, as documented
    body = b"\n".join(lines) + b"\n"
    report = report_of(await post(big, "customers", body, "application/x-ndjson"))
    assert report["created"] == 2999 and report["failed"] == 1
    assert [e["line"] for e in report["errors"]] == [1501]
    assert "not valid JSON" in report["errors"][0]["message"]
    assert await big.count(Customer) == 2999

    # A line over the limit is not read into memory: the whole file is refused before a write.
    long_line = orjson.dumps({"loyalty_id": "J-long", "name": "x" * MAX_LINE_CHARS})
    fresh = [orjson.dumps({"loyalty_id": f"K-{i}"}) for i in range(2000)]
    body = b"\n".join([*fresh[:1000], long_line, *fresh[1000:]]) + b"\n"
    rejected(await post(big, "customers", body, "application/x-ndjson"), line=1001, says="longer than 131072")
    assert await big.count(Customer) == 2999
    # Exactly at the limit (with CR LF line ends) is still a line, reported per row.
    at_limit = b'{"loyalty_id": "J-edge", "name": "' + b"y" * (MAX_LINE_CHARS - 36) + b'"}'
    assert len(at_limit) == MAX_LINE_CHARS
    crlf = b"\r\n".join([at_limit, b'{"loyalty_id": "J-after"}']) + b"\r\n"
    edge = report_of(await post(big, "customers", crlf, "application/x-ndjson"))
    assert edge["rows"] == 2 and edge["created"] == 1
    assert [(e["line"], e["field"]) for e in edge["errors"]] == [(1, "name")]  # over 100 characters
