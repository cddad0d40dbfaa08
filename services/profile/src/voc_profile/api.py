"""The profile service's REST app (the admin token, staff tokens by role and store): customers,
imports, lists by signal, outreach work, timeline, merges, reports, erasure, subject access export and the
audit log. Routes: `voc_profile.routes`."""

from __future__ import annotations

from fastapi import FastAPI

from voc_platform import audit
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.http import create_app, install_health_routes
from voc_platform.ratelimit import RateLimiter
from voc_profile.models import audit_table, revocations_table
from voc_profile.routes import customers, imports, lists, merges, outreach, privacy, reports, timeline, visits
from voc_profile.settings import Settings
from voc_profile.staff_directory import StaffDirectory
from voc_profile.store_access import StoreAccess
from voc_profile.uploads import ImportRejected

ROUTERS = (customers, imports, lists, outreach, timeline, merges, privacy, reports, visits)


def build_app(
    settings: Settings,
    database: Database,
    audit_log: Audit | None = None,
    store_access: StoreAccess | None = None,
    staff_directory: StaffDirectory | None = None,
) -> FastAPI:
    """The app: problem+json errors, probes, what the dependencies read from `app.state`, the routers."""
    app = create_app(
        title="Frontline VoC — profile",
        service="voc-profile",
        console_origins=settings.console_origin_list,
        body_limit_exempt=imports.PATHS,
        bulk_bodies=customers.BULK_PATHS,
    )
    install_health_routes(app)
    app.state.settings = settings
    app.state.database = database
    app.state.store_access = store_access or StoreAccess(settings)  # feedback's keys and stores
    app.state.checkin_limiter = RateLimiter(
        rate_per_second=settings.checkin_rate_limit_per_second, burst=settings.checkin_rate_limit_burst
    )
    app.state.staff_directory = staff_directory or StaffDirectory(settings)  # notify's staff (outreach)
    audit.install(
        app,
        settings=settings,
        database=database,
        revocations_table=revocations_table,
        audit=audit_log or Audit(database, audit_table, flush_seconds=settings.audit_flush_seconds),
    )
    app.add_exception_handler(ImportRejected, imports.on_rejected)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
