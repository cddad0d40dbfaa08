"""Cost of the dashboard's two #20 sections: ``python -m voc_bench.outreach_targets``.

On migrated SQLite files in a temporary directory: feedback's metrics against targets
(`voc_feedback.targets.against_targets`) for a reader of every store (each store and each area,
`--weeks` weeks of `--feedback` items over `--stores` stores in 3 areas), and profile's outreach
report (`voc_profile.outreach.report`, `--assignments` assignments, half of them contacted, three
visits per assignment). Prints the wall time of each, the best of `--repeat` runs.

    uv run python -m voc_bench.outreach_targets [--feedback 50000] [--stores 30] [--assignments 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from voc_feedback import targets
from voc_feedback.__main__ import MIGRATIONS as FEEDBACK_MIGRATIONS
from voc_feedback.listing import FeedbackFilter
from voc_feedback.models import Feedback, Store, Target
from voc_platform import migrations
from voc_platform.db import Database
from voc_profile import outreach
from voc_profile.__main__ import MIGRATIONS as PROFILE_MIGRATIONS
from voc_profile.models import Customer, OutreachAssignment, OutreachContact, Visit

DAY = 86400.0


def feedback_rows(count: int, stores: list[str], weeks: int, now: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        at = now - random.random() * weeks * 7 * DAY
        rows.append(
            {
                "id": f"f{i}",
                "store_id": random.choice(stores),
                "channel": "kiosk",
                "language": "ko",
                "sentiment": "negative",
                "score": 0.0,
                "category": "food_quality",
                "severity": "low",
                "explanation": [],
                "occurred_at": at,
                "received_at": at,
                "customer": {},
                "status": "acknowledged",
                "api_key_id": "bench",
                "nps": random.randint(0, 10),
                "csat": random.randint(1, 5),
                "alerted_at": at + 1,
                "acknowledged_at": at + random.random() * 900,
            }
        )
    return rows


async def against_targets(directory: Path, args: argparse.Namespace) -> float:
    now = time.time()
    database = Database(f"sqlite:///{directory}/feedback.db")
    await migrations.upgrade(database, FEEDBACK_MIGRATIONS, name="feedback")
    stores = [f"store-{i}" for i in range(args.stores)]
    async with database.transaction() as session:
        await session.execute(
            insert(Store),
            [
                {"id": s, "name": s, "area_id": f"area-{i % 3}", "updated_at": now}
                for i, s in enumerate(stores)
            ],
        )
        await session.execute(
            insert(Target),
            [
                {
                    "place_kind": "area",
                    "place_id": f"area-{i}",
                    "metric": m,
                    "value": 5.0,
                    "updated_by": "bench",
                    "updated_at": now,
                }
                for i in range(3)
                for m in ("nps", "ack_minutes")
            ],
        )
        rows = feedback_rows(args.feedback, stores, args.weeks, now)
        for start in range(0, len(rows), 5000):
            await session.execute(insert(Feedback), rows[start : start + 5000])
    best = float("inf")
    for _ in range(args.repeat):
        async with database.session() as session:
            started = time.perf_counter()
            await targets.against_targets(
                session,
                where=FeedbackFilter(),
                area_readable=True,
                weeks=args.weeks,
                timezone=ZoneInfo("Asia/Seoul"),
            )
            best = min(best, time.perf_counter() - started)
    await database.dispose()
    return best


async def outreach_report(directory: Path, args: argparse.Namespace) -> float:
    now = time.time()
    database = Database(f"sqlite:///{directory}/profile.db")
    await migrations.upgrade(database, PROFILE_MIGRATIONS, name="profile")
    stores = [f"store-{i}" for i in range(args.stores)]
    n = args.assignments
    async with database.transaction() as session:
        await session.execute(
            insert(Customer),
            [
                {
                    "id": f"c{i}",
                    "tier": "basic",
                    "lifetime_value": 0.0,
                    "contact_consent": False,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        await session.execute(
            insert(OutreachAssignment),
            [
                {
                    "id": f"a{i}",
                    "customer_id": f"c{i}",
                    "list_kind": random.choice(("churn_risk", "low_satisfaction")),
                    "store_id": random.choice(stores),
                    "assignee_id": "bench",
                    "assignee_name": "bench",
                    "assigned_by": "admin",
                    "assigned_at": now - random.random() * 80 * DAY,
                    "status": "open",
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        await session.execute(
            insert(OutreachContact),
            [
                {
                    "assignment_id": f"a{i}",
                    "channel": "phone",
                    "outcome": random.choice(("reached", "no_answer")),
                    "note": "",
                    "contacted_by": "bench",
                    "contacted_at": now - random.random() * 10 * DAY,
                }
                for i in range(0, n, 2)
            ],
        )
        await session.execute(
            insert(Visit),
            [
                {
                    "customer_id": f"c{random.randrange(n)}",
                    "store_id": random.choice(stores),
                    "visited_at": now - random.random() * 90 * DAY - i * 1e-3,
                    "amount": 0.0,
                }
                for i in range(3 * n)
            ],
        )
    best = float("inf")
    for _ in range(args.repeat):
        async with database.session() as session:
            started = time.perf_counter()
            await outreach.report(session, stores=None, window_days=30)
            best = min(best, time.perf_counter() - started)
    await database.dispose()
    return best


async def run(args: argparse.Namespace) -> None:
    random.seed(20)
    with tempfile.TemporaryDirectory(prefix="voc-bench-outreach-") as name:
        directory = Path(name)
        seconds = await against_targets(directory, args)
        print(
            f"against targets: {args.feedback:,} feedback, {args.stores} stores + 3 areas,"
            f" {args.weeks} weeks: {seconds * 1000:.0f} ms"
        )
        seconds = await outreach_report(directory, args)
        print(
            f"outreach report: {args.assignments:,} assignments, {args.assignments // 2:,} contacts,"
            f" {3 * args.assignments:,} visits: {seconds * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feedback", type=int, default=50_000)
    parser.add_argument("--stores", type=int, default=30)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--assignments", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
