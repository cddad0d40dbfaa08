"""`voc_platform.metrics` in a real app: requests counted by route template (never the raw
path) and status, refusals before routing under their route, a status hook, the optional access
log without paths or tokens, and `/metrics` answering 200 when a collector or a source fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from tests.conftest import DatabaseFactory
from tests.support.metrics import Scrape
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_cli.supervisor import free_port
from voc_feedback import __main__ as feedback_main
from voc_feedback.models import outbox_table
from voc_feedback.settings import Settings
from voc_platform import metrics
from voc_platform.grpc import client_channel
from voc_platform.http import create_app
from voc_platform.runtime import ServiceRuntime


class Body(BaseModel):
    text: str


def build() -> tuple[FastAPI, list[int]]:
    app = create_app(title="metrics", service="metrics-test")
    seen: list[int] = []
    metrics.watch_status(app, "POST", "/things/{thing_id}", seen.append)

    @app.get("/things/{thing_id}")
    async def read(thing_id: str, phone: str | None = None) -> dict[str, str]:
        return {"id": thing_id}

    @app.post("/things/{thing_id}")
    async def write(thing_id: str, body: Body) -> dict[str, str]:
        return {"id": thing_id, "text": body.text}

    return app, seen


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def test_requests_are_counted_by_route_template_and_status() -> None:
    app, seen = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        before = await scrape(client)
        for n in range(3):
            assert (await client.get(f"/things/id-{n}")).status_code == 200
        assert (await client.post("/things/secret-id", json={"text": 1})).status_code == 422
        too_big = "x" * (70 * 1024)
        assert (await client.post("/things/other-id", json={"text": too_big})).status_code == 413
        assert (await client.get("/no/such/customer-42")).status_code == 404
        assert (await client.request("BREW", "/things/x")).status_code == 405
        after = await scrape(client)

    def delta(**labels: str) -> float:
        return after.value("voc_http_requests_total", **labels) - before.value(
            "voc_http_requests_total", **labels
        )

    assert delta(method="GET", route="/things/{thing_id}", status="200") == 3
    assert delta(method="POST", route="/things/{thing_id}", status="422") == 1
    # The body limit refuses before routing; still counted under the route it was meant for.
    assert delta(method="POST", route="/things/{thing_id}", status="413") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert delta(method="other", route="/things/{thing_id}", status="405") == 1
    assert (
        after.value("voc_http_request_duration_seconds_count", method="GET", route="/things/{thing_id}") >= 3
    )
    # No raw path, id or method a client made up ever becomes a label value.
    for text in ("id-0", "secret-id", "customer-42", "BREW"):
        assert text not in after.text
    assert seen == [422, 413]
    assert after.value("voc_service_info", service="metrics-test") == 1


class Broken:
    def collect(self) -> Iterable[metrics.Metric]:
        raise RuntimeError("collector broke")


async def test_a_failing_collector_or_source_is_skipped_and_counted() -> None:
    app, _ = build()

    async def failing() -> list[metrics.Metric]:
        raise RuntimeError("source broke")

    async def slow() -> list[metrics.Metric]:
        await asyncio.sleep(30)
        return []

    async def fine() -> list[metrics.Metric]:
        family = metrics.gauge_family("voc_test_fine", "A source that works.")
        family.add_metric([], 7.0)
        return [family]

    app.state.metric_sources = [
        metrics.Source("test_failing", failing),
        metrics.Source("test_slow", slow),
        metrics.Source("test_fine", fine),
    ]
    broken = Broken()
    metrics.REGISTRY.register(broken)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            first = await scrape(client)
            second = await scrape(client)
    finally:
        metrics.REGISTRY.unregister(broken)
    assert first.value("voc_test_fine") == 7
    for name in ("Broken", "test_failing", "test_slow"):
        errors = "voc_metrics_collector_errors_total"
        assert second.value(errors, collector=name) == first.value(errors, collector=name) + 1 >= 1
    assert first.has("voc_http_requests_total")  # the rest of the registry is still there


async def test_access_log_is_structured_without_paths_or_tokens(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = build()
    app.state.http_metrics.access_log = True
    caplog.set_level(logging.INFO, logger="voc.access")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get(
            "/things/L-1001?phone=010-1234-5678", headers={"Authorization": "Bearer vocsk_secret"}
        )
    records = [r for r in caplog.records if r.name == "voc.access"]
    assert len(records) == 1
    fields = records[0].fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["route"] == "/things/{thing_id}" and fields["status"] == 200
    assert fields["duration_ms"] >= 0
    line = records[0].getMessage() + repr(fields)
    for secret in ("L-1001", "010-1234", "vocsk_secret"):
        assert secret not in line


async def test_access_log_is_off_by_default(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = build()
    caplog.set_level(logging.INFO, logger="voc.access")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/things/a")
    assert not [r for r in caplog.records if r.name == "voc.access"]


async def test_metrics_answer_while_nats_is_down_and_show_the_outbox_waiting(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """The feedback service with its bus down: /metrics still answers 200 without errors, says
    NATS is not connected, and shows the accepted event waiting in the outbox, aging."""
    settings = Settings(
        http_port=free_port(),
        grpc_port=free_port(),
        database_url=databases.url("metrics_nats_down"),
        data_dir=tmp_path,
        nats_url=f"nats://127.0.0.1:{free_port()}",
        admin_token="admin-metrics-nats-down",
    )
    runtime = ServiceRuntime(settings, migrations_dir=feedback_main.MIGRATIONS, outbox=outbox_table)
    await runtime.start(feedback_main.build(runtime))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=10) as client:
            stores = await client.put(  # a key names only stores in the directory
                "/v1/admin/stores",
                json=[{"id": "s1", "name": "s1"}],
                headers={"Authorization": "Bearer admin-metrics-nats-down"},
            )
            assert stores.status_code == 200, stores.text
            key = (
                await client.post(
                    "/v1/admin/api-keys",
                    json={"name": "t", "store_ids": ["s1"]},
                    headers={"Authorization": "Bearer admin-metrics-nats-down"},
                )
            ).json()
            answer = await client.post(
                "/v1/feedback",
                headers={"Authorization": f"Bearer {key['api_key']}"},
                json={"store_id": "s1", "channel": "sms", "text": "No one answered"},
            )
            assert answer.status_code == 202
            await asyncio.sleep(0.05)
            scraped = await scrape(client)
    finally:
        await runtime.stop()
    assert scraped.value("voc_nats_connected") == 0
    assert scraped.value("voc_outbox_pending_events") == 1
    assert scraped.value("voc_outbox_oldest_pending_age_seconds") > 0
    assert not scraped.has("voc_consumer_pending_messages")
    assert scraped.value("voc_metrics_collector_errors_total", collector="nats") == 0
    assert scraped.value("voc_metrics_collector_errors_total", collector="outbox") == 0
    assert scraped.value("voc_feedback_accepted_total", channel="sms") >= 1


async def test_grpc_client_calls_are_counted_by_method_and_code() -> None:
    """A call to a service that is not there: counted under the stub's method as UNAVAILABLE."""
    method = "voc.profile.v1.ProfileService/ResolveCustomer"
    before = Scrape((await metrics.exposition()).decode())
    channel = client_channel(f"127.0.0.1:{free_port()}", token="t", timeout=2.0)
    try:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.ResolveCustomer(profile_pb2.ResolveCustomerRequest())
    finally:
        await channel.close()
    after = Scrape((await metrics.exposition()).decode())
    code = failed.value.code().name
    name = "voc_grpc_client_handled_total"
    assert after.value(name, method=method, code=code) - before.value(name, method=method, code=code) == 1
    count = "voc_grpc_client_handling_seconds_count"
    assert after.value(count, method=method) - before.value(count, method=method) == 1
