"""The feedback service's `/metrics` (the real process, its database and nats-server): intake
counted by channel and refusals by reason, exactly; gRPC calls by method and code; the
classifier, the consumers' lag and the outbox backlog present."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from grpc import aio

from tests.feedback.conftest import INTERNAL_TOKEN, FeedbackService, run_async, wait_until
from tests.support.metrics import Scrape
from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc

STORE = "metrics-store"
ACCEPTED = "voc_feedback_accepted_total"
REFUSED = "voc_feedback_refused_total"


@pytest.fixture(scope="module")
def key(feedback_service: FeedbackService) -> dict[str, Any]:
    httpx.put(
        f"{feedback_service.url}/v1/admin/stores",
        json=[{"id": STORE, "name": "메트릭점", "area_id": "area-metrics"}],
        headers=feedback_service.admin,
    )
    return feedback_service.new_key(STORE, name="metrics app")


def test_intake_counters_move_by_exactly_what_was_posted(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    before = Scrape.of(feedback_service.url)
    body = {"store_id": STORE, "text": "국이 식어서 나왔어요", "ratings": {"csat": 2}}
    for channel in ("kiosk", "kiosk", "survey"):
        assert feedback_service.post(key, {**body, "channel": channel}).status_code == 202
    replayed = {**body, "channel": "app"}
    assert feedback_service.post(key, replayed, **{"Idempotency-Key": "m-1"}).status_code == 202
    assert feedback_service.post(key, replayed, **{"Idempotency-Key": "m-1"}).status_code == 202
    url = f"{feedback_service.url}/v1/feedback"
    assert httpx.post(url, json={**body, "channel": "kiosk"}).status_code == 401
    assert (
        feedback_service.post(key, {**body, "channel": "kiosk", "store_id": "elsewhere"}).status_code == 403
    )
    assert feedback_service.post(key, {**body, "channel": "fax"}).status_code == 422
    big = httpx.post(
        url, content=b"x" * (65 * 1024), headers={**key["headers"], "Content-Type": "application/json"}
    )
    assert big.status_code == 413
    after = Scrape.of(feedback_service.url)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(ACCEPTED, channel="kiosk") == 2
    assert delta(ACCEPTED, channel="survey") == 1
    assert delta(ACCEPTED, channel="app") == 1  # the replay is not a second item
    assert delta(ACCEPTED) == 4
    assert delta("voc_feedback_idempotent_replays_total") == 1
    for reason in ("unauthenticated", "forbidden", "invalid", "too_large"):
        assert delta(REFUSED, reason=reason) == 1, reason
    assert delta(REFUSED) == 4
    route = {"method": "POST", "route": "/v1/feedback"}
    assert delta("voc_http_requests_total", status="202", **route) == 5
    assert delta("voc_http_requests_total", status="413", **route) == 1
    assert delta("voc_classification_duration_seconds_count") == 5  # the replay is classified too
    # Every label value is bounded: no key, id or text leaks into the scrape.
    assert key["api_key"] not in after.text and "국이" not in after.text


def test_rate_limited_submissions_are_counted_as_refused(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    hasty = feedback_service.new_key(STORE, name="hasty metrics kiosk")
    before = Scrape.of(feedback_service.url)
    body = {"store_id": STORE, "channel": "kiosk", "ratings": {"csat": 4}}
    with httpx.Client(headers=hasty["headers"]) as client:
        answers = [client.post(f"{feedback_service.url}/v1/feedback", json=body) for _ in range(60)]
    limited = sum(a.status_code == 429 for a in answers)
    accepted = sum(a.status_code == 202 for a in answers)
    assert limited and limited + accepted == 60
    after = Scrape.of(feedback_service.url)
    assert (
        after.value(REFUSED, reason="rate_limited") - before.value(REFUSED, reason="rate_limited") == limited
    )
    assert after.value(ACCEPTED, channel="kiosk") - before.value(ACCEPTED, channel="kiosk") == accepted


def test_grpc_calls_are_counted_by_method_and_code(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    answer = feedback_service.post(key, {"store_id": STORE, "channel": "web", "text": "fine"})
    feedback_id = answer.json()["id"]
    before = Scrape.of(feedback_service.url)

    async def calls() -> None:
        async with aio.insecure_channel(feedback_service.grpc_target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            metadata = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
            await stub.GetFeedback(
                feedback_pb2.GetFeedbackRequest(feedback_id=feedback_id), metadata=metadata
            )
            await stub.GetFeedback(
                feedback_pb2.GetFeedbackRequest(feedback_id=feedback_id), metadata=metadata
            )
            for request, meta in (
                (feedback_pb2.GetFeedbackRequest(feedback_id="no-such-item"), metadata),
                (feedback_pb2.GetFeedbackRequest(feedback_id=feedback_id), ()),
            ):
                with pytest.raises(aio.AioRpcError):
                    await stub.GetFeedback(request, metadata=meta)

    run_async(calls)
    after = Scrape.of(feedback_service.url)
    method = "voc.feedback.v1.FeedbackService/GetFeedback"

    def delta(code: str) -> float:
        name = "voc_grpc_server_handled_total"
        return after.value(name, method=method, code=code) - before.value(name, method=method, code=code)

    assert delta("OK") == 2
    assert delta("NOT_FOUND") == 1
    assert delta("UNAUTHENTICATED") == 1
    count = "voc_grpc_server_handling_seconds_count"
    assert after.value(count, method=method) - before.value(count, method=method) == 4


def test_consumers_outbox_and_bus_are_read_at_scrape_time(
    feedback_service: FeedbackService, key: dict[str, Any]
) -> None:
    assert feedback_service.post(key, {"store_id": STORE, "channel": "web", "text": "ok"}).status_code == 202

    def published() -> Scrape | None:
        scrape = Scrape.of(feedback_service.url)
        return scrape if scrape.value("voc_outbox_pending_events") == 0 else None

    scrape = wait_until(published)
    assert scrape.value("voc_events_published_total", subject="voc.feedback.received") >= 1
    assert scrape.value("voc_outbox_oldest_pending_age_seconds") == 0
    assert scrape.value("voc_nats_connected") == 1
    assert scrape.has("voc_consumer_pending_messages", consumer="feedback-case")
    assert scrape.has("voc_consumer_ack_pending_messages", consumer="feedback-case")
    assert scrape.has("voc_dlq_messages")
    assert scrape.has("voc_db_pool_checked_out_connections")
    assert scrape.value("voc_metrics_collector_errors_total") == 0
