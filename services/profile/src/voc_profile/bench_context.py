"""Benchmark: GetCustomerContext p50/p99 over gRPC with 1,000,000 customers loaded.

Loads customers, identifiers, stored signals, feedback history and visits into a fresh SQLite
file with plain sqlite3 bulk inserts (minutes, not hours), starts the real profile service on it
(`python -m voc_profile`, no NATS needed for gRPC), then calls GetCustomerContext sequentially
for random customers, by id and by phone (what notify sends). Target: p99 < 5 ms.

    uv run python -m voc_profile.bench_context [--customers 1000000] [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

from voc.common.v1 import common_pb2
from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform import migrations
from voc_platform.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
TOKEN = "bench-internal-token"  # noqa: S105 - a throwaway local server
CATEGORIES = ("food_quality", "wait_time", "staff_attitude", "cleanliness", "price")


def customer_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def phone(i: int) -> str:
    return f"+8210{i // 10000 + 1000:04d}{i % 10000:04d}"


def load(path: Path, count: int) -> None:
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
        # Every third customer has some history: 1-4 feedback items, a visit, stored signals.
        history = [i for i in ids if i % 3 == 0]
        conn.executemany(
            "INSERT INTO feedback_history (feedback_id, customer_id, store_id, channel, category, sentiment,"
            " severity, csat, nps, revisit_intent, occurred_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    f"fb-{i}-{k}",
                    customer_id(i),
                    f"store-{i % 300}",
                    "kiosk",
                    CATEGORIES[(i + k) % 5],
                    "negative" if k % 2 == 0 else "positive",
                    "medium",
                    rng.randint(1, 5),
                    None,
                    k == 1,
                    now - rng.random() * 80 * 86400,
                )
                for i in history
                for k in range(1 + i % 4)
            ),
        )
        conn.executemany(
            "INSERT INTO visits (customer_id, store_id, visited_at, amount) VALUES (?,?,?,?)",
            ((customer_id(i), f"store-{i % 300}", now - rng.random() * 60 * 86400, 12000.0) for i in history),
        )
        conn.executemany(
            "INSERT INTO customer_signals (customer_id, repeat_issue, score_swing, complaint_count_90d,"
            " low_satisfaction, churn_risk, satisfaction_mean, pending_intent_at, reasons, refresh_at,"
            " updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ((customer_id(i), 0, 0, (1 + i % 4 + 1) // 2, 0, 0, 3.0, None, "[]", None, now) for i in history),
        )
        conn.commit()
        print(f"  loaded {min(start + batch, count):,} customers", flush=True)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.db"
        database = Database(f"sqlite:///{path}")
        asyncio.run(migrations.upgrade(database, MIGRATIONS, name="profile"))
        asyncio.run(database.dispose())
        started = time.perf_counter()
        load(path, args.customers)
        print(f"loaded {args.customers:,} customers in {time.perf_counter() - started:.0f} s")
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
