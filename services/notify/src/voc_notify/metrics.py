"""The notify service's own metrics (the platform's HTTP, gRPC, event and outbox metrics come
with every service): alerts created, merged, acknowledged, resolved and escalated, written
degraded, the time to acknowledge, pushes by result, follow-up messages to customers by channel
and outcome, the delivery watchdog's findings and fallback pages (#23), and the escalation timers
due (read at scrape time).

Web Push counts in `voc_push_deliveries_total`, webhook attempts in `voc_webhook_attempts_total`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from sqlalchemy import func, select

from voc_notify.models import EscalationTimer, WebhookDelivery, WebhookEndpoint
from voc_platform import metrics
from voc_platform.db import Database
from voc_platform.loop_lag import YieldGate

#: Alert priorities as labels; anything else is counted as "other".
PRIORITIES = ("urgent", "normal", "info")
#: The sender's results: accepted (201), gone (404/410: the device is removed), retry (429,
#: 5xx, timeout, network), rejected (any other refusal, a host not allowed, a redirect).
PUSH_RESULTS = ("accepted", "gone", "retry", "rejected")

ALERTS_CREATED = metrics.counter("voc_alerts_created_total", "Alerts created, by priority.", ["priority"])
ALERTS_MERGED = metrics.counter(
    "voc_alerts_merged_total", "Repeat complaints folded into an open alert instead of a new one."
)
ALERTS_ACKNOWLEDGED = metrics.counter(
    "voc_alerts_acknowledged_total", "Alerts acknowledged (explicitly, or by a resolve of an open alert)."
)
ALERTS_RESOLVED = metrics.counter("voc_alerts_resolved_total", "Alerts resolved.")
ALERTS_ESCALATED = metrics.counter(
    "voc_alerts_escalated_total",
    "Escalation timers fired: kind=ack pages the next roles, kind=resolve tells the manager.",
    ["kind"],
)
ALERTS_DEGRADED = metrics.counter(
    "voc_alerts_degraded_total",
    "Alerts written without an upstream's answer (the customer context or the plan fell back).",
    ["reason"],
)
TIME_TO_ACKNOWLEDGE = metrics.histogram(
    "voc_alert_time_to_acknowledge_seconds",
    "From an alert's creation to its acknowledgement.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
)
PUSHES = metrics.counter("voc_push_deliveries_total", "Web Push sends, by result.", ["result"])
FOLLOW_UPS = metrics.counter(
    "voc_follow_up_messages_total",
    "Follow-up messages to customers: each attempt or decision, by channel (email, sms, none) and "
    "outcome (sent, retrying, failed, not_sent, held).",
    ["channel", "outcome"],
)
FOLLOW_UP_REPORTS = metrics.counter(
    "voc_follow_up_reports_total",
    "Delivery reports of follow-up messages recorded (bounces, gateways' reports), by channel and "
    "outcome (delivered, undelivered); duplicates and reports of unknown messages are not counted.",
    ["channel", "outcome"],
)
WEBHOOKS = metrics.counter(
    "voc_webhook_attempts_total",
    "Webhook attempts, by result: ok (2xx) or failed (anything else).",
    ["result"],
)

WATCHDOG = metrics.counter(
    "voc_push_watchdog_total",
    "The delivery watchdog (#23), by step: overdue (an urgent push accepted and not shown in time, "
    "or failed), suspect (a device newly marked suspect), repushed (the page sent to the staff "
    "member's other devices).",
    ["step"],
)
FALLBACK_PAGES = metrics.counter(
    "voc_fallback_pages_total",
    "Pages sent through the fallback channel when no device showed an urgent push, by status "
    "(sent, failed, unavailable: no channel configured).",
    ["status"],
)
WATCHDOG_STEPS = ("overdue", "suspect", "repushed")
FALLBACK_STATUSES = ("sent", "failed", "unavailable")

_created = {p: ALERTS_CREATED.labels(p) for p in (*PRIORITIES, "other")}
_watchdog = {s: WATCHDOG.labels(s) for s in WATCHDOG_STEPS}
_fallbacks = {s: FALLBACK_PAGES.labels(s) for s in FALLBACK_STATUSES}
_pushes = {r: PUSHES.labels(r) for r in PUSH_RESULTS}
_webhooks = {r: WEBHOOKS.labels(r) for r in ("ok", "failed")}
_escalated = {k: ALERTS_ESCALATED.labels(k) for k in ("ack", "resolve")}
_degraded = {r: ALERTS_DEGRADED.labels(r) for r in ("profile_unavailable", "actions_unavailable")}


def follow_up(*, channel: str, outcome: str) -> None:
    FOLLOW_UPS.labels(channel or "none", outcome).inc()


def follow_up_report(*, channel: str, outcome: str) -> None:
    FOLLOW_UP_REPORTS.labels(channel or "none", outcome).inc()


def alert_written(*, priority: str, merged: bool, degraded: Iterable[str] = ()) -> None:
    if merged:
        ALERTS_MERGED.inc()
    else:
        _created.get(priority, _created["other"]).inc()
    for reason in degraded:
        child = _degraded.get(reason)
        if child is not None:
            child.inc()


def acknowledged(*, created_at: float, acknowledged_at: float | None) -> None:
    ALERTS_ACKNOWLEDGED.inc()
    if acknowledged_at is not None:
        TIME_TO_ACKNOWLEDGE.observe(max(0.0, acknowledged_at - created_at))


def resolved() -> None:
    ALERTS_RESOLVED.inc()


def escalated(kinds: Iterable[str]) -> None:
    for kind in kinds:
        child = _escalated.get(kind)
        if child is not None:
            child.inc()


def pushed(results: Iterable[str]) -> None:
    for result in results:
        child = _pushes.get(result)
        if child is not None:
            child.inc()


def watchdog_pass(*, overdue: int, suspect: int, repushed: int, fallbacks: Iterable[str]) -> None:
    """One watchdog pass: its counts, and the status of each fallback page it decided on."""
    for step, n in (("overdue", overdue), ("suspect", suspect), ("repushed", repushed)):
        if n:
            _watchdog[step].inc(n)
    for status in fallbacks:
        child = _fallbacks.get(status)
        if child is not None:
            child.inc()


def webhook_attempted(*, ok: bool) -> None:
    _webhooks["ok" if ok else "failed"].inc()


def timers_due_source(database: Database) -> metrics.Source:
    """`voc_escalation_timers_due`: pending timers whose time has come (the escalation worker
    fires them every second, so more than a handful for long means it is stuck or behind)."""

    async def collect() -> list[metrics.Metric]:
        query = select(func.count()).where(
            EscalationTimer.status == "pending", EscalationTimer.fire_at <= time.time()
        )
        async with database.session() as session:
            due = int(await session.scalar(query) or 0)
        family = metrics.gauge_family(
            "voc_escalation_timers_due", "Escalation timers due and not yet fired (should stay near 0)."
        )
        family.add_metric([], float(due))
        return [family]

    return metrics.Source("escalation_timers", collect)


def webhook_endpoints_source(database: Database) -> metrics.Source:
    """`voc_webhook_endpoints{status}`: registered webhook endpoints, active and disabled (an
    endpoint is disabled after 24 h of failures or a 410: someone should look)."""

    async def collect() -> list[metrics.Metric]:
        query = select(WebhookEndpoint.status, func.count()).group_by(WebhookEndpoint.status)
        async with database.session() as session:
            counts = {"active": 0, "disabled": 0} | {
                s: int(n) for s, n in (await session.execute(query)).all()
            }
        family = metrics.gauge_family(
            "voc_webhook_endpoints", "Outbound webhook endpoints by status (active, disabled).", ["status"]
        )
        for status, count in sorted(counts.items()):
            family.add_metric([status], float(count))
        return [family]

    return metrics.Source("webhook_endpoints", collect)


def webhook_backlog_source(database: Database, *, clock: Callable[[], float] = time.time) -> metrics.Source:
    """`voc_webhook_pending_deliveries`: deliveries no receiver has accepted yet (new, in flight or
    waiting to retry); `voc_webhook_due_lag_seconds`: how long the longest-waiting due delivery has
    been due, 0 when none waits. Webhooks yield to pages, so under load the lag grows and falls
    back once the load does; growing for many minutes means notify lacks capacity (#19)."""

    # One statement on the (status, next_attempt_at) index.
    query = select(func.count(), func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.status == "pending"
    )

    async def collect() -> list[metrics.Metric]:
        async with database.session() as session:
            count, earliest = (await session.execute(query)).one()
        backlog = metrics.gauge_family(
            "voc_webhook_pending_deliveries", "Webhook deliveries not yet accepted by their receiver."
        )
        backlog.add_metric([], float(count))
        lag = metrics.gauge_family(
            "voc_webhook_due_lag_seconds", "How long the longest-waiting due webhook delivery has waited."
        )
        lag.add_metric([], max(0.0, clock() - earliest) if earliest is not None else 0.0)
        return [backlog, lag]

    return metrics.Source("webhook_backlog", collect)


def webhook_gate_source(gate: YieldGate) -> metrics.Source:
    """`voc_event_loop_lag_seconds`: how late notify's event loop runs what is ready (smoothed;
    pages wait that long); `voc_webhook_yields_total`: how often webhook work waited for it (#19)."""

    async def collect() -> list[metrics.Metric]:
        lag = metrics.gauge_family(
            "voc_event_loop_lag_seconds", "Smoothed lateness of the event loop (pages wait this long)."
        )
        lag.add_metric([], gate.lag.seconds if gate.lag is not None else 0.0)
        yields = metrics.counter_family(
            "voc_webhook_yields", "Webhook passes and events that waited for the event loop (since start)."
        )
        yields.add_metric([], float(gate.waits))
        return [lag, yields]

    return metrics.Source("webhook_gate", collect)
