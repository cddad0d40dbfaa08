"""`GET /v1/feedback` filters and cursor pagination, the CSV export, store scoping, and the bad
query cases answered with problem+json."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.feedback.conftest import FeedbackService, problem
from tests.feedback.test_corrections import token
from tests.support.system import wait_for

ITEMS = [
    ("list-a1", "kiosk", "직원이 너무 불친절했어요", 1),
    ("list-a1", "app", "Waited 45 minutes for my order", 2),
    ("list-a2", "call_center", "화장실이 더러워요", 2),
    ("list-a2", "survey", '=HYPERLINK("http://evil") great food, loved it', 5),
    ("list-b1", "kiosk", "음식이 정말 맛있어요 최고!", 5),
]


@pytest.fixture(scope="module")
def seeded(feedback_service: FeedbackService) -> dict[str, Any]:
    admin = feedback_service.admin
    stores = [
        {"id": "list-a1", "name": "A1", "area_id": "area-list-a"},
        {"id": "list-a2", "name": "A2", "area_id": "area-list-a"},
        {"id": "list-b1", "name": "B1", "area_id": "area-list-b"},
    ]
    assert httpx.put(f"{feedback_service.url}/v1/admin/stores", json=stores, headers=admin).status_code == 200
    key = feedback_service.new_key("list-a1", "list-a2", "list-b1", name="lister")
    scoped = feedback_service.new_key("list-a1", name="a1 only")
    ids = []
    for store, channel, text, csat in ITEMS:
        r = feedback_service.post(
            key, {"store_id": store, "channel": channel, "text": text, "ratings": {"csat": csat}}
        )
        assert r.status_code == 202
        ids.append(r.json()["id"])
    return {"key": key, "scoped": scoped, "ids": ids}


def listing(service: FeedbackService, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{service.url}/v1/feedback", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_filters(feedback_service: FeedbackService, seeded: dict[str, Any]) -> None:
    h = feedback_service.admin
    ids = seeded["ids"]

    def found(**params: Any) -> set[str]:
        return {i["id"] for i in listing(feedback_service, h, limit=500, **params)["items"]} & set(ids)

    assert found(store_id="list-a2") == {ids[2], ids[3]}
    assert found(area_id="area-list-a") == set(ids[:4])
    assert found(area_id="area-list-b") == {ids[4]}
    assert found(channel="kiosk") == {ids[0], ids[4]}
    assert found(category="staff_attitude") == {ids[0]}
    assert found(sentiment="negative") == {ids[0], ids[1], ids[2]}
    assert found(status="received") == set(ids)
    now = datetime.now(UTC)
    assert found(**{"from": (now - timedelta(hours=1)).isoformat()}) == set(ids)
    assert found(**{"to": (now - timedelta(hours=1)).isoformat()}) == set()


def test_cursor_pagination_newest_first(feedback_service: FeedbackService, seeded: dict[str, Any]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"area_id": "area-list-a", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = listing(feedback_service, feedback_service.admin, **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(seeded["ids"][:4]))


def test_a_store_key_sees_only_its_stores(feedback_service: FeedbackService, seeded: dict[str, Any]) -> None:
    items = listing(feedback_service, seeded["scoped"]["headers"], limit=500)["items"]
    assert {i["store_id"] for i in items} == {"list-a1"}
    other = seeded["ids"][4]
    problem(
        httpx.get(f"{feedback_service.url}/v1/feedback/{other}", headers=seeded["scoped"]["headers"]), 404
    )
    # Its own stores' area filters; another area is refused, not answered empty (#20: an empty
    # answer tells as much as a count), on the list, the export and the analytics alike.
    headers = seeded["scoped"]["headers"]
    own = listing(feedback_service, headers, area_id="area-list-a", limit=500)["items"]
    assert {i["store_id"] for i in own} == {"list-a1"}
    now = datetime.now(UTC)
    period = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    for path in ("/v1/feedback", "/v1/feedback/export.csv", "/v1/analytics"):
        params = {"area_id": "area-list-b", **period}
        refused = problem(httpx.get(f"{feedback_service.url}{path}", params=params, headers=headers), 403)
        assert refused["errors"][0]["field"] == "query.area_id", path


def test_csv_export(feedback_service: FeedbackService, seeded: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    response = httpx.get(
        f"{feedback_service.url}/v1/feedback/export.csv",
        params={
            "from": (now - timedelta(days=1)).date().isoformat(),
            "to": (now + timedelta(days=1)).date().isoformat(),
            "area_id": "area-list-a",
        },
        headers=feedback_service.admin,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert {r["id"] for r in rows} == set(seeded["ids"][:4])
    by_id = {r["id"]: r for r in rows}
    assert by_id[seeded["ids"][0]]["text"] == "직원이 너무 불친절했어요"
    assert by_id[seeded["ids"][0]]["category"] == "staff_attitude"
    assert by_id[seeded["ids"][0]]["priority"] == ""  # not alerted yet (info once alerted: FYI)
    # A cell a spreadsheet would run as a formula is defused.
    assert by_id[seeded["ids"][3]]["text"].startswith("'=HYPERLINK")


def test_an_export_names_its_file_in_latin_1_whatever_the_separator(
    feedback_service: FeedbackService,
) -> None:
    """Found beside the fuzzer's export finding (#21): ISO 8601 as Python reads it takes any
    character between date and time, and the file name in Content-Disposition took the raw
    text; a header is latin-1, so a Korean separator was a 500."""
    response = httpx.get(
        f"{feedback_service.url}/v1/feedback/export.csv",
        params={"from": "20260101한0000+0000", "to": "2026-12-31"},
        headers=feedback_service.admin,
    )
    assert response.status_code == 200, response.text
    assert (
        response.headers["content-disposition"] == 'attachment; filename="feedback-20260101-2026-12-31.csv"'
    )


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/feedback", {"channel": "fax"}, "query.channel"),
        ("/v1/feedback", {"sentiment": "angry"}, "query.sentiment"),
        ("/v1/feedback", {"category": "weather"}, "query.category"),
        ("/v1/feedback", {"status": "lost"}, "query.status"),
        ("/v1/feedback", {"store_id": "a b"}, "query.store_id"),
        ("/v1/feedback", {"limit": 0}, "query.limit"),
        ("/v1/feedback", {"limit": 501}, "query.limit"),
        ("/v1/feedback", {"cursor": "!!!"}, "query.cursor"),
        ("/v1/feedback", {"from": "yesterday"}, "query.from"),
        ("/v1/feedback", {"from": "2026-11-01T09:00:00"}, "query.from"),
        ("/v1/feedback", {"from": "2026-11-02", "to": "2026-11-01"}, "query.to"),
        ("/v1/feedback", {"store": "list-a1"}, "query.store"),
        ("/v1/feedback/export.csv", {"from": "2026-01-01"}, "query.to"),
        # Found by the schema fuzzer (#21): empty ends passed the query and failed an assertion (500).
        ("/v1/feedback/export.csv", {"from": "", "to": ""}, "query.from"),
        ("/v1/feedback/export.csv", {"from": "2026-01-01", "to": ""}, "query.to"),
        ("/v1/feedback/export.csv", {"from": "2024-01-01", "to": "2026-01-01"}, "query.to"),
        ("/v1/analytics", {"tz": "Mars/Olympus"}, "query.tz"),
        # An area is a directory of the tz database (IsADirectoryError, a 500); a long name OSError.
        ("/v1/analytics", {"tz": "America"}, "query.tz"),
        ("/v1/analytics/targets", {"tz": "Pacific"}, "query.tz"),
        ("/v1/analytics/targets", {"tz": "Europe/" + "x" * 50}, "query.tz"),
        ("/v1/analytics", {"tz": "x" * 300}, "query.tz"),
        ("/v1/analytics", {"period": "week"}, "query.period"),
        ("/v1/analytics/open-cases", {"limit": 1000}, "query.limit"),
    ],
)
def test_bad_queries(
    feedback_service: FeedbackService, path: str, params: dict[str, Any], field: str
) -> None:
    answer = problem(
        httpx.get(f"{feedback_service.url}{path}", params=params, headers=feedback_service.admin), 422
    )
    assert field in {e["field"] for e in answer["errors"]}, answer


def test_reading_needs_a_key(feedback_service: FeedbackService) -> None:
    for path in ("/v1/feedback", "/v1/analytics", "/v1/analytics/open-cases", "/v1/feedback/x"):
        problem(httpx.get(f"{feedback_service.url}{path}"), 401)
        problem(httpx.get(f"{feedback_service.url}{path}", headers={"Authorization": "Bearer nope"}), 401)


def test_one_customers_items_for_a_subject_access_request(
    feedback_service: FeedbackService, seeded: dict[str, Any]
) -> None:
    """`customer_id` lists one person's items with their texts whole (the rest of a subject
    access export: profile keeps masked excerpts), within the reader's stores; the read is in the
    audit log under the customer. A reader without customer records may not single anyone out."""
    ids = seeded["ids"]
    for feedback_id in (ids[0], ids[2]):
        feedback_service.execute("UPDATE feedback SET customer_id = 'c-sar' WHERE id = :i", i=feedback_id)
    everything = listing(feedback_service, feedback_service.admin, customer_id="c-sar")["items"]
    assert {i["id"]: i["text"] for i in everything} == {ids[0]: ITEMS[0][2], ids[2]: ITEMS[2][2]}
    scoped = listing(feedback_service, seeded["scoped"]["headers"], customer_id="c-sar")["items"]
    assert [i["id"] for i in scoped] == [ids[0]]  # the a1 key: its own store's
    assert listing(feedback_service, feedback_service.admin, customer_id="nobody")["items"] == []
    refused = httpx.get(
        f"{feedback_service.url}/v1/feedback", params={"customer_id": "c-sar"}, headers=token("analyst")
    )
    assert problem(refused, 403)["errors"] == [
        {"field": "query.customer_id", "message": "needs customer records"}
    ]

    # Reads are audited through a buffer written each second (`voc_platform.audit`).
    def audited() -> set[str] | None:
        entries = httpx.get(
            f"{feedback_service.url}/v1/audit",
            params={"action": "feedback.list_customer"},
            headers=feedback_service.admin,
        ).json()["entries"]
        targets = {e["target"] for e in entries}
        return targets if {"customer:c-sar", "customer:nobody"} <= targets else None

    assert wait_for(audited, timeout=10) == {"customer:c-sar", "customer:nobody"}
