"""The feedback service alone, as a real process, on its own nats-server and a fresh database,
with a low rate limit; tests play notify's part by publishing its events on JetStream."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import pytest
from google.protobuf.message import Message
from sqlalchemy import text

from tests.conftest import DatabaseFactory
from voc_cli.nats import NatsServer
from voc_cli.supervisor import free_port
from voc_platform.db import Database

ADMIN_TOKEN = "feedback-tests-admin-token"
INTERNAL_TOKEN = "feedback-tests-internal-token"
T = TypeVar("T")


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync test code (in its own thread and loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


class FeedbackService:
    def __init__(self, url: str, database_url: str, nats_url: str, grpc_target: str) -> None:
        self.url = url
        self.grpc_target = grpc_target
        self.database_url = database_url
        self.nats_url = nats_url
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def ensure_stores(self, *store_ids: str) -> None:
        """Adds the stores the directory lacks (named by their ids, no area); a key may name only
        stores in the directory. Those already there keep their names and areas."""
        listed = httpx.get(f"{self.url}/v1/admin/stores", headers=self.admin)
        assert listed.status_code == 200, listed.text
        known = {store["id"] for store in listed.json()}
        missing = [
            {"id": store_id, "name": store_id}
            for store_id in dict.fromkeys(store_ids)
            if store_id not in known
        ]
        if missing:
            added = httpx.put(f"{self.url}/v1/admin/stores", json=missing, headers=self.admin)
            assert added.status_code == 200, added.text

    def new_key(self, *store_ids: str, name: str = "test app") -> dict[str, Any]:
        self.ensure_stores(*store_ids)
        response = httpx.post(
            f"{self.url}/v1/admin/api-keys",
            json={"name": name, "store_ids": list(store_ids)},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        body["headers"] = {"Authorization": f"Bearer {body['api_key']}"}
        return body

    def post(self, key: dict[str, Any], body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/feedback", json=body, headers={**key["headers"], **headers})

    def get(self, feedback_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/feedback/{feedback_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def execute(self, sql: str, **params: Any) -> None:
        """A change straight to the service's database (time moved on: a link expired)."""

        async def change() -> None:
            database = Database(self.database_url)
            try:
                async with database.transaction() as session:
                    await session.execute(text(sql), params)
            finally:
                await database.dispose()

        run_async(change)

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value straight from the service's database (to prove what was or was not written)."""

        async def query() -> Any:
            database = Database(self.database_url)
            try:
                async with database.session() as session:
                    return (await session.execute(text(sql), params)).scalar()
            finally:
                await database.dispose()

        return run_async(query)

    def publish(self, subject: str, message: Message, event_id: str) -> None:
        """Publish an event the way another service's outbox relay does."""

        async def send() -> None:
            nc = await nats.connect(self.nats_url)
            try:
                js = nc.jetstream()
                await js.publish(
                    subject,
                    message.SerializeToString(),
                    headers={"Nats-Msg-Id": event_id, "Voc-Event-Type": message.DESCRIPTOR.full_name},
                )
            finally:
                await nc.close()

        run_async(send)


def wait_until(predicate: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 answer with this status; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.fixture(scope="package")
def feedback_service(
    tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory, artifacts: Path
) -> Iterator[FeedbackService]:
    server = NatsServer(store_dir=tmp_path_factory.mktemp("feedback-nats"), port=0, name="voc-feedback-test")
    server.start()
    http_port, grpc_port = free_port(), free_port()
    database_url = databases.url("feedback_alone")
    url = f"http://127.0.0.1:{http_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update(
        {
            "VOC_ENV": "test",
            "VOC_DATA_DIR": str(tmp_path_factory.mktemp("feedback-data")),
            "VOC_NATS_URL": server.url,
            "VOC_ADMIN_TOKEN": ADMIN_TOKEN,
            "VOC_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "VOC_FEEDBACK_DATABASE_URL": database_url,
            "VOC_FEEDBACK_HTTP_PORT": str(http_port),
            "VOC_FEEDBACK_GRPC_PORT": str(grpc_port),
            "VOC_FEEDBACK_PUBLIC_URL": url,
            "VOC_FEEDBACK_FOLLOW_UP_SECRET": "feedback-tests-follow-up-secret",
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "2",
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "40",
            "VOC_MAX_TEXT_CHARS": "3000",
            "VOC_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = artifacts / f"{os.environ.get('VOC_TEST_DATABASE', 'sqlite')}-feedback-alone.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voc_feedback"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"feedback exited with {proc.returncode}; see {log_path}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"feedback not ready; see {log_path}")
                time.sleep(0.1)
            yield FeedbackService(url, database_url, server.url, f"127.0.0.1:{grpc_port}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            server.stop()
