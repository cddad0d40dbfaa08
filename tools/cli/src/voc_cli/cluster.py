"""The distributed shape on one machine: a 3-node JetStream cluster with replicated streams,
PostgreSQL databases, and N processes of each service sharing the work.

Used by the multi-replica test (`tests/deploy/test_multi_replica.py`), by
`python -m voc_cli.cluster up --replicas N` (what `voc up --scale N` runs) and by the scaling
benchmark `python -m voc_cli.cluster bench` (docs/SCALING.md; its load side is `cluster_load`).

Replicas share one database per service and one durable consumer per (service, purpose), so
JetStream hands each event to one replica; the outbox relay, push deliveries and escalation
timers are claimed with `FOR UPDATE SKIP LOCKED`, so replicas never do the same row twice.
That needs PostgreSQL: SQLite has no row locks, so a scaled run refuses SQLite URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import asyncpg
import httpx
import nats

from voc_cli import demo
from voc_cli.nats import NatsServer
from voc_cli.supervisor import (
    PUBLIC_PUSH_HOSTS,
    SERVICES,
    ServiceProcess,
    System,
    SystemConfig,
    default_push_hosts,
    free_port,
)

STREAMS = ("VOC", "VOC_DLQ")
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def _run_async(factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion in its own thread: callers may already be inside a loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


class PostgresDatabases:
    """One fresh PostgreSQL database per service (created, and dropped at the end)."""

    def __init__(self, admin_url: str = DEFAULT_POSTGRES_ADMIN_URL, prefix: str = "voc_cluster") -> None:
        self.admin_url = admin_url
        self.prefix = prefix
        self.created: list[str] = []

    def _admin(self, sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        _run_async(run)

    def create(self) -> dict[str, str]:
        suffix = secrets.token_hex(4)
        base = self.admin_url.rsplit("/", 1)[0]
        urls = {}
        for name in SERVICES:
            db = f"{self.prefix}_{name}_{suffix}"
            self._admin(f'CREATE DATABASE "{db}"')
            self.created.append(db)
            urls[name] = f"{base}/{db}"
        return urls

    def drop(self) -> None:
        for db in self.created:
            with contextlib.suppress(Exception):
                self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.created.clear()


@dataclass
class ClusterConfig:
    data_dir: Path
    database_urls: dict[str, str]  # PostgreSQL, one database per service, shared by its replicas
    replicas: int = 2
    nats_nodes: int = 3
    stream_replicas: int = 3
    push_allowed_hosts: str = PUBLIC_PUSH_HOSTS
    extra_env: dict[str, str] = field(default_factory=dict)
    log_format: str = "json"
    restart: bool = False

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.nats_nodes < 1:
            raise ValueError("replicas and nats_nodes must be at least 1")
        if self.stream_replicas > self.nats_nodes:
            raise ValueError("stream replicas cannot exceed the number of nats-server nodes")
        missing = [name for name in SERVICES if name not in self.database_urls]
        if missing:
            raise ValueError(f"a database URL is needed for {', '.join(missing)}")
        sqlite = [name for name, url in self.database_urls.items() if url.startswith("sqlite")]
        if sqlite and self.replicas > 1:
            raise ValueError(
                "replicas share work through row locks (FOR UPDATE SKIP LOCKED), which SQLite "
                f"lacks: use PostgreSQL for {', '.join(sqlite)}"
            )


@dataclass
class Replica:
    service: str
    index: int
    http_port: int
    grpc_port: int
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def running(self) -> bool:
        return self.process.running


class Cluster:
    """`nats_nodes` clustered nats-servers + `replicas` processes of each service."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.nats_nodes: list[NatsServer] = []
        self.replicas: dict[str, list[Replica]] = {name: [] for name in SERVICES}
        self._lanes: list[System] = []
        self._logs: list[IO[str]] = []
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self.secrets: dict[str, str] = {}

    # ------------------------------------------------------------------ addresses

    @property
    def nats_url(self) -> str:
        """Every node, comma-separated: clients fail over to the next one when a node dies."""
        return ",".join(node.url for node in self.nats_nodes)

    def url(self, service: str, index: int = 0) -> str:
        return self.replicas[service][index].url

    def urls(self, service: str) -> list[str]:
        return [replica.url for replica in self.replicas[service]]

    def live_urls(self, service: str) -> list[str]:
        return [replica.url for replica in self.replicas[service] if replica.running]

    @property
    def admin_token(self) -> str:
        return self.secrets["admin_token"]

    def log_path(self, service: str, index: int) -> Path:
        return self.data_dir / "logs" / f"{service}-{index}.log"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._start_nats()
        ports = [{name: (free_port(), free_port()) for name in SERVICES} for _ in range(self.config.replicas)]
        for index in range(self.config.replicas):
            # Lane i calls lane i's gRPC peers first and fails over to the others (pick_first
            # over a static address list), which spreads the gRPC load across replicas.
            order = [*range(index, self.config.replicas), *range(index)]
            targets = {
                f"VOC_{name.upper()}_GRPC_TARGET": "ipv4:"
                + ",".join(f"127.0.0.1:{ports[i][name][1]}" for i in order)
                for name in SERVICES
            }
            lane = System(
                SystemConfig(
                    data_dir=self.data_dir,
                    nats_url=self.nats_url,
                    ports=ports[index],
                    database_urls=dict(self.config.database_urls),
                    push_allowed_hosts=self.config.push_allowed_hosts,
                    extra_env={**targets, **self.config.extra_env},
                    log_format=self.config.log_format,
                    restart=False,
                )
            )
            self._lanes.append(lane)
            self.secrets = lane.secrets
        # Lane 0 first: it runs the migrations and writes the shared VAPID key; the other lanes
        # then start together against a ready schema.
        for lanes in ([0], list(range(1, self.config.replicas))):
            for index in lanes:
                for name in SERVICES:
                    self._start_replica(name, index, ports[index][name])
            self.wait_ready(timeout, lanes=lanes)
        self.replicate_streams()
        if self.config.restart:
            self._watch = threading.Thread(target=self._supervise, daemon=True, name="cluster-supervise")
            self._watch.start()

    def _start_nats(self) -> None:
        count = self.config.nats_nodes
        client_ports = [free_port() for _ in range(count)]
        cluster_ports = [free_port() for _ in range(count)]
        for i in range(count):
            node = NatsServer(
                store_dir=self.data_dir / f"nats-{i}",
                port=client_ports[i],
                name=f"voc-nats-{i}",
                cluster=(cluster_ports[i], [p for j, p in enumerate(cluster_ports) if j != i])
                if count > 1
                else None,
                log_file=self.data_dir / "logs" / f"nats-{i}.log",
            )
            node.start()
            self.nats_nodes.append(node)
        self._wait_jetstream(timeout=30.0)

    def _wait_jetstream(self, timeout: float) -> None:
        """A clustered JetStream answers only once its meta group has elected a leader."""

        async def probe() -> None:
            deadline = time.monotonic() + timeout
            nc = await nats.connect(servers=self.nats_url.split(","), connect_timeout=2)
            try:
                js = nc.jetstream(timeout=2)
                while True:
                    try:
                        await js.account_info()
                        return
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
            finally:
                await nc.close()

        _run_async(probe)

    def _start_replica(self, name: str, index: int, ports: tuple[int, int]) -> Replica:
        log = self.log_path(name, index).open("a")
        self._logs.append(log)
        env = self._lanes[index].env_for(name)
        existing = next((r for r in self.replicas[name] if r.index == index), None)
        if existing is not None:
            existing.process.env, existing.process.log = env, log
            existing.process.start()
            return existing
        replica = Replica(name, index, ports[0], ports[1], ServiceProcess(name, env, log))
        self.replicas[name].append(replica)
        replica.process.start()
        return replica

    def wait_ready(self, timeout: float = 90.0, lanes: list[int] | None = None) -> None:
        wanted = [r for rs in self.replicas.values() for r in rs if lanes is None or r.index in lanes]
        deadline = time.monotonic() + timeout
        pending = {(r.service, r.index): r for r in wanted}
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while pending:
                for key, replica in list(pending.items()):
                    if not replica.running and not self.config.restart:
                        raise RuntimeError(f"{key[0]}-{key[1]} exited during start:\n{self.log_tail(*key)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{replica.url}/readyz").status_code == 200:
                            del pending[key]
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {s}-{i}\n{self.log_tail(s, i)}" for s, i in pending)
                    raise TimeoutError(f"not ready: {sorted(pending)}\n{tails}")
                if pending:
                    time.sleep(0.1)

    def log_tail(self, service: str, index: int, lines: int = 30) -> str:
        path = self.log_path(service, index)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def replicate_streams(self, timeout: float = 30.0) -> None:
        """Raise the streams (and with them their consumers) to `stream_replicas` copies and wait
        until every copy is current. Services create the streams with one replica today (see
        docs/SCALING.md, 'stream replicas'), so this runs after they are up."""
        wanted = self.config.stream_replicas

        async def run() -> None:
            nc = await nats.connect(servers=self.nats_url.split(","), connect_timeout=2)
            try:
                js = nc.jetstream(timeout=5)
                deadline = time.monotonic() + timeout
                for name in STREAMS:
                    info = await js.stream_info(name)
                    if (info.config.num_replicas or 1) != wanted:
                        info.config.num_replicas = wanted
                        await js.update_stream(info.config)
                    while True:
                        info = await js.stream_info(name)
                        peers = info.cluster.replicas if info.cluster and info.cluster.replicas else []
                        if wanted == 1 or (len(peers) == wanted - 1 and all(p.current for p in peers)):
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"stream {name} did not reach {wanted} current replicas")
                        await asyncio.sleep(0.2)
            finally:
                await nc.close()

        _run_async(run)

    def stream_report(self) -> dict[str, Any]:
        """Replicas and leader of each stream and consumer (for tests and the operator)."""

        async def run() -> dict[str, Any]:
            nc = await nats.connect(servers=self.nats_url.split(","), connect_timeout=2)
            try:
                js = nc.jetstream(timeout=5)
                report: dict[str, Any] = {}
                for name in STREAMS:
                    info = await js.stream_info(name)
                    report[name] = {
                        "replicas": info.config.num_replicas,
                        "leader": info.cluster.leader if info.cluster else None,
                        "messages": info.state.messages,
                        "consumers": {},
                    }
                    for consumer in await js.consumers_info(name):
                        peers = consumer.cluster.replicas if consumer.cluster else None
                        report[name]["consumers"][consumer.name] = {
                            "copies": 1 + len(peers or []),
                            "pending": consumer.num_pending,
                            "ack_pending": consumer.num_ack_pending,
                        }
                return report
            finally:
                await nc.close()

        result: dict[str, Any] = _run_async(run)
        return result

    def kill_replica(self, service: str, index: int) -> None:
        """SIGKILL: a crash, not a graceful stop (nothing gets flushed)."""
        self.replicas[service][index].process.kill()

    def kill_nats_node(self, index: int) -> None:
        self.nats_nodes[index].kill()

    def _supervise(self) -> None:
        backoff: dict[tuple[str, int], float] = {}
        while not self._stopping.wait(0.5):
            for name, replicas in self.replicas.items():
                for replica in replicas:
                    if replica.running or self._stopping.is_set():
                        continue
                    key = (name, replica.index)
                    delay = backoff.get(key, 0.5)
                    print(f"[voc] {name}-{replica.index} exited; restarting in {delay:.1f}s", file=sys.stderr)
                    if self._stopping.wait(delay):
                        return
                    replica.process.restarts += 1
                    self._start_replica(name, replica.index, (replica.http_port, replica.grpc_port))
                    backoff[key] = min(delay * 2, 10.0)
                    # A starting replica re-creates the streams with one copy: raise them again.
                    with contextlib.suppress(Exception):
                        self.wait_ready(60.0, lanes=[replica.index])
                        self.replicate_streams()

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        everyone = [r for rs in self.replicas.values() for r in rs]
        for replica in everyone:
            replica.process.terminate()
        for replica in everyone:
            replica.process.wait(timeout)
        for node in self.nats_nodes:
            node.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()

    @contextlib.contextmanager
    def running(self, timeout: float = 90.0) -> Iterator[Cluster]:
        try:
            self.start(timeout)
            yield self
        finally:
            self.stop()

    def seed(self) -> dict[str, Any]:
        urls = {name: self.url(name) for name in SERVICES}
        credentials: dict[str, Any] = demo.seed(
            urls=urls,
            admin_token=self.admin_token,
            credentials_path=self.data_dir / "demo-credentials.json",
        )
        return credentials


