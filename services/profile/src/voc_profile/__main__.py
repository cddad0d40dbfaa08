"""`python -m voc_profile`: run the profile service."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.periodic import every
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_platform.settings import load_settings
from voc_profile import api, corrections, events, grpc_server, signals
from voc_profile.models import audit_table, outbox_table
from voc_profile.settings import Settings
from voc_profile.staff_directory import StaffDirectory
from voc_profile.store_access import StoreAccess

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def signal_refresher(database: Database, settings: Settings) -> Callable[[], Coroutine[Any, Any, None]]:
    async def refresh() -> None:
        await signals.refresh_due(database, settings=settings)

    async def signal_refresh() -> None:
        await every(
            settings.signal_refresh_seconds, refresh, log=log, failed="signal refresh failed; retrying"
        )

    return signal_refresh


def build(runtime: ServiceRuntime) -> ServiceParts:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    # One audit log for the REST app and the gRPC reads; the runtime flushes and prunes it.
    trail = Audit(runtime.database, audit_table, flush_seconds=settings.audit_flush_seconds)
    store_access = StoreAccess(settings)
    staff_directory = StaffDirectory(settings)
    return ServiceParts(
        app=api.build_app(settings, runtime.database, trail, store_access, staff_directory),
        grpc_register=grpc_server.register(runtime.database, settings, trail),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        consumers=[
            *events.consumers(runtime.database, settings),
            corrections.consumer(runtime.database, settings),
        ],
        background=[signal_refresher(runtime.database, settings)],
        on_stop=[store_access.close, staff_directory.close],
        follow_taxonomy=True,
    )


def main() -> None:
    run_service(load_settings(Settings), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
