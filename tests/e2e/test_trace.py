"""One trace per feedback: REST request -> outbox -> NATS -> notify consumer -> both gRPC calls
-> push send. The four services run in this process here so an in-memory exporter sees every
span; in production each process exports over OTLP and the collector joins them the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import DatabaseFactory
from voc_actions import __main__ as actions_main
from voc_actions.models import outbox_table as actions_outbox
from voc_actions.settings import Settings as ActionsSettings
from voc_cli import demo
from voc_cli.nats import NatsServer
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import free_port
from voc_feedback import __main__ as feedback_main
from voc_feedback.models import outbox_table as feedback_outbox
from voc_feedback.settings import Settings as FeedbackSettings
from voc_notify import __main__ as notify_main
from voc_notify.models import outbox_table as notify_outbox
from voc_notify.settings import Settings as NotifySettings
from voc_platform import telemetry
from voc_platform.runtime import ServiceRuntime
from voc_profile import __main__ as profile_main
from voc_profile.models import outbox_table as profile_outbox
from voc_profile.settings import Settings as ProfileSettings

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
async def in_process_system(
    databases: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Any]]:
    telemetry.setup("voc-tests", processors=[SimpleSpanProcessor(EXPORTER)])
    data_dir: Path = tmp_path_factory.mktemp("inproc")
    # Its own nats-server: durable consumer names are per service, so sharing the session's
    # server with the process-based system would split this test's events between the two.
    nats_server = NatsServer(store_dir=data_dir / "nats", port=0, name="voc-trace")
    await asyncio.to_thread(nats_server.start)
    ports = {name: (free_port(), free_port()) for name in ("feedback", "profile", "actions", "notify")}
    common: dict[str, Any] = {
        "data_dir": data_dir,
        "nats_url": nats_server.url,
        "admin_token": "trace-admin-token",
        "internal_token": "trace-internal-token",
        **{f"{n}_grpc_target": f"127.0.0.1:{g}" for n, (_, g) in ports.items()},
    }
    specs = [
        ("profile", ProfileSettings, profile_main, profile_outbox),
        ("actions", ActionsSettings, actions_main, actions_outbox),
        ("feedback", FeedbackSettings, feedback_main, feedback_outbox),
        ("notify", NotifySettings, notify_main, notify_outbox),
    ]
    runtimes: list[ServiceRuntime] = []
    for name, settings_cls, module, outbox in specs:
        extra = {"push_allowed_hosts": "127.0.0.1:*"} if name == "notify" else {}
        settings = settings_cls(
            http_port=ports[name][0],
            grpc_port=ports[name][1],
            database_url=databases.url(f"trace_{name}"),
            **common,
            **extra,
        )
        runtime = ServiceRuntime(settings, migrations_dir=module.MIGRATIONS, outbox=outbox)
        await runtime.start(module.build(runtime))
        runtimes.append(runtime)
    for runtime in runtimes:
        await runtime.wait_bus_ready()
    urls = {n: f"http://127.0.0.1:{ports[n][0]}" for n in ("feedback", "profile", "actions", "notify")}
    creds = await asyncio.to_thread(
        demo.seed, urls=urls, admin_token="trace-admin-token", credentials_path=data_dir / "creds.json"
    )
    try:
        yield {"urls": urls, "creds": creds}
    finally:
        for runtime in reversed(runtimes):
            with contextlib.suppress(Exception):
                await runtime.stop()
        nats_server.stop()


async def test_one_trace_covers_rest_nats_grpc_and_push(
    in_process_system: dict[str, Any], push_emulator: PushEmulator
) -> None:
    urls, creds = in_process_system["urls"], in_process_system["creds"]
    lead = next(s for s in creds["staff"] if s["email"] == "minji@gangnam.demo")
    store = next(s for s in creds["stores"] if s["id"] == "store-gangnam")
    async with httpx.AsyncClient(timeout=10) as client:
        token = (
            await client.post(
                f"{urls['notify']}/v1/auth/login", json={"email": lead["email"], "password": lead["password"]}
            )
        ).json()["access_token"]
        subscription = push_emulator.new_subscription(label="trace")
        r = await client.post(
            f"{urls['notify']}/v1/devices", json=subscription, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201
        EXPORTER.clear()
        r = await client.post(
            f"{urls['feedback']}/v1/feedback",
            headers={"Authorization": f"Bearer {store['api_key']}"},
            json={
                "store_id": "store-gangnam",
                "channel": "app",
                "text": "The soup was cold and the staff ignored us.",
                "ratings": {"csat": 1},
                "customer": {"loyalty_id": "L-1004"},
            },
        )
        assert r.status_code == 202
        feedback_id = r.json()["id"]
    await push_emulator.wait_for(lambda p: p.json and p.json.get("feedback_id") == feedback_id, timeout=15)
    await asyncio.sleep(0.2)  # let the push span end and be exported
    spans = EXPORTER.get_finished_spans()
    roots = [s for s in spans if s.name == "POST /v1/feedback" and s.parent is None]
    assert len(roots) == 1, "the request starts exactly one trace"
    root = roots[0]
    trace_id = root.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = {(s.name, s.kind) for s in in_trace}
    expected = {
        ("POST /v1/feedback", SpanKind.SERVER),
        ("consume voc.feedback.received", SpanKind.CONSUMER),
        ("voc.profile.v1.ProfileService/GetCustomerContext", SpanKind.CLIENT),
        ("voc.profile.v1.ProfileService/GetCustomerContext", SpanKind.SERVER),
        ("voc.actions.v1.ActionsService/GetActionPlan", SpanKind.CLIENT),
        ("voc.actions.v1.ActionsService/GetActionPlan", SpanKind.SERVER),
        ("webpush send", SpanKind.CLIENT),
    }
    assert expected <= names, f"missing from the trace: {expected - names}"
    consumers = [s for s in in_trace if s.kind == SpanKind.CONSUMER]
    assert {s.attributes["messaging.consumer.group.name"] for s in consumers} >= {"notify-alerts"}
