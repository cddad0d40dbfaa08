"""Cost of pattern detection (#18) on notify's alert hop: ``python -m voc_bench.pattern_cost``.

Times the consumer's write hop for a new negative feedback alert (`new_alert_sync` with its
routing, recipients and event, in one `dbsync.write`) on a migrated notify database, three ways:
without pattern detection; with it, counting (no pattern alert open: the insert and the indexed
count of different customers); and with it, folding into the open pattern alert (the indexed
seen-check, the insert, the open alert read and updated). Prints this process's CPU microseconds
per hop (the database runs in process on SQLite), the best of `--repeat` runs of `--alerts` hops
each, so other work on a shared machine counts less.

    uv run python -m voc_bench.pattern_cost [--alerts 2000] [--repeat 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from voc_notify import alerts, patterns
from voc_notify.facts import AlertInput, CustomerContext, Feedback, Plan, PlanStep, Signals
from voc_notify.models import Staff, Store
from voc_notify.patterns import PatternRule, PatternWatch, Spike
from voc_platform import dbsync, migrations
from voc_platform.db import Database
from voc_platform.dbsync import Reader

MIGRATIONS = Path(alerts.__file__).parent / "migrations"
PLAN = Plan(
    playbook_id="wait-time-default",
    version=1,
    priority="normal",
    steps=(PlanStep("Apologise", "staff"),),
    notify_roles=("staff", "shift_lead"),
)
PATTERN_PLAN = Plan(
    playbook_id="pattern-default", version=1, priority="urgent", notify_roles=("store_manager",)
)


async def _setup(url: str) -> tuple[Database, Store]:
    database = Database(url)
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    store = Store(id="bench-store", name="Bench", area_id="bench-area", timezone="Asia/Seoul", language="ko")
    async with database.transaction() as s:
        s.add(
            Store(
                id=store.id,
                name=store.name,
                area_id=store.area_id,
                timezone=store.timezone,
                language=store.language,
            )
        )
        for sid, role in (("b-staff", "staff"), ("b-lead", "shift_lead"), ("b-mgr", "store_manager")):
            s.add(
                Staff(
                    id=sid,
                    name=sid,
                    email=f"{sid}@bench.demo",
                    password_hash="x",  # noqa: S106 - not a password: nobody logs in here
                    role=role,
                    store_ids=[store.id],
                    area_id=None,
                    language="ko",
                    active=True,
                )
            )
    return database, store


def _facts(store: Store, i: int) -> AlertInput:
    customer = CustomerContext(
        known=True, customer_id=str(uuid.uuid4()), masked_name="김**", signals=Signals()
    )
    feedback = Feedback(
        id=str(uuid.uuid4()),
        category="wait_time",
        store_id=store.id,
        text=f"40분 기다렸어요 {i}",
        sentiment="negative",
        severity="high",
    )
    return AlertInput(feedback=feedback, store=store, customer=customer, plan=PLAN, language="ko")


def _hop(reader: Reader, *, facts: AlertInput, watch: PatternWatch | None, now: float) -> object:
    """What `events.AlertConsumer._write` does besides the processed mark and the lease."""
    created = alerts.new_alert_sync(reader, facts=facts, now=now)
    if watch is None or created is None:
        return created
    return patterns.record_item_sync(
        reader,
        watch=watch,
        feedback_id=facts.feedback.id,
        store=facts.store,
        category="wait_time",
        customer_key=facts.customer.customer_id or facts.feedback.id,
        alert_id=created.alert.id,
        excerpt=facts.feedback.text,
        language="ko",
        now=now,
    )


async def _run(
    database: Database, store: Store, *, watch: PatternWatch | None, n: int, spacing: float
) -> float:
    """CPU microseconds of this process per hop over `n` sequential hops, `spacing` seconds of
    the alerts' clock apart (400 s keeps a 60-minute window under 10 items: a store below its
    threshold; 0 puts every item in the window: folding)."""
    inputs = [_facts(store, i) for i in range(n)]
    base = time.time() - n * spacing
    started = time.process_time()
    for i, facts in enumerate(inputs):
        now = base + i * spacing
        result = await dbsync.write(database, _hop, facts=facts, watch=watch, now=now)
        if isinstance(result, Spike):  # the fold case: open the pattern alert once
            await dbsync.write(
                database,
                patterns.raise_pattern_sync,
                spike=result,
                store=store,
                plan=PATTERN_PLAN,
                language="ko",
                repush_seconds=300,
                now=now,
            )
    return (time.process_time() - started) / n * 1e6


async def main_async(args: argparse.Namespace) -> None:
    watch = PatternWatch(rules={"*": PatternRule(3, 3600)}, baseline_days=28)
    results: dict[str, list[float]] = {"off": [], "counting": [], "folding": []}
    for _ in range(args.repeat):
        for name, used, spacing in (
            ("off", None, 400.0),
            ("counting", watch, 400.0),
            ("folding", watch, 0.0),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                url = args.database_url or f"sqlite:///{tmp}/notify-bench.db"
                database, store = await _setup(url)
                try:
                    await _run(database, store, watch=used, n=50, spacing=spacing)  # statements compiled
                    results[name].append(
                        await _run(database, store, watch=used, n=args.alerts, spacing=spacing)
                    )
                finally:
                    await database.dispose()
    best = {name: min(values) for name, values in results.items()}
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(f"alert hop, best of {args.repeat} x {args.alerts} ({where}):")
    for name in ("off", "counting", "folding"):
        extra = best[name] - best["off"]
        print(
            f"  {name:9s} {best[name]:8.1f} us CPU/alert" + (f"  (+{extra:.1f} us)" if name != "off" else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="a fresh PostgreSQL database (default: SQLite)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
