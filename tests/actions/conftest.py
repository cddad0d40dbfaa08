"""Two actions replicas in this process, sharing one database and the session's nats-server:
what a deployment with N stateless replicas looks like, with real REST, gRPC and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import DatabaseFactory
from voc.actions.v1 import actions_pb2_grpc
from voc_actions import __main__ as actions_main
from voc_actions import publishing
from voc_actions.live import LiveLibrary
from voc_actions.models import outbox_table
from voc_actions.settings import Settings
from voc_cli.nats import NatsServer
from voc_platform.grpc import client_channel
from voc_platform.runtime import ServiceRuntime

ADMIN_TOKEN = "actions-test-admin-token"
INTERNAL_TOKEN = "actions-test-internal-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Replica:
    runtime: ServiceRuntime
    client: httpx.AsyncClient
    channel: aio.Channel
    stub: actions_pb2_grpc.ActionsServiceStub

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.runtime.grpc_port}"

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET as the admin token unless `headers` says otherwise (`{}`: no token)."""
        return await self.client.get(f"{self.url}{path}", headers=ADMIN if headers is None else headers)

    async def publish(self, files: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.put(
            f"{self.url}/v1/playbooks", json={"files": files}, headers=ADMIN if headers is None else headers
        )

    async def lookup(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST as the admin token unless `headers` says otherwise (`{}`: no token)."""
        return await self.client.post(
            f"{self.url}/v1/plans:lookup", json=body, headers=ADMIN if headers is None else headers
        )

    async def live_set(self) -> dict[str, Any]:
        """The replica's served library: publication id and {playbook id: active version}."""
        body = (await self.get("/v1/playbooks")).json()
        return {
            "publication_id": body["publication_id"],
            "versions": {p["id"]: p["version"] for p in body["playbooks"]},
        }


@dataclass
class Replicas:
    a: Replica
    b: Replica
    database_url: str


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll an async condition until it is truthy (the condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def unique_id(prefix: str) -> str:
    """A playbook id no other test uses, so tests sharing the replicas stay independent."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def playbook_yaml(
    playbook_id: str,
    *,
    version: int = 1,
    touchpoint: str | None = None,
    category: str = "food_quality",
    title_en: str = "Test playbook",
    extra_when: str = "",
) -> str:
    """A valid playbook. ``touchpoint`` (default: the id) keeps it from matching other tests'
    facts: a playbook only wins for lookups that carry that touchpoint."""
    tp = touchpoint or playbook_id
    return (
        f"id: {playbook_id}\n"
        f"version: {version}\n"
        f'title: {{ko: "테스트 플레이북 v{version}", en: "{title_en} v{version}"}}\n'
        "when:\n"
        f"  category: {category}\n"
        f"  touchpoint: {tp}\n"
        f"{extra_when}"
        "priority: urgent\n"
        "notify: {roles: [shift_lead]}\n"
        "escalate:\n"
        "  - {after: 5m, roles: [store_manager]}\n"
        "sla: {ack: 2m, resolve: 20m}\n"
        "steps:\n"
        "  - {ko: '{customer.name}님께 사과한다', en: 'Apologise to {customer.name}', role: shift_lead}\n"
        "  - {ko: 새로 만들어 드린다, en: Remake the dish}\n"
        "script: {ko: '{customer.name}님, 죄송합니다.', en: '{customer.name}, we are sorry.'}\n"
        "compensation: {max_amount: 15000, currency: KRW, authority: shift_lead}\n"
    )


async def _start_replica(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, migrations_dir=actions_main.MIGRATIONS, outbox=outbox_table)
    await runtime.start(actions_main.build(runtime))
    await runtime.wait_bus_ready()
    return runtime


@pytest.fixture(scope="session")
def actions_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """The replicas' own nats-server: the taxonomy versions they publish (numbered by their own
    database) must not reach the session's running system, whose services share `nats_server`
    and would take a foreign version 5 over their own actions' version 3."""
    server = NatsServer(store_dir=tmp_path_factory.mktemp("actions-nats"), port=0, name="voc-test-actions")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def actions_replicas(
    actions_nats: NatsServer, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    data_dir: Path = tmp_path_factory.mktemp("actions")
    database_url = databases.url("actions_replicas")

    def settings() -> Settings:
        return Settings(
            http_port=0,
            grpc_port=0,
            database_url=database_url,
            data_dir=data_dir,
            nats_url=actions_nats.url,
            admin_token=ADMIN_TOKEN,
            internal_token=INTERNAL_TOKEN,
        )

    # One after the other: the first seeds the bundled library, the second finds it there.
    runtimes = [await _start_replica(settings())]
    runtimes.append(await _start_replica(settings()))
    replicas: list[Replica] = []
    try:
        for runtime in runtimes:
            channel = client_channel(f"127.0.0.1:{runtime.grpc_port}", token=INTERNAL_TOKEN, timeout=5)
            replicas.append(
                Replica(
                    runtime,
                    httpx.AsyncClient(timeout=10),
                    channel,
                    actions_pb2_grpc.ActionsServiceStub(channel),
                )
            )
        yield Replicas(replicas[0], replicas[1], database_url)
    finally:
        for replica in replicas:
            await replica.client.aclose()
            await replica.channel.close()
        for runtime in reversed(runtimes):
            with contextlib.suppress(Exception):
                await runtime.stop()


class PublishRace:
    """Requests that publish at the same moment: each reads the library it works from, then waits
    until every one has read it before any takes the publish lock. The replicas share this
    process's event loop, so without it "parallel" requests reach the handler tens of
    milliseconds apart, often after the first one committed: a race that did not happen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = 0
        self._racing = False  # only the calls of `run` wait for each other
        self._go = asyncio.Event()
        real = publishing.latest_library

        async def gated(session: AsyncSession, live: LiveLibrary) -> LiveLibrary:
            # The caller's own read comes in a fresh session; the one under the publish lock in
            # the transaction that took it.
            own_read = self._racing and not session.in_transaction()
            found = await real(session, live)
            if own_read:
                self.read += 1
                await self._go.wait()
            return found

        monkeypatch.setattr(publishing, "latest_library", gated)

    async def run(self, calls: list[Awaitable[httpx.Response]]) -> list[httpx.Response]:
        async def start_together() -> None:
            await wait_until(self._all_read(len(calls)), timeout=20)
            self._go.set()

        async def together() -> list[httpx.Response]:
            replies, _ = await asyncio.gather(asyncio.gather(*calls), start_together())
            return replies

        self.read, self._racing, self._go = 0, True, asyncio.Event()
        try:
            return await together()
        finally:
            self._racing = False
            self._go.set()

    def _all_read(self, n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return self.read >= n

        return check


@pytest.fixture
def publish_race(monkeypatch: pytest.MonkeyPatch) -> PublishRace:
    return PublishRace(monkeypatch)
