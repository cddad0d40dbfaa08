"""`/metrics` on every service of the running system (processes, nats-server, databases): one
feedback's way counted end to end, intake -> event -> alert -> gRPC lookups -> push -> ack."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.support.metrics import Scrape
from tests.support.system import login, post_feedback, wait_for
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import SERVICES

LEAD = "minji@gangnam.demo"


def scrape_all(system: RunningSystem) -> dict[str, Scrape]:
    return {name: Scrape.of(system.url(name)) for name in SERVICES}


def grpc_calls(scrape: Scrape, service: str) -> float:
    prefix = f"voc.{service}.v1."
    return sum(
        value
        for name, labels, value in scrape.samples
        if name == "voc_grpc_server_handled_total"
        and labels["method"].startswith(prefix)
        and labels["code"] == "OK"
    )


@pytest.fixture(scope="module")
def phone(running_system: RunningSystem, push_emulator: PushEmulator) -> dict[str, Any]:
    headers = login(running_system, LEAD)
    subscription = push_emulator.new_subscription(label=f"{LEAD} metrics")
    response = httpx.post(f"{running_system.url('notify')}/v1/devices", json=subscription, headers=headers)
    assert response.status_code == 201, response.text
    return {"headers": headers, "id": push_emulator.subscription_id(subscription)}


def test_every_service_serves_metrics(running_system: RunningSystem) -> None:
    for name, scrape in scrape_all(running_system).items():
        assert scrape.value("voc_service_info", service=f"voc-{name}") == 1, name
        assert scrape.has("voc_http_requests_total"), name
        assert scrape.value("voc_nats_connected") == 1, name
        assert scrape.has("voc_db_pool_checked_out_connections"), name
        assert scrape.value("voc_metrics_collector_errors_total") == 0, name
        assert scrape.has("process_resident_memory_bytes"), name


def test_one_feedback_is_counted_on_its_whole_way(
    running_system: RunningSystem, push_emulator: PushEmulator, phone: dict[str, Any]
) -> None:
    before = scrape_all(running_system)
    response = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "kiosk",
            "text": "화장실 바닥이 너무 더러워요. 청소가 안 되어 있네요.",
            "ratings": {"csat": 1},
            "customer": {"loyalty_id": f"L-MET-{uuid.uuid4().hex[:8]}"},
        },
    )
    assert response.status_code == 202, response.text
    feedback_id = response.json()["id"]
    push = wait_for(
        lambda: next(
            (
                p
                for p in push_emulator.received(subscription_id=phone["id"])
                if p.json.get("feedback_id") == feedback_id
            ),
            None,
        ),
        timeout=20,
    )
    ack = httpx.post(
        f"{running_system.url('notify')}/v1/alerts/{push.json['alert_id']}/ack", headers=phone["headers"]
    )
    assert ack.status_code == 200, ack.text

    def settled() -> dict[str, Scrape] | None:
        now = scrape_all(running_system)
        moved = now["notify"].value("voc_push_deliveries_total", result="accepted") > before["notify"].value(
            "voc_push_deliveries_total", result="accepted"
        )
        return now if moved else None

    after = wait_for(settled)

    def delta(service: str, name: str, **labels: str) -> float:
        return after[service].value(name, **labels) - before[service].value(name, **labels)

    assert delta("feedback", "voc_feedback_accepted_total", channel="kiosk") == 1
    assert delta("feedback", "voc_events_published_total", subject="voc.feedback.received") >= 1
    assert (
        delta(
            "notify", "voc_events_consumed_total", consumer="notify-alerts", subject="voc.feedback.received"
        )
        >= 1
    )
    assert delta("profile", "voc_events_consumed_total", consumer="profile-history") >= 1
    assert delta("notify", "voc_alerts_created_total") >= 1
    assert delta("notify", "voc_alerts_acknowledged_total") == 1
    assert delta("notify", "voc_alert_time_to_acknowledge_seconds_count") == 1
    assert grpc_calls(after["profile"], "profile") > grpc_calls(before["profile"], "profile")
    assert grpc_calls(after["actions"], "actions") > grpc_calls(before["actions"], "actions")
    client_ok = sum(
        value
        for name, labels, value in after["notify"].samples
        if name == "voc_grpc_client_handled_total" and labels["code"] == "OK"
    )
    assert client_ok >= 2  # notify's lookups at profile and actions, counted by the caller too
    assert after["notify"].has("voc_escalation_timers_due")
    # Measured while notify runs (webhooks yield to pages over 5 ms); a test system idles well under 1 s.
    assert 0 <= after["notify"].value("voc_event_loop_lag_seconds") < 1
    assert after["notify"].has("voc_webhook_yields_total")
    assert after["notify"].value("voc_webhook_due_lag_seconds") >= 0
    assert after["notify"].has("voc_webhook_pending_deliveries")
    assert after["feedback"].value("voc_outbox_oldest_pending_age_seconds") < 60
