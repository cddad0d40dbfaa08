"""`python -m voc_profile`: run the profile service."""

from __future__ import annotations

from pathlib import Path

from voc_platform.runtime import ServiceParts, ServiceRuntime, run_service
from voc_profile import api, events, grpc_server
from voc_profile.models import outbox_table
from voc_profile.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: ServiceRuntime) -> ServiceParts:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    return ServiceParts(
        app=api.build_app(settings, runtime.database),
        grpc_register=grpc_server.register(runtime.database, settings),
        grpc_service_names=[grpc_server.SERVICE_NAME],
        consumers=events.consumers(runtime.database, settings),
    )


def main() -> None:
    run_service(Settings(), build, migrations_dir=MIGRATIONS, outbox=outbox_table)


if __name__ == "__main__":
    main()
