"""Notify's counters as its code calls them (the whole way, with real processes, is in
tests/e2e/test_metrics.py): labels stay within their fixed sets."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.support.metrics import Scrape
from voc_notify import metrics
from voc_platform.metrics import REGISTRY


def scrape() -> Scrape:
    return Scrape(generate_latest(REGISTRY).decode())


def test_alert_outcomes_count_within_their_label_sets() -> None:
    before = scrape()
    metrics.alert_written(priority="urgent", merged=False, degraded=("profile_unavailable",))
    metrics.alert_written(priority="made-up", merged=False)
    metrics.alert_written(priority="urgent", merged=True, degraded=("actions_unavailable", "unknown"))
    metrics.pushed(["accepted", "gone", "retry", "rejected", "something-else"])
    metrics.escalated(["ack", "resolve", "other"])
    metrics.acknowledged(created_at=100.0, acknowledged_at=160.0)
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("voc_alerts_created_total", priority="urgent") == 1
    assert delta("voc_alerts_created_total", priority="other") == 1
    assert delta("voc_alerts_merged_total") == 1
    assert delta("voc_alerts_degraded_total", reason="profile_unavailable") == 1
    assert delta("voc_alerts_degraded_total", reason="actions_unavailable") == 1
    assert delta("voc_alerts_degraded_total") == 2
    assert delta("voc_push_deliveries_total") == 4
    assert delta("voc_alerts_escalated_total") == 2
    assert delta("voc_alert_time_to_acknowledge_seconds_sum") == 60
    assert "made-up" not in after.text and "something-else" not in after.text
