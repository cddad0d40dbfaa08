"""Benchmark: import 100,000 customers (CSV) through the REST import endpoint, in process, into a
fresh SQLite database (or VOC_PROFILE_DATABASE_URL). Target: under 60 s on the dev machine.

    uv run python -m voc_bench.profile_import [--customers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

import voc_profile
from voc_platform import migrations
from voc_platform.db import Database
from voc_profile.api import build_app
from voc_profile.settings import Settings

MIGRATIONS = Path(voc_profile.__file__).parent / "migrations"
HEADER = "loyalty_id,phone,email,name,tier,lifetime_value,preferred_language,contact_consent,home_store_id\n"
TIERS = ("basic", "basic", "basic", "silver", "gold", "vip")


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(count):
            out.write(
                f"B-{i:07d},010-{2000 + i // 10000:04d}-{i % 10000:04d},bench{i}@example.com,고객{i},"
                f"{TIERS[i % len(TIERS)]},{(i % 977) * 10000},{'ko' if i % 4 else 'en'},"
                f"{'true' if i % 3 else 'false'},"
                f"store-{i % 50}\n"
            )


async def file_chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(size):
            yield chunk


async def run(count: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "customers.csv"
        write_csv(csv_path, count)
        database = Database(url or f"sqlite:///{tmp}/bench-import.db")
        await migrations.upgrade(database, MIGRATIONS, name="profile")
        settings = Settings(
            admin_token="bench-admin-token",  # noqa: S106 - in-process only
            max_import_bytes=1024**3,
        )
        app = build_app(settings, database)
        headers = {"Authorization": "Bearer bench-admin-token", "Content-Type": "text/csv"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            for label in ("first import", "re-import (all updates)"):
                started = time.perf_counter()
                response = await client.post(
                    "/v1/customers:import", headers=headers, content=file_chunks(csv_path)
                )
                elapsed = time.perf_counter() - started
                report = response.json()
                print(
                    f"{label}: {count:,} rows in {elapsed:.1f} s ({count / elapsed:,.0f} rows/s); "
                    f"created {report['created']:,}, updated {report['updated']:,}, failed {report['failed']}"
                )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size_mb = csv_path.stat().st_size / 1e6
        print(f"file {size_mb:.1f} MB; peak RSS of the process {peak:.0f} MB; target < 60 s")
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.database_url))


if __name__ == "__main__":
    main()
