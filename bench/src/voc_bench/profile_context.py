"""Benchmark: GetCustomerContext p50/p99 over gRPC with 1,000,000 customers loaded.

Loads customers, identifiers, stored signals, feedback history and visits into a fresh SQLite
file with plain sqlite3 bulk inserts (minutes, not hours), starts the real profile service on it
(`python -m voc_profile`, no NATS needed for gRPC), then calls GetCustomerContext sequentially
for random customers, by id and by phone (what notify sends). Target: p99 < 5 ms.

    uv run python -m voc_bench.profile_context [--customers 1000000] [--calls 5000] [--db FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import grpc

import voc_profile
from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_cli.supervisor import free_port
from voc_platform import migrations
from voc_platform.db import Database
from voc_profile import summary
from voc_profile.facts import FeedbackItem
from voc_profile.settings import Settings
from voc_profile.signals import compute_signals

MIGRATIONS = Path(voc_profile.__file__).parent / "migrations"
TOKEN = "bench-internal-token"  # noqa: S105 - a throwaway local server
CATEGORIES = ("food_quality", "wait_time", "staff_attitude", "cleanliness", "price")


def customer_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def phone(i: int) -> str:
    return f"+8210{i // 10000 + 1000:04d}{i % 10000:04d}"


def load(path: Path, count: int) -> None:
    """Bulk-load `count` customers with their identifiers, signals, history and visits (one
    function, ~105 lines: one sqlite3 transaction written as the tables' rows in order)."""
    settings = Settings()
    shape = summary.Shape.of(settings)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = time.time()
    rng = random.Random(7)
    batch = 50_000
    for start in range(0, count, batch):
        ids = range(start, min(start + batch, count))
        conn.executemany(
            "INSERT INTO customers (id, name, tier, lifetime_value, preferred_language, home_store_id,"
            " contact_consent, attributes, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    customer_id(i),
                    f"고객{i}",
                    ("basic", "silver", "gold", "vip")[i % 4],
                    (i % 1000) * 10000.0,
                    "ko",
                    f"store-{i % 300}",
                    1,
                    "{}",
                    now,
                    now,
                )
                for i in ids
            ),
        )
        conn.executemany(
            "INSERT INTO customer_identifiers (kind, value, customer_id) VALUES (?,?,?)",
            (
                (kind, value, customer_id(i))
                for i in ids
                for kind, value in (("phone", phone(i)), ("loyalty", f"L{i}"))
            ),
        )
        # Every third customer has some history: 1-4 feedback items, a visit, and the stored
        # signals and summary the service would have written for them.
        history, visits, signals = [], [], []
        for i in ids:
            if i % 3:
                continue
            items = sorted(
                (
                    FeedbackItem(
                        feedback_id=f"fb-{i}-{k}",
                        store_id=f"store-{i % 300}",
                        channel="kiosk",
                        category=CATEGORIES[(i + k) % 5],
                        sentiment="negative" if k % 2 == 0 else "positive",
                        csat=rng.randint(1, 5),
                        nps=None,
                        revisit_intent=k == 1,
                        occurred_at=now - rng.random() * 80 * 86400,
                    )
                    for k in range(1 + i % 4)
                ),
                key=lambda item: item.occurred_at,
            )
            visit = SimpleNamespace(store_id=f"store-{i % 300}", visited_at=now - rng.random() * 60 * 86400)
            history += [
                {
                    **item._asdict(),
                    "customer_id": customer_id(i),
                    "severity": "medium",
                    "excerpt": f"{CATEGORIES[k % 5]} 불만입니다, 연락은 ***{i % 10000:04d} 으로 주세요",
                }
                for k, item in enumerate(items)
            ]
            visits.append((customer_id(i), visit.store_id, visit.visited_at, 12000.0))
            kept = summary.build(items, shape=shape, now=now)
            sig = compute_signals(
                items, customer=None, visits=[visit], settings=settings, now=now, current_id=None
            )
            refresh = [t for t in (sig.refresh_at, summary.expires_at(kept)) if t is not None]
            signals.append(
                (
                    customer_id(i),
                    sig.repeat_issue,
                    sig.score_swing,
                    sig.complaint_count_90d,
                    sig.low_satisfaction,
                    sig.churn_risk,
                    sig.satisfaction_mean,
                    sig.pending_intent_at,
                    json.dumps([r.to_dict() for r in sig.reasons]),
                    min(refresh, default=None),
                    now,
                    json.dumps(kept),
                )
            )
        conn.executemany(
            "INSERT INTO feedback_history (feedback_id, customer_id, store_id, channel, category, sentiment,"
            " severity, csat, nps, revisit_intent, occurred_at, excerpt) VALUES (:feedback_id, :customer_id,"
            " :store_id, :channel, :category, :sentiment, :severity, :csat, :nps, :revisit_intent,"
            " :occurred_at, :excerpt)",
            history,
        )
        conn.executemany(
            "INSERT INTO visits (customer_id, store_id, visited_at, amount) VALUES (?,?,?,?)", visits
        )
        conn.executemany(
            "INSERT INTO customer_signals (customer_id, repeat_issue, score_swing, complaint_count_90d,"
            " low_satisfaction, churn_risk, satisfaction_mean, pending_intent_at, reasons, refresh_at,"
            " updated_at, summary)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            signals,
        )
        conn.commit()
        print(f"  loaded {min(start + batch, count):,} customers", flush=True)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


