"""`voc up`: the whole system on one machine, with demo data, until Ctrl-C.

The services run with the caller's environment (`VOC_*` overrides honoured, see
`supervisor.System.env_for`); the first lines say which settings differ from the defaults. A
service that refuses its configuration stops `voc up` with that service's one-line reason."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voc_cli import demo, ops, settings_report
from voc_cli.supervisor import (
    DEFAULT_PORTS,
    SERVICES,
    NotReady,
    ServiceFailed,
    System,
    SystemConfig,
    can_listen,
    default_push_hosts,
    state_file,
)
from voc_cli.supervisor import port_setting as _port_setting
from voc_platform.settings import nats_url_problem


def port_setting(name: str, default: int) -> int:
    """A port from the environment; an invalid one stops `voc up` with one line naming it."""
    return _port_setting(name, default, command="voc up: refusing to start")


def nats_unreachable(nats_url: str, *, timeout: float = 3.0) -> str | None:
    """Why no server of `nats_url` (VOC_NATS_URL, comma-separated) takes a TCP connection, or
    None when one does. Only the socket: credentials and TLS are the services' to try. Without
    this, every service waits out the readiness wait retrying (they must, in a cluster where
    NATS may come up after them) and `voc up` gives up after a minute."""
    if (problem := nats_url_problem(nats_url)) is not None:
        return problem  # an http:// URL would otherwise read as "nothing listens"
    causes = []
    for server in (s.strip() for s in nats_url.split(",") if s.strip()):
        parts = urlsplit(server)
        try:
            port = parts.port or 4222
            with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
                return None
        except (OSError, ValueError) as error:
            causes.append(f"{server}: {getattr(error, 'strerror', None) or error}")
    return (
        f"VOC_NATS_URL: no NATS server takes a connection ({'; '.join(causes)}); start it, or unset "
        "VOC_NATS_URL for the nats-server voc up starts"
    )


def unusable_host(host: str) -> str | None:
    """Why the servers cannot listen on VOC_HOST at all (not an address of this machine, not an
    address), or None; a busy port is `can_listen`'s to say."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host.strip("[]"), 0))
        except (OSError, ValueError) as error:
            cause = getattr(error, "strerror", None) or error
            return (
                f"VOC_HOST={host!r}: the services cannot listen there ({cause}); give an address "
                "of this machine, 127.0.0.1 or 0.0.0.0"
            )
    return None


def refusal(ports: dict[str, int], *, nats_url: str | None) -> str | None:
    """Why `voc up` cannot start with these settings, before it starts anything (else each service
    would fail in its own log and `voc up` would give up on it after its restarts)."""
    replicas = os.environ.get("VOC_NATS_STREAM_REPLICAS", "1").strip() or "1"
    if not (replicas.isdigit() and int(replicas) > 0):
        return f"VOC_NATS_STREAM_REPLICAS={replicas!r}: a whole number of copies (1, or 3 on a cluster)"
    if nats_url is None and replicas != "1":
        return (
            f"VOC_NATS_STREAM_REPLICAS={replicas} needs a NATS cluster, and the nats-server voc up "
            "starts is one node: use `voc up --scale 2` or give VOC_NATS_URL of a cluster"
        )
    if nats_url is not None and (why := nats_unreachable(nats_url)) is not None:
        return why
    twice = {port for port, uses in Counter(ports.values()).items() if uses > 1}
    if twice:
        names = [f"{name}={port}" for name, port in ports.items() if port in twice]
        return f"one port for two listeners: {', '.join(names)}; give each its own"
    host = os.environ.get("VOC_HOST", "").strip() or "127.0.0.1"
    if (why := unusable_host(host)) is not None:
        return why
    # The services listen on VOC_HOST; the nats-server voc up starts on loopback only.
    busy = [
        f"{name} {port}"
        for name, port in ports.items()
        if not can_listen("127.0.0.1" if name == "VOC_NATS_PORT" else host, port)
    ]
    if busy:
        return (
            f"{', '.join(busy)} {'is' if len(busy) == 1 else 'are'} in use (another program listens "
            "there, or an outgoing connection holds it); pick free ports, below the ephemeral range "
            "(cat /proc/sys/net/ipv4/ip_local_port_range)"
        )
    return None


def last_words(system: System, exc: NotReady) -> list[str]:
    """What each service that never got ready said last (an unreachable NATS, a seed file that
    is not one), so the cause is on the terminal and not only in its log."""
    return [f"[voc]   {name} said last: {system.last_words(name)[:300]}" for name in exc.names]