def run_up(*, data_dir: Path, replicas: int, postgres_url: str | None, seed: bool = True) -> int:
    """`voc up --scale N`: the cluster until Ctrl-C. With no VOC_<SERVICE>_DATABASE_URL set,
    fresh databases are created on `postgres_url` (and kept: this is a running system)."""
    urls = {
        name: os.environ[f"VOC_{name.upper()}_DATABASE_URL"]
        for name in SERVICES
        if os.environ.get(f"VOC_{name.upper()}_DATABASE_URL")
    }
    if len(urls) < len(SERVICES):
        urls = PostgresDatabases(postgres_url or DEFAULT_POSTGRES_ADMIN_URL, prefix="voc").create()
    cluster = Cluster(
        ClusterConfig(
            data_dir=data_dir.resolve(),
            database_urls=urls,
            replicas=replicas,
            push_allowed_hosts=default_push_hosts(),
            log_format="text",
            restart=True,
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cluster.start()
        credentials = cluster.seed() if seed else {}
        print(f"\nFrontline VoC: {replicas} replicas per service, {len(cluster.nats_nodes)} nats-servers")
        print(f"  nats      {cluster.nats_url}")
        for name in SERVICES:
            print(f"  {name:<9} {'  '.join(cluster.urls(name))}")
        if credentials:
            print(f"  credentials in {cluster.data_dir / 'demo-credentials.json'}")
        print("Ctrl-C stops everything.", flush=True)
        stop.wait()
    finally:
        cluster.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voc_cli.cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run N replicas per service on a 3-node JetStream cluster")
    up.add_argument("--replicas", type=int, default=2)
    up.add_argument("--data-dir", type=Path, default=Path("./var/cluster"))
    up.add_argument("--postgres", default=DEFAULT_POSTGRES_ADMIN_URL, help="admin URL for new databases")
    up.add_argument("--no-seed", action="store_true")
    b = sub.add_parser("bench", help="end-to-end throughput for each replica count")
    b.add_argument("--replicas", default="1,2", help="comma-separated replica counts")
    b.add_argument("--count", type=int, default=600)
    b.add_argument("--concurrency", type=int, default=32)
    b.add_argument("--postgres", default=DEFAULT_POSTGRES_ADMIN_URL)
    b.add_argument("--data-dir", type=Path, default=Path("./var/bench-cluster"))
    args = parser.parse_args(argv)
    if args.command == "up":
        return run_up(
            data_dir=args.data_dir, replicas=args.replicas, postgres_url=args.postgres, seed=not args.no_seed
        )
    from voc_cli.cluster_load import bench  # the load side imports this module

    results = bench(
        replica_counts=[int(x) for x in args.replicas.split(",")],
        count=args.count,
        concurrency=args.concurrency,
        postgres_url=args.postgres,
        data_root=args.data_dir,
    )
    if len(results) > 1 and results[0]["end_to_end_per_second"]:
        ratio = results[-1]["end_to_end_per_second"] / results[0]["end_to_end_per_second"]
        print(f"throughput ratio {results[-1]['replicas']} vs {results[0]['replicas']} replicas: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
