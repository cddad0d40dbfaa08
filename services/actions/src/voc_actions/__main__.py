"""`python -m voc_actions`: run the actions service."""

from __future__ import annotations

from pathlib import Path

from voc_actions import api, events, grpc_server, service
from voc_actions.models import outbox_table
from voc_actions.playbooks import Library
from voc_actions.settings import Settings
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: ServiceRuntime) -> ServiceParts:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    live = service.LiveLibrary(library=Library())

    async def load() -> None:
        async with runtime.database.transaction() as session:
            await service.seed_bundled_library(session)
        async with runtime.database.session() as session:
            rebuilt = await service.rebuild(session)
        live.library, live.publication_id = rebuilt.library, rebuilt.publication_id

    reloader = events.Reloader(runtime.database, live)
    return ServiceParts(
        app=api.build_app(settings, runtime.database, live),
        grpc_register=grpc_server.register(live),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        on_start=[load],
        subscriptions=[(service.SUBJECT_PUBLISHED, reloader.on_published)],
        background=[reloader.periodic],
    )


def main() -> None:
    run_service(Settings(), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
