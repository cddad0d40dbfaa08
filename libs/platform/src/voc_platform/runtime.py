"""The process shell every service shares: migrate, connect, serve REST + gRPC, consume events,
relay the outbox, and shut down in order on SIGTERM / SIGINT.

Shutdown order: stop taking requests (HTTP, gRPC) -> finish in-flight event handlers -> flush
the outbox to JetStream -> drain the NATS connection -> close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from grpc import aio
from nats.aio.msg import Msg
from sqlalchemy import Table

from voc_platform import grpc as voc_grpc
from voc_platform import metrics, migrations, telemetry
from voc_platform.bus import Bus, ConsumerSpec
from voc_platform.db import Database
from voc_platform.outbox import OutboxRelay
from voc_platform.settings import ServiceSettings
from voc_platform.taxonomy_live import SUBJECT_PUBLISHED as TAXONOMY_SUBJECT
from voc_platform.taxonomy_live import TaxonomyFollower

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]

#: New files 0600, new directories 0700: databases (and their -wal/-shm), keys and stores hold
#: key hashes and customer data, readable by this user only, like the secrets.
PRIVATE_UMASK = 0o077


def keep_data_private(data_dir: Path) -> None:
    """Set the process umask to `PRIVATE_UMASK` and close the data dir to others when this user
    owns it (an operator's `mkdir` leaves it 0755; a mounted volume owned by root is left)."""
    os.umask(PRIVATE_UMASK)
    with contextlib.suppress(OSError):
        if data_dir.is_dir() and data_dir.stat().st_uid == os.getuid():
            data_dir.chmod(0o700)


# The connection pool's gauges: (name, help, the pool's method that reads it); a pool without
# the method (SQLite's in-memory one) has no such gauge.
_POOL_GAUGES = (
    ("voc_db_pool_checked_out_connections", "Database connections in use (checked out).", "checkedout"),
    ("voc_db_pool_size_connections", "The pool's steady size.", "size"),
    (
        "voc_db_pool_overflow_connections",
        "Connections open beyond the pool's size (negative: not yet opened).",
        "overflow",
    ),
)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runtime owns signals: it must stop consumers and flush the outbox after HTTP.
        yield


@dataclass
class ServiceParts:
    """What a service plugs into the shared runtime."""

    app: FastAPI
    grpc_register: Sequence[Callable[[aio.Server], None]] = ()
    grpc_service_names: Sequence[str] = ()
    consumers: Sequence[ConsumerSpec] = ()
    # Plain NATS subscriptions (every replica gets every message), e.g. cache invalidation.
    subscriptions: Sequence[tuple[str, Callable[[Msg], Awaitable[None]]]] = ()
    on_start: Sequence[Hook] = ()
    on_stop: Sequence[Hook] = ()
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    extra_ready: list[Callable[[], bool]] = field(default_factory=list)
    # The service's own gauges read at scrape time (notify: escalation timers due).
    metric_sources: Sequence[metrics.Source] = ()
    # Serve the taxonomy actions publishes, live (`voc_platform.taxonomy_live`): every service
    # that reads categories but does not own them.
    follow_taxonomy: bool = False


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], *, timeout: float = 10.0) -> None:
    """Cancel `tasks` and wait until they end, cancelling again while any runs. On Python 3.11
    `asyncio.wait_for` can swallow a cancellation that lands as its inner call completes (nats-py's
    connect loop, retrying a NATS that is down, then just goes on), so one cancel and an unbounded
    gather could hang a stop for good; this gives up after `timeout`, saying which tasks still run."""
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    if pending:
        log.warning(
            "tasks still running after %.0f s of cancelling: %s",
            timeout,
            sorted(t.get_name() for t in pending),
        )
    for task in tasks:  # what they raised was theirs to log; read, so asyncio does not warn
        if task.done() and not task.cancelled():
            task.exception()


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations_dir: Path,
        outbox: Table | None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.migrations_dir = migrations_dir
        self.database = Database(
            settings.resolved_database_url, group_linger=settings.sqlite_group_linger_ms / 1000
        )
        self.bus = Bus(
            settings.nats_url,
            name=f"voc-{self.name}",
            replicas=settings.nats_stream_replicas,
            security=settings.nats_security(),
            inbox_prefix=f"_INBOX.{self.name}",
        )
        self.relay = OutboxRelay(self.database, outbox, self.bus) if outbox is not None else None
        self.parts: ServiceParts | None = None
        self.http_port = settings.http_port
        self.grpc_port = settings.grpc_port
        self._uvicorn: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._grpc: aio.Server | None = None
        self._health: object | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bus_ready = asyncio.Event()
        self._stopped = asyncio.Event()

    async def migrate(self) -> None:
        await migrations.upgrade(self.database, self.migrations_dir, name=self.name)

    async def start(self, parts: ServiceParts) -> None:
        self.parts = parts
        await self.migrate()
        self._identity_and_audit(parts)
        if parts.follow_taxonomy:  # fetched from actions now and each minute, and on every event
            follower = TaxonomyFollower(self.settings)
            parts.background = [*parts.background, follower.run]
            parts.subscriptions = [*parts.subscriptions, (TAXONOMY_SUBJECT, follower.on_published)]
        for hook in parts.on_start:
            await hook()
        # NATS may be down: REST intake still answers (the outbox holds events), so connecting
        # to the bus happens in the background and the consumers start once it is there.
        self._tasks.append(asyncio.create_task(self._connect_bus(parts), name="bus-connect"))
        server, health_servicer, bound = voc_grpc.create_server(
            port=self.settings.grpc_port,
            host=self.settings.host,
            token=self.settings.internal_token,
            register=parts.grpc_register,
            service_names=parts.grpc_service_names,
            tls=self.settings.grpc_tls(),
        )
        self.grpc_port = bound
        await server.start()
        await voc_grpc.set_serving(health_servicer, parts.grpc_service_names, True)
        self._grpc, self._health = server, health_servicer
        parts.app.state.runtime = self
        parts.app.state.http_metrics.access_log = self.settings.access_log
        config = uvicorn.Config(
            parts.app,
            host=self.settings.host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="none",
            http="httptools",
            timeout_graceful_shutdown=5,
            # X-Forwarded-For only from the proxies named (uvicorn trusts loopback by default).
            proxy_headers=bool(self.settings.trusted_proxy_list),
            forwarded_allow_ips=self.settings.trusted_proxy_list or [],
        )
        self._uvicorn = _Uvicorn(config)
        self._http_task = asyncio.create_task(self._uvicorn.serve(), name="http")
        while not self._uvicorn.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("HTTP server stopped during start")
            await asyncio.sleep(0.01)
        sockets = self._uvicorn.servers[0].sockets if self._uvicorn.servers else []
        if sockets:
            self.http_port = sockets[0].getsockname()[1]
        for job in parts.background:
            self._tasks.append(asyncio.create_task(job(), name=getattr(job, "__name__", "job")))
        # Everything loaded at start (modules, the playbook library, caches) lives for the whole
        # process: move it out of the collector's reach so full collections stay short (tail latency).
        gc.collect()
        gc.freeze()
        log.info(
            "%s started: http=%s grpc=%s db=%s",
            self.name,
            self.http_port,
            self.grpc_port,
            "sqlite" if self.database.sqlite else "postgresql",
        )

    def _identity_and_audit(self, parts: ServiceParts) -> None:
        """What `voc_platform.audit.install` put on the app runs here: the staff revocation
        list (loaded before serving, refreshed, fed by this service's durable consumer of
        voc.staff.sessions_revoked) and the audit log (buffered reads flushed, old entries
        pruned, the buffer written at stop)."""
        state = parts.app.state
        identity = getattr(state, "identity", None)
        audit = getattr(state, "audit", None)
        extra_start: list[Hook] = []
        extra_jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
        extra_stop: list[Hook] = []
        consumers = list(parts.consumers)
        if identity is not None:
            extra_start.append(identity.revocations.refresh)
            extra_jobs.append(identity.revocations.run)
            if getattr(state, "consume_revocations", True):
                consumers.append(identity.revocations.consumer(f"{self.name}-revocations"))
        if audit is not None:
            retention = self.settings.audit_retention_days

            async def prune_audit() -> None:
                await audit.run_pruning(retention_days=retention)

            async def flush_audit() -> None:
                await audit.flush()

            extra_jobs += [audit.run, prune_audit]
            extra_stop.append(flush_audit)
        parts.on_start = [*extra_start, *parts.on_start]
        parts.background = [*parts.background, *extra_jobs]
        parts.on_stop = [*parts.on_stop, *extra_stop]
        parts.consumers = consumers

    async def _connect_bus(self, parts: ServiceParts) -> None:
        delay = 0.2
        while True:
            try:
                await self.bus.connect()
                await self.bus.ensure_streams()
                break
            except Exception as exc:
                log.warning("NATS not reachable (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(Exception):
                    await self.bus.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self.relay is not None:
            self.relay.start()
        for spec in parts.consumers:
            await self.bus.consume(spec)
        for subject, callback in parts.subscriptions:
            assert self.bus.nc is not None
            await self.bus.nc.subscribe(subject, cb=callback)
        self._bus_ready.set()

    async def wait_bus_ready(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._bus_ready.wait(), timeout)

    def metric_sources(self) -> list[metrics.Source]:
        """What `/metrics` reads at scrape time: the bus (connection, consumer lag, dead
        letters), the outbox backlog, the database pool, and the service's own sources."""
        sources = [
            metrics.Source("nats", self.bus.metric_families),
            metrics.Source("db_pool", self._pool_families),
        ]
        if self.relay is not None:
            sources.append(metrics.Source("outbox", self._outbox_families))
        return [*sources, *(self.parts.metric_sources if self.parts else ())]

    async def _outbox_families(self) -> list[metrics.Metric]:
        assert self.relay is not None
        count, oldest = await self.relay.backlog()
        pending = metrics.gauge_family(
            "voc_outbox_pending_events", "Events committed in the outbox and not yet published."
        )
        pending.add_metric([], float(count))
        age = metrics.gauge_family(
            "voc_outbox_oldest_pending_age_seconds",
            "Age of the oldest event not yet published (0 when none is pending).",
        )
        age.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        return [pending, age]

    async def _pool_families(self) -> list[metrics.Metric]:
        """The connection pool's use: checked out against its size. Waits are not measured
        (SQLAlchemy has no event for them); a pool whose checked-out count sits at size plus
        overflow makes callers wait. On SQLite writes queue on the process's write lock."""
        pool: Any = self.database.engine.sync_engine.pool
        families: list[metrics.Metric] = []
        for name, documentation, method in _POOL_GAUGES:
            read = getattr(pool, method, None)
            if callable(read):
                family = metrics.gauge_family(name, documentation)
                family.add_metric([], float(read()))
                families.append(family)
        return families

    def ready(self) -> bool:
        extra = all(check() for check in (self.parts.extra_ready if self.parts else []))
        return self._bus_ready.is_set() and self.bus.connected and extra

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("%s stopping: intake first, then consumers, then the outbox", self.name)
        if self._health is not None and self.parts is not None:
            await voc_grpc.set_serving(self._health, self.parts.grpc_service_names, False)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._http_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 10)
        log.info("%s: HTTP stopped", self.name)
        if self._grpc is not None:
            await self._grpc.stop(grace=3)
        log.info("%s: gRPC stopped", self.name)
        await self.bus.stop_consumers()
        log.info("%s: consumers stopped", self.name)
        await cancel_and_wait(self._tasks)
        if self.parts is not None:
            for hook in self.parts.on_stop:
                with contextlib.suppress(Exception):
                    await hook()
        if self.relay is not None and self.bus.connected:
            await self.relay.stop()
        await self.bus.close()
        await self.database.dispose()
        telemetry.shutdown()
        log.info("%s stopped", self.name)

    async def serve_until_signal(self, parts: ServiceParts) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start(parts)
        await stop.wait()
        await self.stop()


def run_service(
    settings: ServiceSettings,
    build: Callable[[ServiceRuntime], ServiceParts],
    *,
    migrations_dir: Path,
    outbox: Table | None,
) -> None:
    """Entry point body of `python -m voc_<service>`."""
    keep_data_private(settings.data_dir)
    telemetry.setup_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    telemetry.setup(f"voc-{settings.service_name}", otlp_endpoint=settings.otlp_endpoint)

    async def main() -> None:
        runtime = ServiceRuntime(settings, migrations_dir=migrations_dir, outbox=outbox)
        await runtime.serve_until_signal(build(runtime))

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay runnable without it
        asyncio.run(main())
    else:
        uvloop.run(main())
