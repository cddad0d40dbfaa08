"""The actions service's REST app: the routers of `routes/`, reading `app.state` through `deps.py`."""

from __future__ import annotations

from fastapi import FastAPI

from voc_actions.live import LiveLibrary
from voc_actions.models import audit_table, revocations_table
from voc_actions.routes import plans, playbooks, taxonomy
from voc_actions.settings import Settings
from voc_platform import audit
from voc_platform.db import Database
from voc_platform.http import create_app, install_health_routes


def build_app(settings: Settings, database: Database, live: LiveLibrary) -> FastAPI:
    """The app; ready once the live library has playbooks."""
    app = create_app(
        title="Frontline VoC — actions",
        service="voc-actions",
        console_origins=settings.console_origin_list,
        bulk_bodies=playbooks.BULK_PATHS | taxonomy.BULK_PATHS,
    )
    install_health_routes(app, extra_ready=lambda: len(live.library) > 0)
    app.state.settings, app.state.database, app.state.live = settings, database, live
    audit.install(
        app, settings=settings, database=database, revocations_table=revocations_table, audit=audit_table
    )
    for router in (playbooks.router, taxonomy.router, plans.router):
        app.include_router(router)
    return app
