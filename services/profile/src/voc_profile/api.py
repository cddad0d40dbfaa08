"""The profile service's REST app (admin token): customers, imports, lists by signal, timeline,
merges, reports, erasure, subject access export and the audit log. Routes: `voc_profile.routes`."""

from __future__ import annotations

from fastapi import FastAPI

from voc_platform.db import Database
from voc_platform.http import create_app, install_health_routes
from voc_profile.audit import AuditTrail
from voc_profile.routes import audit, customers, imports, lists, merges, privacy, reports, timeline, visits
from voc_profile.settings import Settings
from voc_profile.store_access import StoreAccess
from voc_profile.uploads import ImportRejected

ROUTERS = (customers, imports, lists, timeline, merges, privacy, reports, audit, visits)


def build_app(
    settings: Settings,
    database: Database,
    trail: AuditTrail | None = None,
    store_access: StoreAccess | None = None,
) -> FastAPI:
    """The app: problem+json errors, probes, what the dependencies read from `app.state`, the routers."""
    app = create_app(title="Frontline VoC — profile", service="voc-profile", body_limit_exempt=imports.PATHS)
    install_health_routes(app)
    app.state.settings = settings
    app.state.database = database
    app.state.audit_trail = trail or AuditTrail(database, flush_seconds=settings.audit_flush_seconds)
    app.state.store_access = store_access or StoreAccess(settings)  # feedback's keys and stores
    app.add_exception_handler(ImportRejected, imports.on_rejected)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