async def measure(target: str, count: int, calls: int) -> None:
    rng = random.Random(11)
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        await channel.channel_ready()
        cases: tuple[tuple[str, Callable[[int], profile_pb2.GetCustomerContextRequest]], ...] = (
            ("by id", lambda i: profile_pb2.GetCustomerContextRequest(customer_id=customer_id(i))),
            (
                "by phone + current feedback",
                lambda i: profile_pb2.GetCustomerContextRequest(
                    identifiers=common_pb2.CustomerIdentifiers(phone=phone(i)),
                    current_feedback=common_pb2.FeedbackFacts(
                        feedback_id=f"now-{i}",
                        category="wait_time",
                        sentiment="negative",
                        occurred_at_ms=int(time.time() * 1000),
                    ),
                ),
            ),
        )
        for label, request_of in cases:
            for _ in range(200):  # warm-up
                await stub.GetCustomerContext(request_of(rng.randrange(count)), metadata=metadata)
            latencies = []
            for _ in range(calls):
                request = request_of(rng.randrange(count))
                started = time.perf_counter()
                response = await stub.GetCustomerContext(request, metadata=metadata)
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.context.found
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"GetCustomerContext {label}: {calls} calls, "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 < 5 ms)"
            )


# Bumped when what `load` writes changes: a file loaded by an older loader is loaded again.
LOADER_VERSION = 2


def loaded_count(path: Path) -> int:
    """How many customers a previous run left in `path` (0 when the file is new, partial or
    written by another loader version)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT customers FROM bench_loaded WHERE version = ?", (LOADER_VERSION,)
        ).fetchone()
        return int(row[0]) if row else 0
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def mark_loaded(path: Path, count: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE bench_loaded (customers INTEGER NOT NULL, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO bench_loaded VALUES (?, ?)", (count, LOADER_VERSION))
    conn.commit()
    conn.close()


def prepare(path: Path, count: int) -> None:
    """Migrate and load `path`, or reuse it when an earlier run loaded the same count."""
    reuse = loaded_count(path) == count
    if not reuse and path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    database = Database(f"sqlite:///{path}")
    asyncio.run(migrations.upgrade(database, MIGRATIONS, name="profile"))
    asyncio.run(database.dispose())
    if reuse:
        print(f"reusing {path} ({count:,} customers)")
        return
    started = time.perf_counter()
    load(path, count)
    mark_loaded(path, count)
    print(f"loaded {count:,} customers in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="keep the loaded SQLite file here and reuse it on the next run with the same --customers"
        " (e.g. /tmp/voc-bench/profile-1m.db); default: a temporary file, loaded every run",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "profile.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        prepare(path, args.customers)
        grpc_port = free_port()
        env = {
            **os.environ,
            "VOC_PROFILE_DATABASE_URL": f"sqlite:///{path}",
            "VOC_PROFILE_GRPC_PORT": str(grpc_port),
            "VOC_PROFILE_HTTP_PORT": str(free_port()),
            "VOC_INTERNAL_TOKEN": TOKEN,
            "VOC_NATS_URL": f"nats://127.0.0.1:{free_port()}",  # none there: gRPC serves regardless
            "VOC_DATA_DIR": tmp,
            "VOC_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen([sys.executable, "-m", "voc_profile"], env=env)
        try:
            asyncio.run(measure(f"127.0.0.1:{grpc_port}", args.customers, args.calls))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
