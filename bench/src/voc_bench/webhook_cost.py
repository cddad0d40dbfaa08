"""Cost of webhook delivery (#19) in notify's process: ``python -m voc_bench.webhook_cost``.

On a migrated notify database (SQLite in process), one endpoint subscribed to every type at
`voc_bench.webhook_sink` (its own process, answering 204), `--events` feedback events enqueued
(two deliveries each, `feedback.received` and `feedback.classified`); then the real
`WebhookDispatcher` runs its loop until none is pending. Prints this process's CPU per delivery
(the leases, the signed sends (`webhooks.client`), the attempts recorded) and the wall time, the best
of `--repeat` rounds, so other work on a shared machine counts less. `make bench --webhook`
measures the same work next to the alert path.

    uv run python -m voc_bench.webhook_cost [--events 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop
from sqlalchemy import func, select

from voc.events.v1 import events_pb2
from voc_cli.supervisor import free_port
from voc_notify import alerts
from voc_notify.models import WebhookDelivery
from voc_notify.schemas import WebhookIn
from voc_notify.settings import Settings
from voc_notify.webhooks import registry
from voc_notify.webhooks.dispatch import WebhookDispatcher
from voc_notify.webhooks.enqueue import enqueue_sync
from voc_notify.webhooks.sender import WebhookSender
from voc_notify.webhooks.signing import SecretBox
from voc_notify.webhooks.targets import WebhookTargets
from voc_platform import dbsync, migrations
from voc_platform.db import Database
from voc_platform.dbsync import Reader

MIGRATIONS = Path(alerts.__file__).parent / "migrations"


async def _sink(port: int) -> asyncio.subprocess.Process:
    sink = await asyncio.create_subprocess_exec(sys.executable, "-m", "voc_bench.webhook_sink", str(port))
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(100):
            try:
                await client.get(f"http://127.0.0.1:{port}/count")
                return sink
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    sink.terminate()
    raise RuntimeError("the webhook sink did not start")


def _enqueue(reader: Reader, events: list[events_pb2.FeedbackReceived]) -> int:
    return enqueue_sync(reader, [("voc.feedback.received", e) for e in events], now=time.time())


async def _pending(database: Database) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
        )
    return int(count or 0)


async def one_round(events: int, port: int) -> tuple[int, float, float]:
    """(deliveries, CPU seconds, wall seconds) of one round on a fresh database."""
    database = Database(f"sqlite:///{tempfile.mkdtemp(prefix='voc-webhook-cost-')}/notify.db")
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    settings = Settings(webhook_allowed_hosts="127.0.0.1:*")
    sender = WebhookSender(WebhookTargets(settings.allowed_webhook_hosts()))
    await registry.create_endpoint(
        database,
        spec=WebhookIn(url=f"http://127.0.0.1:{port}/hook", events=["*"]),
        targets=sender.targets,
        box=SecretBox.of(settings),
    )
    batch: list[events_pb2.FeedbackReceived] = []
    deliveries = 0
    for i in range(events):
        event = events_pb2.FeedbackReceived(text="-", received_at_ms=int(time.time() * 1000))
        event.facts.feedback_id, event.facts.store_id, event.facts.channel = f"fb-{i}", "s1", "kiosk"
        batch.append(event)
        if len(batch) == 100 or i == events - 1:
            deliveries += await dbsync.write(database, _enqueue, batch)
            batch = []
    dispatcher = WebhookDispatcher(database, sender, settings)
    cpu, wall = time.process_time(), time.perf_counter()
    loop = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(36000):  # an hour at most
            if not await _pending(database):
                break
            await asyncio.sleep(0.1)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await dispatcher.aclose()
        await sender.aclose()
        await database.dispose()
    return deliveries, cpu, wall


async def run(events: int, repeat: int) -> list[tuple[int, float, float]]:
    """Each round's (deliveries, CPU seconds, wall seconds)."""
    port = free_port()
    sink = await _sink(port)
    try:
        return [await one_round(events, port) for _ in range(repeat)]
    finally:
        sink.terminate()
        await sink.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voc_bench.webhook_cost", description=__doc__)
    parser.add_argument("--events", type=int, default=1000, help="feedback events (two deliveries each)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rounds = uvloop.run(run(args.events, args.repeat))
    deliveries, cpu, wall = min(rounds, key=lambda r: r[1])
    print(
        f"{deliveries} deliveries to one endpoint: {1000 * cpu / deliveries:.3f} ms of CPU each "
        f"(best of {args.repeat}; all: {', '.join(f'{1000 * r[1] / r[0]:.3f}' for r in rounds)}), "
        f"{deliveries / wall:.0f} deliveries/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
