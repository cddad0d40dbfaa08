"""`python -m voc_notify`: run the notify service."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from voc_notify import (
    api,
    corrections,
    erasure,
    events,
    follow_ups,
    grpc_server,
    metrics,
    patterns,
    suppressions,
    tombstones,
)
from voc_notify.channels.mail import MailSender, parse_smtp_url
from voc_notify.channels.sms import HttpGateway, SmsProvider
from voc_notify.clients import Upstreams
from voc_notify.fallback import MailChannel
from voc_notify.models import outbox_table
from voc_notify.patterns import PatternWatch
from voc_notify.settings import Settings
from voc_notify.stream import LIVE_SUBJECT, AlertBroker
from voc_notify.watchdog import DeliveryWatchdog
from voc_notify.webhooks import enqueue
from voc_notify.webhooks.dispatch import WebhookDispatcher
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.targets import WebhookTargets
from voc_notify.webpush import DEFAULT_PUSH_HOSTS, PushAllowlist, VapidKeys, WebPushSender
from voc_notify.workers import DeliveryWorker, EscalationWorker
from voc_platform import dbsync, taxonomy
from voc_platform.db import Database
from voc_platform.loop_lag import LoopLag, YieldGate
from voc_platform.periodic import every
from voc_platform.retention import retention_job
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_platform.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"
PRUNE_SECONDS = 3600.0
log = logging.getLogger("voc_notify")


def pattern_pruner(database: Database, watch: PatternWatch) -> Callable[[], Coroutine[Any, Any, None]]:
    """Hourly: forget pattern items older than the baseline period and the longest window."""

    async def prune() -> None:
        await dbsync.write(database, patterns.prune_sync, watch=watch, now=time.time())

    async def prune_pattern_items() -> None:
        await every(PRUNE_SECONDS, prune, log=log, failed="pruning pattern items failed; retrying in an hour")

    return prune_pattern_items


def tombstone_pruner(database: Database) -> Callable[[], Coroutine[Any, Any, None]]:
    """Hourly: forget the erasures' names no event can carry any more (`tombstones.TOMBSTONE_SECONDS`)
    and the mail suppressions past their year (`suppressions.SUPPRESSION_SECONDS`)."""

    async def prune() -> None:
        await dbsync.write(database, tombstones.prune_sync, now=time.time())
        await dbsync.write(database, suppressions.prune_sync, now=time.time())

    async def prune_tombstones() -> None:
        await every(
            PRUNE_SECONDS, prune, log=log, failed="pruning erasure tombstones failed; retrying in an hour"
        )

    return prune_tombstones


def pattern_rules_checker(
    watch: PatternWatch, *, seconds: float = 60.0
) -> Callable[[], Coroutine[Any, Any, None]]:
    """VOC_NOTIFY_PATTERN_RULES may name a category published later (#20 §3): start-up accepts
    any well-formed id, and this logs a warning whenever the rules naming a category the live
    taxonomy does not accept change (a typo stays visible), and when such a rule comes into force."""
    waiting: list[str] = []

    async def check() -> None:
        nonlocal waiting
        served = taxonomy.current()
        now = watch.unpublished(served)
        if now != waiting:
            if now:
                log.warning(
                    "VOC_NOTIFY_PATTERN_RULES names categories not published in taxonomy version"
                    " %s: %s; those rules wait until the category is published",
                    served.version,
                    ", ".join(now),
                )
            if published := sorted(set(waiting) - set(now)):
                log.info("pattern rules for %s are in force now (taxonomy version %s)",
                         ", ".join(published), served.version)  # fmt: skip
            waiting = now

    async def check_pattern_rules() -> None:
        await check()
        await every(seconds, check, log=log, failed="checking the pattern rules failed")

    return check_pattern_rules


def customer_channels(settings: Settings) -> tuple[MailSender | None, SmsProvider | None]:
    """The follow-up channels the settings configure (None each when not)."""
    mail = (
        MailSender(
            parse_smtp_url(settings.smtp_url, password=settings.smtp_password),
            mail_from=settings.mail_from,
            bounce_address=settings.mail_bounce_address,
            display_name=settings.brand_name,
            timeout=settings.follow_up_send_timeout_seconds,
            ca_file=settings.smtp_ca_file or None,
        )
        if settings.smtp_url
        else None
    )
    sms: SmsProvider | None = None
    if settings.sms_gateway_url:
        sms = HttpGateway(
            settings.sms_gateway_url,
            token=settings.sms_gateway_token,
            sender=settings.sms_sender,
            allowlist=settings.sms_allowlist(),
            timeout=settings.follow_up_send_timeout_seconds,
        )
    return mail, sms


def build(runtime: ServiceRuntime) -> ServiceParts:
    """The service wired whole (~100 lines on purpose: every sender, worker, consumer and
    background job of notify is made here, once, so a reader sees what runs and what shares
    what, e.g. one SMTP sender for follow-ups and the watchdog, one gate for webhook work)."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    vapid = VapidKeys.load_or_create(settings.data_dir / "vapid_private_key.pem")
    allowlist = PushAllowlist(settings.allowed_push_hosts() or DEFAULT_PUSH_HOSTS)
    sender = WebPushSender(vapid=vapid, subject=settings.vapid_subject, allowlist=allowlist)
    broker = AlertBroker()
    broker.attach(runtime.bus)  # live events reach SSE clients on every replica
    delivery = DeliveryWorker(runtime.database, sender, settings)
    escalation = EscalationWorker(runtime.database, settings, broker, delivery.wake)
    upstreams = Upstreams(settings)
    mail, sms = customer_channels(settings)
    # One SMTP sender: the customers' follow-ups and the watchdog's page by e-mail to staff.
    watchdog = DeliveryWatchdog(
        runtime.database, settings, MailChannel(mail) if mail is not None else None, delivery.wake
    )
    follow_up = follow_ups.FollowUpWorker(runtime.database, settings, contacts=upstreams, mail=mail, sms=sms)
    if follow_up.channels:
        log.info("follow-up messages to customers by %s", " and ".join(follow_up.channels))
    else:
        log.warning("follow-up not sent: no channel configured (VOC_SMTP_URL, VOC_SMS_GATEWAY_URL)")
    webhook_sender = WebhookSender(
        WebhookTargets(settings.allowed_webhook_hosts()), timeout=settings.webhook_timeout_seconds
    )
    # Webhooks yield to pages: while this loop runs late, their passes and events wait a while.
    lag = LoopLag()
    webhook_gate = YieldGate(lag)
    webhooks = WebhookDispatcher(runtime.database, webhook_sender, settings, gate=webhook_gate)

    app = api.build_app(
        settings,
        runtime.database,
        vapid=vapid,
        allowlist=allowlist,
        broker=broker,
        wake_delivery=delivery.wake,
        webhook_sender=webhook_sender,
    )

    async def close() -> None:
        await app.state.corrections.close()
        await webhooks.aclose()
        await upstreams.close()
        await sender.aclose()
        if sms is not None:
            await sms.aclose()
        await webhook_sender.aclose()

    return ServiceParts(
        app=app,
        grpc_register=grpc_server.register(runtime.database),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        consumers=events.consumers(
            runtime.database,
            upstreams,
            broker,
            delivery,
            dedupe_window=settings.dedupe_window_seconds,
            wake_follow_ups=follow_up.wake,
            watch=settings.pattern_watch(),
        )
        + erasure.consumers(runtime.database)
        + corrections.consumers(runtime.database, broker)
        + enqueue.consumers(runtime.database, webhook_gate),
        subscriptions=[(LIVE_SUBJECT, broker.on_live_message)],
        background=[
            lag.run,
            delivery.run,
            escalation.run,
            follow_up.run,
            webhooks.run,
            watchdog.run,
            pattern_pruner(runtime.database, settings.pattern_watch()),
            tombstone_pruner(runtime.database),
            pattern_rules_checker(settings.pattern_watch()),
            retention_job(
                days=settings.retention_days, redact=alerts_past_retention(runtime.database), what="alerts"
            ),
        ],
        on_stop=[close],
        metric_sources=[
            metrics.timers_due_source(runtime.database),
            metrics.webhook_endpoints_source(runtime.database),
            metrics.webhook_backlog_source(runtime.database),
            metrics.webhook_gate_source(webhook_gate),
        ],
        follow_taxonomy=True,
    )


def alerts_past_retention(database: Database) -> Callable[[float], Awaitable[int]]:
    async def redact(before: float) -> int:
        async with database.transaction() as session:
            return await erasure.redact_past_retention(session, before=before, now=time.time())

    return redact


def main() -> None:
    run_service(load_settings(Settings), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
