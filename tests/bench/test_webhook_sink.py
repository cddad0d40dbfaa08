"""`make bench BENCH_ARGS=--webhook` (#19): the sink process counts what arrives, and the endpoint
the benchmark registers (subscribed to "*") hears the system's events."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import RunningSystem
from tests.support.system import post_feedback, wait_for
from voc_bench.system import start_webhook_sink


def test_the_benchmarks_webhook_endpoint_hears_the_run(running_system: RunningSystem) -> None:
    async def start() -> tuple[asyncio.subprocess.Process, str]:
        return await start_webhook_sink(running_system.url("notify"), running_system.system.admin_token)

    loop = asyncio.new_event_loop()
    sink, url = loop.run_until_complete(start())
    admin = running_system.admin_headers
    hooks = f"{running_system.url('notify')}/v1/admin/webhooks"
    endpoint = next(
        e for e in httpx.get(hooks, headers=admin).json()["webhooks"] if e["url"] == f"{url}/hook"
    )
    try:
        assert endpoint["events"] == ["*"] and endpoint["status"] == "active"
        sent = post_feedback(
            running_system, {"store_id": "store-gangnam", "channel": "web", "ratings": {"csat": 4}}
        )
        assert sent.status_code == 202, sent.text
        # feedback.received and .classified at least (alert.created follows)
        wait_for(lambda: httpx.get(f"{url}/count").json()["count"] >= 2, timeout=30)
        attempts = httpx.get(f"{hooks}/{endpoint['id']}/deliveries", headers=admin).json()["attempts"]
        assert attempts and {a["status_code"] for a in attempts} == {204}
    finally:
        httpx.delete(f"{hooks}/{endpoint['id']}", headers=admin)
        sink.terminate()
        loop.run_until_complete(sink.wait())
        loop.close()
