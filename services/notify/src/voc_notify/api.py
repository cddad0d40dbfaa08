"""REST API of the notify service: staff login, devices, alerts, live stream, directory, app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from voc_notify.auth import LoginGuard
from voc_notify.corrections import FeedbackCorrections
from voc_notify.models import audit_table, revocations_table
from voc_notify.routes import alerts, app, auth, delivery_reports, devices, directory, suppressions, webhooks
from voc_notify.settings import Settings
from voc_notify.stream import AlertBroker
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webhooks.targets import WebhookTargets
from voc_notify.webpush import PushAllowlist, VapidKeys
from voc_platform import audit
from voc_platform.db import Database
from voc_platform.http import create_app, install_health_routes


def build_app(
    settings: Settings,
    database: Database,
    *,
    vapid: VapidKeys,
    allowlist: PushAllowlist,
    broker: AlertBroker,
    wake_delivery: Callable[[], None] | None = None,
    webhook_sender: WebhookSender | None = None,
) -> FastAPI:
    """The notify app: the routers below, reading these parts from `app.state` (`deps.py`)."""
    api = create_app(
        title="Frontline VoC — notify",
        service="voc-notify",
        console_origins=settings.console_origin_list,
        # A bounce may quote the whole message it reports on, HTML and all.
        bulk_bodies=directory.BULK_PATHS | {delivery_reports.PATH},
    )
    install_health_routes(api)
    api.state.settings, api.state.database = settings, database
    api.state.vapid, api.state.allowlist, api.state.broker = vapid, allowlist, broker
    api.state.login_guard = LoginGuard(settings)
    api.state.webhook_sender = webhook_sender or WebhookSender(
        WebhookTargets(settings.allowed_webhook_hosts()), timeout=settings.webhook_timeout_seconds
    )
    api.state.secret_box = SecretBox.of(settings)
    api.state.corrections = FeedbackCorrections(settings)  # the staff app's corrections (#17)
    # notify issues the tokens and writes its revocations itself: no consumer of its own event
    audit.install(
        api,
        settings=settings,
        database=database,
        revocations_table=revocations_table,
        audit=audit_table,
        consume_revocations=False,
    )
    routers = (
        auth.router,
        auth.managers,
        devices.router,
        alerts.router,
        directory.router,
        webhooks.router,
        delivery_reports.router,
        suppressions.router,
    )
    for router in (*routers, app.router):
        api.include_router(router)
    return api
