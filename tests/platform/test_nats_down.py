"""NATS down: intake still answers 202, the outbox holds the event, and it is published once
NATS is back (DESIGN §3 degraded paths). Shutdown then flushes and closes cleanly."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import nats
import pytest

from tests.conftest import DatabaseFactory
from voc_cli.nats import NatsServer
from voc_cli.supervisor import free_port
from voc_feedback import __main__ as feedback_main
from voc_feedback.models import outbox_table
from voc_feedback.settings import Settings
from voc_platform.runtime import ServiceRuntime


async def test_intake_accepts_while_nats_is_down_and_publishes_later(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    nats_port = free_port()
    settings = Settings(
        http_port=free_port(),
        grpc_port=free_port(),
        database_url=databases.url("nats_down"),
        data_dir=tmp_path,
        nats_url=f"nats://127.0.0.1:{nats_port}",
        admin_token="admin-nats-down",
    )
    runtime = ServiceRuntime(settings, migrations_dir=feedback_main.MIGRATIONS, outbox=outbox_table)
    await runtime.start(feedback_main.build(runtime))
    server: NatsServer | None = None
    try:
        base = f"http://127.0.0.1:{runtime.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503, "not ready without the bus"
            stores = await client.put(  # a key names only stores in the directory
                "/v1/admin/stores",
                json=[{"id": "s1", "name": "s1"}],
                headers={"Authorization": "Bearer admin-nats-down"},
            )
            assert stores.status_code == 200, stores.text
            key = (
                await client.post(
                    "/v1/admin/api-keys",
                    json={"name": "t", "store_ids": ["s1"]},
                    headers={"Authorization": "Bearer admin-nats-down"},
                )
            ).json()
            r = await client.post(
                "/v1/feedback",
                headers={"Authorization": f"Bearer {key['api_key']}"},
                json={"store_id": "s1", "channel": "sms", "text": "No one answered the phone"},
            )
            assert r.status_code == 202
            feedback_id = r.json()["id"]
            assert runtime.relay is not None and await runtime.relay.pending() == 1

            server = NatsServer(store_dir=tmp_path / "nats", port=nats_port, name="late")
            await asyncio.to_thread(server.start)
            await runtime.wait_bus_ready(timeout=30)
            for _ in range(200):
                if await runtime.relay.pending() == 0:
                    break
                await asyncio.sleep(0.05)
            assert await runtime.relay.pending() == 0
            assert (await client.get("/readyz")).status_code == 200

        nc = await nats.connect(server.url)
        try:
            msg = await nc.jetstream().get_last_msg("VOC", "voc.feedback.received")
            assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == feedback_id
        finally:
            await nc.close()
    finally:
        await runtime.stop()
        if server is not None:
            server.stop()
    assert not runtime.bus.connected


@pytest.mark.parametrize("bad", ["http://x", "redis://x", "nats://a:4222,http://b:4222"])
def test_settings_refuse_a_non_nats_url(bad: str) -> None:
    with pytest.raises(ValueError, match="VOC_NATS_URL"):
        Settings(nats_url=bad)


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValueError, match="VOC_ADMIN_TOKEN"):
        Settings(environment="production")
    ok = Settings(
        environment="production",
        admin_token=secrets.token_urlsafe(32),
        internal_token=secrets.token_urlsafe(32),
        follow_up_secret=secrets.token_urlsafe(32),
        jwt_secret=secrets.token_urlsafe(32),  # every service verifies staff tokens (#20)
    )
    assert ok.environment == "production"
