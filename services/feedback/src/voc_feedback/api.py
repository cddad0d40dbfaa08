"""The feedback service's HTTP app: REST API (DESIGN §5), follow-up page and manager dashboard."""

from __future__ import annotations

from fastapi import FastAPI

from voc_feedback import metrics
from voc_feedback.model_registry import LiveClassifier
from voc_feedback.models import audit_table, revocations_table
from voc_feedback.outreach_reports import OutreachReports
from voc_feedback.routes import (
    admin,
    analytics,
    classifier_models,
    corrections,
    dashboard,
    follow_up,
    intake,
    reading,
    targets,
)
from voc_feedback.settings import Settings
from voc_platform import audit
from voc_platform.db import Database
from voc_platform.http import create_app, install_health_routes
from voc_platform.ratelimit import RateLimiter


def build_app(
    settings: Settings,
    database: Database,
    *,
    classifier: LiveClassifier | None = None,
    outreach_reports: OutreachReports | None = None,
) -> FastAPI:
    """The app with every router; settings, database, rate limiter, the classifier this replica
    serves and profile's outreach reports (over gRPC) on `app.state` (`deps`)."""
    app = create_app(
        title="Frontline VoC — feedback",
        service="voc-feedback",
        body_limit_exempt=classifier_models.PATHS,
        binary_bodies=classifier_models.PATHS,  # a model bundle is a zip: NUL bytes are data
        bulk_bodies=admin.BULK_PATHS,
        console_origins=settings.console_origin_list,
        connect_sources=settings.console_connect_sources,
        connect_paths=("/dashboard",),  # the console calls notify and actions; the survey calls nothing
    )
    install_health_routes(app)
    app.state.settings = settings
    app.state.database = database
    app.state.classifier = classifier or LiveClassifier()
    app.state.outreach_reports = outreach_reports or OutreachReports(settings)
    app.state.rate_limiter = RateLimiter(
        rate_per_second=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    audit.install(
        app, settings=settings, database=database, revocations_table=revocations_table, audit=audit_table
    )
    for module in (
        intake,
        reading,
        corrections,
        analytics,
        targets,
        admin,
        classifier_models,
        follow_up,
        dashboard,
    ):
        app.include_router(module.router)
    metrics.install(app)
    return app