def run(*, data_dir: Path, seed: bool = True) -> int:
    ports = {
        name: (
            port_setting(f"VOC_{name.upper()}_HTTP_PORT", DEFAULT_PORTS[name][0]),
            port_setting(f"VOC_{name.upper()}_GRPC_PORT", DEFAULT_PORTS[name][1]),
        )
        for name in SERVICES
    }
    port_setting("VOC_DEMO_PHONE_PORT", 8049)
    port_setting("VOC_DEMO_INBOX_PORT", 8025)
    databases = {
        name: os.environ[f"VOC_{name.upper()}_DATABASE_URL"]
        for name in SERVICES
        if os.environ.get(f"VOC_{name.upper()}_DATABASE_URL")
    }
    config = SystemConfig(
        data_dir=data_dir.resolve(),
        nats_url=os.environ.get("VOC_NATS_URL") or None,
        nats_port=port_setting("VOC_NATS_PORT", 4230),
        ports=ports,
        database_urls=databases,
        push_allowed_hosts=default_push_hosts(),
        state_file=state_file(data_dir.resolve()),
    )
    wanted = {
        f"VOC_{n.upper()}_{kind}_PORT": p
        for n, pair in ports.items()
        for kind, p in zip(("HTTP", "GRPC"), pair, strict=True)
    }
    if config.nats_url is None:
        wanted["VOC_NATS_PORT"] = config.nats_port
    running = ops.read_state(config.data_dir).get("pid")
    if running and running != os.getpid() and ops.pid_alive(running):
        print(
            f"[voc] cannot start: voc up already runs from {config.data_dir} (pid {running}); "
            "`voc status` shows it, Ctrl-C in its terminal stops it",
            file=sys.stderr,
            flush=True,
        )
        return 1
    if (why := refusal(wanted, nats_url=config.nats_url)) is not None:
        print(f"[voc] cannot start: {why}", file=sys.stderr, flush=True)
        return 1
    system = System(config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    what = ", ".join(SERVICES) if config.nats_url else f"nats-server and {', '.join(SERVICES)}"
    print(f"[voc] starting {what} (data in {config.data_dir})", flush=True)
    print("\n".join(settings_report.report(os.environ, defaults=system.defaults())), flush=True)
    print(settings_report.follow_up_line(os.environ), flush=True)
    status = 0
    try:
        try:
            system.start()
        except ServiceFailed:  # the supervisor has said which service and why, once
            print("[voc] cannot start: a service was given up on (above)", file=sys.stderr, flush=True)
            return 1
        except (TimeoutError, RuntimeError) as exc:  # nats-server exited, a service never ready
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"[voc] cannot start: {first} (logs: {config.data_dir / 'logs'})", file=sys.stderr, flush=True
            )
            if isinstance(exc, NotReady):
                print("\n".join(last_words(system, exc)), file=sys.stderr, flush=True)
            return 1
        urls = {name: system.url(name) for name in ("feedback", "profile", "actions", "notify")}
        creds_path = config.data_dir / "demo-credentials.json"
        creds: dict[str, Any] = (
            demo.seed(urls=urls, admin_token=system.admin_token, credentials_path=creds_path, feedback=True)
            if seed
            else {}
        )
        print_banner(system, creds, creds_path)
        while not stop.wait(0.5):
            if system.failed.is_set():
                print("[voc] a service was given up on (above); stopping", file=sys.stderr, flush=True)
                status = 1
                break
    finally:
        print("\n[voc] stopping: services first (they flush their outboxes), then nats-server", flush=True)
        system.stop()
        print("[voc] stopped", flush=True)
    return status


def print_banner(system: System, creds: dict[str, Any], creds_path: Path) -> None:
    lines = ["", "Frontline VoC is running.", ""]
    for name in ("feedback", "profile", "actions", "notify"):
        lines.append(f"  {name:<9} {system.url(name)}   gRPC {system.grpc_target(name)}")
    lines.append(f"  nats      {system.nats_url}")
    lines += [
        "",
        f"  staff app  {system.url('notify')}/",
        f"  console    {system.url('feedback')}/dashboard   (a staff login below, e.g. cx@hq.demo)",
        f"  admin token  {system.admin_token}   (automation over the API; the console never takes it)",
        "",
    ]
    if creds:
        lines.append("  store API keys:")
        for store in creds["stores"]:
            lines.append(f"    {store['id']:<15} {store['name']:<16} {store['api_key']}")
        lines.append("  staff logins:")
        for person in creds["staff"]:
            lines.append(f"    {person['role']:<14} {person['email']:<24} {person['password']}")
        lines += [
            "",
            f"  all of this is in {creds_path}",
            "  logs: " + str(system.config.data_dir / "logs"),
            "",
            "  try it (README, 'Two-minute try'):",
            "    .venv/bin/voc demo-phone --email minji@gangnam.demo   # a phone that prints pushes",
            "    .venv/bin/voc demo-feedback                           # post a complaint",
            "    .venv/bin/voc demo-inbox                              # a mailbox for follow-up mail",
            "",
            "Ctrl-C stops everything.",
        ]
    print("\n".join(lines), flush=True)


def admin_target(
    url: str | None, token: str | None, *, service: str, data_dir: str | None
) -> tuple[str, str]:
    """A service's URL and the admin token for an admin call: the flags, else $VOC_ADMIN_TOKEN,
    else what `make run` wrote to demo-credentials.json (`service`: "profile", "feedback", …)."""
    token = token or os.environ.get("VOC_ADMIN_TOKEN", "")
    if not url or not token:
        creds = load_credentials(Path(data_dir or os.environ.get("VOC_DATA_DIR", "./var")))
        url, token = url or creds[f"{service}_url"], token or creds["admin_token"]
    return url.rstrip("/"), token


def load_credentials(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "demo-credentials.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the system with `make run` first")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
