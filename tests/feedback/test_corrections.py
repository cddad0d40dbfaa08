"""Corrections of the classifier (#17), against the real feedback process: a staff member or
manager of the item's store corrects its sentiment and/or category; the item, its case, the
analytics, the list filters and the CSV export read the corrected labels at once; the correction
is audited and published; bad input and other stores are refused with nothing written; the
corrections come back as labelled examples (NDJSON) for training."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import nats
import orjson
import pytest
from grpc import aio

from tests.feedback.conftest import INTERNAL_TOKEN, FeedbackService, problem, run_async
from voc.events.v1 import events_pb2
from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from voc_platform.identity import Principal, issue_token
from voc_platform.settings import DEV_JWT_SECRET

STORE = "corrections-store"
OTHER_STORE = "corrections-other"
TEXT = "The waiter ignored us for twenty minutes and the soup was cold"


def token(role: str, *stores: str, staff_id: str | None = None) -> dict[str, str]:
    """A staff token as notify's login issues it (the test process shares the dev secret)."""
    principal = Principal(staff_id=staff_id or f"{role}-1", role=role, store_ids=stores, area_id=None)
    return {"Authorization": f"Bearer {issue_token(principal, secret=DEV_JWT_SECRET, ttl=600)}"}


def submit(service: FeedbackService, key: dict[str, Any], text: str | None = TEXT, **extra: Any) -> str:
    body: dict[str, Any] = {"store_id": STORE, "channel": "kiosk", **extra}
    if text is not None:
        body["text"] = text
    response = service.post(key, body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def correct(service: FeedbackService, feedback_id: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{service.url}/v1/feedback/{feedback_id}/corrections", json=body, headers=headers)


def corrections_of(service: FeedbackService, feedback_id: str) -> int:
    return int(
        service.scalar(
            "SELECT count(*) FROM classification_corrections WHERE feedback_id = :id", id=feedback_id
        )
    )


@pytest.fixture(scope="module")
def key(feedback_service: FeedbackService) -> dict[str, Any]:
    return feedback_service.new_key(STORE, OTHER_STORE, name="corrections app")


def test_a_correction_changes_the_case_the_reports_and_is_audited_and_published(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    service = feedback_service
    feedback_id = submit(service, key, ratings={"csat": 1})
    before = service.get(feedback_id)
    assert before["correction"] is None
    original_category = before["classification"]["category"]
    assert original_category != "facility"  # the test corrects it to something else
    params = {"store_id": STORE}
    analytics_before = httpx.get(f"{service.url}/v1/analytics", params=params, headers=service.admin).json()

    answer = correct(service, feedback_id, {"category": "facility"}, token("staff", STORE, staff_id="s-7"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["category"] == "facility" and body["sentiment"] == before["classification"]["sentiment"]
    assert body["correction"]["by"] == "s-7" and body["correction"]["sentiment"] is None

    after = service.get(feedback_id)
    assert after["classification"]["category"] == "facility"
    assert after["classification"]["model_version"] == before["classification"]["model_version"]
    correction = after["correction"]
    assert correction["category"] == "facility" and correction["previous_category"] == original_category
    assert (
        correction["by"] == "s-7" and correction["model_version"] == before["classification"]["model_version"]
    )
    step = next(t for t in after["timeline"] if t["kind"] == "classification_corrected")
    assert step["actor"] == "staff:s-7" and step["detail"]["previous_category"] == original_category

    # The reports read the corrected label at once: analytics, open cases, the list filter, the export.
    analytics = httpx.get(f"{service.url}/v1/analytics", params=params, headers=service.admin).json()
    mix_before, mix = analytics_before["category_mix"], analytics["category_mix"]
    assert mix.get("facility", 0) == mix_before.get("facility", 0) + 1
    assert mix.get(original_category, 0) == mix_before.get(original_category, 0) - 1
    cases = httpx.get(f"{service.url}/v1/analytics/open-cases", params=params, headers=service.admin).json()
    assert next(c for c in cases["cases"] if c["id"] == feedback_id)["category"] == "facility"
    listed = httpx.get(
        f"{service.url}/v1/feedback", params={**params, "category": "facility"}, headers=service.admin
    ).json()
    assert feedback_id in {item["id"] for item in listed["items"]}
    unlisted = httpx.get(
        f"{service.url}/v1/feedback", params={**params, "category": original_category}, headers=service.admin
    ).json()
    assert feedback_id not in {item["id"] for item in unlisted["items"]}
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    export = httpx.get(
        f"{service.url}/v1/feedback/export.csv", params={**params, **period}, headers=service.admin
    )
    assert export.status_code == 200, export.text
    csv = export.text
    assert next(line for line in csv.splitlines() if feedback_id in line).count("facility") == 1

    audit = httpx.get(
        f"{service.url}/v1/audit", params={"target": f"feedback:{feedback_id}"}, headers=service.admin
    ).json()
    entry = next(e for e in audit["entries"] if e["action"] == "feedback.classification_corrected")
    assert entry["actor"] == "staff:s-7" and entry["actor_role"] == "staff"

    event = run_async(lambda: corrected_event(service.nats_url, feedback_id))
    assert event.category == "facility" and event.category_corrected and not event.sentiment_corrected
    assert event.previous_category == original_category and event.corrected_by == "s-7"
    assert event.store_id == STORE


async def corrected_event(nats_url: str, feedback_id: str) -> events_pb2.ClassificationCorrected:
    """The `voc.feedback.corrected` event of this item, read from the stream."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("voc.feedback.corrected", ordered_consumer=True)
        async with asyncio.timeout(10):
            while True:
                msg = await sub.next_msg(timeout=10)
                event = events_pb2.ClassificationCorrected.FromString(msg.data)
                if event.feedback_id == feedback_id:
                    return event
    finally:
        await nc.close()


BAD_BODIES = [
    ({"category": "not_a_category"}, "body.category"),
    ({"sentiment": "furious"}, "body.sentiment"),
    ({"sentiment": "negative", "category": "teleportation"}, "body.category"),
    ({}, "body"),
    ({"sentiment": None, "category": None}, "body"),
    ({"category": "wait_time", "extra": 1}, "body.extra"),
    ({"category": 5}, "body.category"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_corrections_are_422_and_write_nothing(
    feedback_service: FeedbackService, key: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    feedback_id = submit(feedback_service, key)
    before = feedback_service.get(feedback_id)["classification"]
    found = problem(correct(feedback_service, feedback_id, body, token("store_manager", STORE)), 422)
    assert field in {e["field"] for e in found.get("errors", [])}, found
    assert corrections_of(feedback_service, feedback_id) == 0
    after = feedback_service.get(feedback_id)
    assert after["classification"] == before and after["correction"] is None
    assert not [t for t in after["timeline"] if t["kind"] == "classification_corrected"]


def test_other_stores_and_other_callers_write_nothing(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    feedback_id = submit(feedback_service, key)
    body = {"category": "wait_time", "sentiment": "negative"}
    # Staff of another store: as if the item did not exist.
    problem(correct(feedback_service, feedback_id, body, token("shift_lead", OTHER_STORE)), 404)
    problem(correct(feedback_service, feedback_id, body, token("store_manager", OTHER_STORE)), 404)
    problem(correct(feedback_service, "no-such-item", body, token("staff", STORE)), 404)
    # The analyst reads and never changes; a store key is no person; no token is no one.
    problem(correct(feedback_service, feedback_id, body, token("analyst")), 403)
    problem(correct(feedback_service, feedback_id, body, key["headers"]), 401)
    problem(correct(feedback_service, feedback_id, body, {}), 401)
    assert corrections_of(feedback_service, feedback_id) == 0
    assert feedback_service.get(feedback_id)["correction"] is None
    # A manager of the store, and head office (every store), may.
    assert correct(feedback_service, feedback_id, body, token("store_manager", STORE)).status_code == 200
    assert (
        correct(feedback_service, feedback_id, {"sentiment": "neutral"}, token("cx_admin")).status_code == 200
    )
    assert corrections_of(feedback_service, feedback_id) == 2


def labelled(service: FeedbackService, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{service.url}/v1/classifier/corrections", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def test_the_latest_correction_wins_and_becomes_a_labelled_example(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    service = feedback_service
    feedback_id = submit(service, key, text="음식이 너무 늦게 나왔어요", language="ko")
    first = correct(
        service, feedback_id, {"sentiment": "neutral"}, token("staff", STORE, staff_id="s-1")
    ).json()
    since = first["correction"]["at"]
    second = correct(
        service, feedback_id, {"category": "wait_time"}, token("shift_lead", STORE, staff_id="s-2")
    ).json()
    # The second correction corrected the category only: the sentiment stays the first one's.
    assert second["sentiment"] == "neutral" and second["category"] == "wait_time"
    shown = service.get(feedback_id)
    assert shown["correction"]["by"] == "s-2" and shown["correction"]["previous_sentiment"] == "neutral"
    assert shown["classification"]["sentiment"] == "neutral"
    # An item with no text (a rating alone) teaches nothing: corrected, but not exported.
    silent = submit(service, key, text=None, ratings={"csat": 2})
    assert correct(service, silent, {"sentiment": "negative"}, token("staff", STORE)).status_code == 200

    examples = labelled(service, service.admin, since=since)
    ours = [e for e in examples if e["feedback_id"] == feedback_id]
    assert ours == [
        {
            "feedback_id": feedback_id,
            "text": "음식이 너무 늦게 나왔어요",
            "language": "ko",
            "sentiment": "neutral",
            "category": "wait_time",
            "corrected_at": ours[0]["corrected_at"],
            "corrected_by": "s-2",
            "model_version": shown["classification"]["model_version"],
        }
    ]
    # The second correction's time (to the second; the first one's could be the second before).
    assert ours[0]["corrected_at"][:19] == second["correction"]["at"][:19]
    assert silent not in {e["feedback_id"] for e in examples}
    # cx_admin too; a later `since` leaves it out; a bad one is 422.
    assert feedback_id in {e["feedback_id"] for e in labelled(service, token("cx_admin"))}
    assert feedback_id not in {e["feedback_id"] for e in labelled(service, service.admin, since="2100-01-01")}
    url = f"{service.url}/v1/classifier/corrections"
    problem(httpx.get(url, params={"since": "yesterday"}, headers=service.admin), 422)
    problem(httpx.get(url, params={"snice": "2020-01-01"}, headers=service.admin), 422)
    # Texts leave for training with head office only.
    for role in ("staff", "store_manager", "analyst"):
        problem(httpx.get(url, headers=token(role, STORE)), 403)
    problem(httpx.get(url, headers=key["headers"]), 401)


def test_staff_correct_over_grpc_with_their_own_token(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """What notify relays for the staff app: the same rule, the staff member's own token."""
    feedback_id = submit(feedback_service, key)

    async def call(
        access_token: str, category: str
    ) -> feedback_pb2.CorrectClassificationResponse | grpc.StatusCode:
        async with aio.insecure_channel(feedback_service.grpc_target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            try:
                return await stub.CorrectClassification(
                    feedback_pb2.CorrectClassificationRequest(
                        feedback_id=feedback_id, access_token=access_token, category=category
                    ),
                    metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),),
                )
            except aio.AioRpcError as exc:
                return exc.code()

    def bearer(headers: dict[str, str]) -> str:
        return headers["Authorization"].removeprefix("Bearer ")

    other = bearer(token("staff", OTHER_STORE))
    assert run_async(lambda: call(other, "cleanliness")) == grpc.StatusCode.NOT_FOUND
    own = bearer(token("staff", STORE, staff_id="s-grpc"))
    assert run_async(lambda: call(own, "teleportation")) == grpc.StatusCode.INVALID_ARGUMENT
    assert run_async(lambda: call("not-a-token", "cleanliness")) == grpc.StatusCode.UNAUTHENTICATED
    assert corrections_of(feedback_service, feedback_id) == 0
    answer = run_async(lambda: call(own, "cleanliness"))
    assert isinstance(answer, feedback_pb2.CorrectClassificationResponse)
    assert answer.category == "cleanliness" and answer.corrected_by == "s-grpc"
    assert feedback_service.get(feedback_id)["correction"]["by"] == "s-grpc"


def test_a_repeated_correction_is_answered_as_it_was_and_recorded_once(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    """The staff app replays a correction it queued offline (#23 with #17); when its first try
    reached the server after all, the repeat is answered with the correction in force, at its
    own time, and nothing is recorded, audited or published again. Anyone else's, or other
    labels, is a new correction."""
    service = feedback_service
    feedback_id = submit(service, key, text="Cold soup, slow service, and the floor was sticky")
    lead = token("shift_lead", STORE, staff_id="s-replay")
    first = correct(service, feedback_id, {"category": "cleanliness"}, lead)
    assert first.status_code == 200, first.text
    again = correct(service, feedback_id, {"category": "cleanliness"}, lead)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert corrections_of(service, feedback_id) == 1
    timeline = [t["kind"] for t in service.get(feedback_id)["timeline"]]
    assert timeline.count("classification_corrected") == 1
    # Another person's identical correction, or other labels from the same person: recorded.
    other = correct(service, feedback_id, {"category": "cleanliness"}, token("staff", STORE, staff_id="s-2"))
    assert other.status_code == 200 and other.json()["correction"]["by"] == "s-2"
    assert corrections_of(service, feedback_id) == 2
    more = correct(service, feedback_id, {"category": "cleanliness", "sentiment": "neutral"}, lead)
    assert more.status_code == 200 and more.json()["correction"]["at"] > first.json()["correction"]["at"]
    assert corrections_of(service, feedback_id) == 3
