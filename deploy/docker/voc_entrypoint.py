"""Container entrypoint of every service image: `serve` (default) or `migrate`.

`VOC_SERVICE` (baked into the image) picks the service. `migrate` applies that service's Alembic
migrations and exits: the Kubernetes Job / compose one-shot that runs before a rollout (serving
processes migrate too, under an advisory lock, so an old Job never blocks a start).
`VOC_VAPID_KEY_FILE` (notify): a mounted secret file that is copied to
`$VOC_DATA_DIR/vapid_private_key.pem` with mode 0600, so every notify replica signs pushes with
the same key even though secret mounts are read-only and group-readable.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import runpy
import shutil
import sys
import tempfile
from pathlib import Path

SERVICES = ("feedback", "profile", "actions", "notify")
# Read here, not by the services' settings classes (the manifest check allows exactly these).
ENTRYPOINT_ENV = ("VOC_SERVICE", "VOC_VAPID_KEY_FILE")


def service_name() -> str:
    name = os.environ.get("VOC_SERVICE", "")
    if name not in SERVICES:
        raise SystemExit(f"VOC_SERVICE must be one of {', '.join(SERVICES)} (got {name!r})")
    return name


def install_vapid_key() -> None:
    source = os.environ.get("VOC_VAPID_KEY_FILE")
    if not source:
        return
    data_dir = Path(os.environ.get("VOC_DATA_DIR", "./var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".vapid.", dir=data_dir)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, data_dir / "vapid_private_key.pem")


async def migrate(name: str) -> None:
    from voc_platform import migrations
    from voc_platform.db import Database
    from voc_platform.settings import load_settings

    main = importlib.import_module(f"voc_{name}.__main__")
    settings = load_settings(importlib.import_module(f"voc_{name}.settings").Settings)
    database = Database(settings.resolved_database_url)
    try:
        await migrations.upgrade(database, main.MIGRATIONS, name=name)
    finally:
        await database.dispose()


def main(argv: list[str]) -> int:
    name = service_name()
    from voc_platform.runtime import keep_data_private  # files 0600, directories 0700

    keep_data_private(Path(os.environ.get("VOC_DATA_DIR", "./var")))
    command = argv[0] if argv else "serve"
    if command == "migrate":
        asyncio.run(migrate(name))
        print(f"{name}: migrations applied", flush=True)
        return 0
    if command == "serve":
        install_vapid_key()
        runpy.run_module(f"voc_{name}", run_name="__main__", alter_sys=True)
        return 0
    raise SystemExit(f"unknown command {command!r}: use serve or migrate")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
