"""`python -m voc_feedback`: run the feedback service."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from voc_feedback import api, cases, events, grpc_server, model_registry
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.grpc_server import SERVICE_NAME
from voc_feedback.models import outbox_table
from voc_feedback.outreach_reports import OutreachReports
from voc_feedback.settings import Settings
from voc_platform import dbsync
from voc_platform.db import Database
from voc_platform.retention import retention_job
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_platform.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: ServiceRuntime) -> ServiceParts:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    links = FollowUpLinks.of(settings)
    outreach_reports = OutreachReports(settings)
    classifier = model_registry.LiveClassifier()
    reloader = model_registry.Reloader(runtime.database, classifier, settings.classifier_poll_seconds)
    app = api.build_app(settings, runtime.database, classifier=classifier, outreach_reports=outreach_reports)
    return ServiceParts(
        app=app,
        # The gRPC correction verifies staff tokens and audits like the REST API (#17).
        grpc_register=grpc_server.register(
            runtime.database, links, identity=app.state.identity, audit=app.state.audit
        ),
        grpc_service_names=[SERVICE_NAME],
        consumers=events.consumers(runtime.database, links),
        on_start=[reloader.load],
        on_stop=[outreach_reports.close],
        subscriptions=[(model_registry.SUBJECT_PROMOTED, reloader.on_promoted)],
        background=[
            reloader.periodic,
            retention_job(
                days=settings.retention_days,
                redact=redact_items_past_retention(runtime.database),
                what="feedback items",
            ),
        ],
        follow_taxonomy=True,
    )


def redact_items_past_retention(database: Database) -> Callable[[float], Awaitable[int]]:
    async def redact(before: float) -> int:
        return await dbsync.write(database, cases.redact_past_retention, before=before, now=time.time())

    return redact


def main() -> None:
    run_service(load_settings(Settings), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
