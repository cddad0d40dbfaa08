"""`python -m voc_actions`: run the actions service."""

from __future__ import annotations

from pathlib import Path

from voc_actions import api, events, grpc_server, live, publishing, taxonomy
from voc_actions.models import outbox_table
from voc_actions.playbooks import Library
from voc_actions.settings import Settings
from voc_platform import taxonomy_live
from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_platform.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: ServiceRuntime) -> ServiceParts:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    served = live.LiveLibrary(library=Library())

    async def load() -> None:
        await taxonomy.load(runtime.database)  # first: playbooks name its categories
        await live.load(runtime.database, served)

    reloader = events.Reloader(runtime.database, served)
    return ServiceParts(
        app=api.build_app(settings, runtime.database, served),
        grpc_register=grpc_server.register(served),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        on_start=[load],
        subscriptions=[
            (publishing.SUBJECT_PUBLISHED, reloader.on_published),
            (taxonomy_live.SUBJECT_PUBLISHED, reloader.on_published),
        ],
        background=[reloader.periodic],
    )


def main() -> None:
    run_service(load_settings(Settings), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
