"""Autogenerate a migration for one service: python scripts/new_migration.py SERVICE "message".

Compares the service's models with a scratch SQLite database migrated to head.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine


def main() -> int:
    service, message = sys.argv[1], sys.argv[2]
    pkg = importlib.import_module(f"voc_{service}")
    migrations = Path(pkg.__file__).parent / "migrations"  # type: ignore[arg-type]
    template = Path(importlib.import_module("voc_platform").__file__).parent  # type: ignore[arg-type]
    shutil.copy(template / "script.py.mako", migrations / "script.py.mako")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/scratch.db")
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(migrations))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            existing = [p for p in (migrations / "versions").glob("*.py") if p.name[:4].isdigit()]
            command.revision(cfg, message=message, autogenerate=True, rev_id=f"{len(existing) + 1:04d}")
    (migrations / "script.py.mako").unlink()
    for generated in (migrations / "versions").glob("*.py"):
        lines = generated.read_text().splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if "### commands auto generated" not in line and "### end Alembic commands" not in line
        ]
        generated.write_text("".join(kept))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
