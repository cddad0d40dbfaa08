"""`python -m voc_notify`: run the notify service."""

from __future__ import annotations

from pathlib import Path

from voc_notify import api, events, grpc_server, metrics
from voc_notify.clients import Upstreams
from voc_notify.fallback import MailChannel
from voc_notify.models import outbox_table
from voc_notify.settings import Settings
from voc_notify.stream import LIVE_SUBJECT, AlertBroker
from voc_notify.watchdog import DeliveryWatchdog
from voc_notify.webpush import DEFAULT_PUSH_HOSTS, PushAllowlist, VapidKeys, WebPushSender
from voc_notify.workers import DeliveryWorker, EscalationWorker
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_platform.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: ServiceRuntime) -> ServiceParts:
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
    watchdog = DeliveryWatchdog(
        runtime.database, settings, MailChannel.from_settings(settings), delivery.wake
    )
    upstreams = Upstreams(settings)

    async def close() -> None:
        await upstreams.close()
        await sender.aclose()

    return ServiceParts(
        app=api.build_app(
            settings,
            runtime.database,
            vapid=vapid,
            allowlist=allowlist,
            broker=broker,
            wake_delivery=delivery.wake,
        ),
        grpc_register=grpc_server.register(runtime.database),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        consumers=events.consumers(
            runtime.database,
            upstreams,
            broker,
            delivery,
            dedupe_window=settings.dedupe_window_seconds,
        ),
        subscriptions=[(LIVE_SUBJECT, broker.on_live_message)],
        background=[delivery.run, escalation.run, watchdog.run],
        on_stop=[close],
        metric_sources=[metrics.timers_due_source(runtime.database)],
    )


def main() -> None:
    run_service(load_settings(Settings), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
