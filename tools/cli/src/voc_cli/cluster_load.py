"""Load on a running cluster (`cluster.Cluster`): feedback posted across the feedback replicas,
retried on another one like a store app behind a load balancer; a phone registered; and the
scaling benchmark (`python -m voc_cli.cluster bench`, docs/SCALING.md)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from voc_cli.cluster import Cluster, ClusterConfig, PostgresDatabases
from voc_cli.push_emulator import PushEmulator


@dataclass
class LoadResult:
    accepted: list[str]  # feedback ids answered 202
    failed: int  # requests that got no 202 even after retrying on another replica
    retried: int  # requests that were retried on another replica (same Idempotency-Key)
    seconds: float
    #: why the failed ones failed: the last HTTP status each got ("error" when none answered)
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0


COMPLAINTS = (
    "국에서 머리카락이 나왔어요. 직원분도 사과 없이 그냥 가져가셨네요.",
    "The soup was cold and the server ignored us for twenty minutes.",
    "계산대 직원이 너무 불친절했어요. 다시는 안 올 것 같아요.",
    "My order was wrong twice and nobody apologised.",
)


async def post_load(
    feedback_urls: Callable[[], list[str]],
    api_key: str,
    *,
    count: int,
    rate: float | None,
    concurrency: int = 16,
    store_id: str = "store-gangnam",
    tag: str = "",
) -> LoadResult:
    """Post `count` feedback items (paced at `rate`/s, or as fast as `concurrency` allows),
    spread over the live feedback replicas. A request whose replica dies is retried on another
    with the same Idempotency-Key, as a store app behind a load balancer would: a 202 that was
    committed but never answered then replays the same id instead of creating a second item."""
    accepted: list[str] = []
    failed = 0
    retried = 0
    failures: Counter[str] = Counter()
    limit = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    tag = tag or secrets.token_hex(3)

    async def one(client: httpx.AsyncClient, n: int) -> None:
        nonlocal failed, retried
        body = {
            "store_id": store_id,
            "channel": "kiosk",
            "text": f"{COMPLAINTS[n % len(COMPLAINTS)]} #{tag}-{n}",
            "ratings": {"csat": 1},
        }
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"load-{tag}-{n}"}
        last = "error"
        for attempt in range(8):
            urls = feedback_urls()
            url = urls[(n + attempt) % len(urls)]
            try:
                response = await client.post(f"{url}/v1/feedback", json=body, headers=headers)
            except httpx.HTTPError:
                retried += 1
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            if response.status_code == 202:
                accepted.append(response.json()["id"])
                return
            last = str(response.status_code)
            if response.status_code >= 500:
                retried += 1
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            break
        failed += 1
        failures[last] += 1

    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        tasks = []
        for n in range(count):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await limit.acquire()
            task = asyncio.create_task(one(client, n))
            task.add_done_callback(lambda _t: limit.release())
            tasks.append(task)
        await asyncio.gather(*tasks)
    return LoadResult(accepted, failed, retried, time.monotonic() - started, dict(failures))


def register_phone(
    cluster: Cluster, credentials: dict[str, Any], email: str, subscription: dict[str, Any]
) -> None:
    person = next(s for s in credentials["staff"] if s["email"] == email)
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        login = client.post(
            f"{cluster.url('notify')}/v1/auth/login", json={"email": email, "password": person["password"]}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        response = client.post(
            f"{cluster.url('notify')}/v1/devices",
            json=subscription,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()


def bench(
    *, replica_counts: list[int], count: int, concurrency: int, postgres_url: str, data_root: Path
) -> list[dict[str, Any]]:
    """End-to-end throughput (feedback accepted -> decrypted push at the phone) per replica count."""
    results = []
    for replicas in replica_counts:
        databases = PostgresDatabases(postgres_url, prefix="voc_bench")
        emulator = PushEmulator().start()
        data_dir = data_root / f"replicas-{replicas}-{secrets.token_hex(3)}"
        try:
            config = ClusterConfig(
                data_dir=data_dir,
                database_urls=databases.create(),
                replicas=replicas,
                push_allowed_hosts=f"127.0.0.1:{emulator.port}",
            )
            with Cluster(config).running() as cluster:
                credentials = cluster.seed()
                subscription = emulator.new_subscription(label="lead")
                sub_id = emulator.subscription_id(subscription)
                register_phone(cluster, credentials, "minji@gangnam.demo", subscription)
                key = next(s for s in credentials["stores"] if s["id"] == "store-gangnam")["api_key"]
                warmup = 40
                asyncio.run(post_load(lambda: cluster.urls("feedback"), key, count=warmup, rate=None))
                emulator.wait_for_count(warmup, timeout=60, subscription_id=sub_id)
                started = time.monotonic()
                load = asyncio.run(
                    post_load(
                        lambda: cluster.urls("feedback"), key, count=count, rate=None, concurrency=concurrency
                    )
                )
                emulator.wait_for_count(warmup + len(load.accepted), timeout=300, subscription_id=sub_id)
                seconds = time.monotonic() - started
                results.append(
                    {
                        "replicas": replicas,
                        "feedback": len(load.accepted),
                        "intake_per_second": round(load.per_second, 1),
                        "end_to_end_per_second": round(len(load.accepted) / seconds, 1),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
        finally:
            emulator.stop()
            databases.drop()
    return results
