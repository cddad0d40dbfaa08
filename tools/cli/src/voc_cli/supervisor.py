"""Start, watch and stop the whole system as separate processes (`voc up`, tests, bench)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from voc_cli.nats import NatsServer
from voc_cli.processes import kill, wait_or_kill

SERVICES = ("profile", "actions", "feedback", "notify")
DEFAULT_PORTS = {
    "feedback": (8010, 9010),
    "profile": (8020, 9020),
    "actions": (8030, 9030),
    "notify": (8040, 9040),
}
PUBLIC_PUSH_HOSTS = (
    "fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,"
    "web.push.apple.com,*.notify.windows.com"
)
DEMO_PHONE_PORT = 8049  # where `voc demo-phone` listens (VOC_DEMO_PHONE_PORT)


def demo_phone_port() -> int:
    """The port of `voc demo-phone`'s local push service: VOC_DEMO_PHONE_PORT or 8049."""
    return int(os.environ.get("VOC_DEMO_PHONE_PORT") or DEMO_PHONE_PORT)


def default_push_hosts() -> str:
    """What `voc up` lets notify push to: VOC_PUSH_ALLOWED_HOSTS when given, else the public push
    services and the demo phone's own port on loopback. Never every local port: any staff
    member registers endpoints, and an allowed local port is a service they can make notify
    call."""
    return os.environ.get("VOC_PUSH_ALLOWED_HOSTS") or f"{PUBLIC_PUSH_HOSTS},127.0.0.1:{demo_phone_port()}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: What `voc up` and its children create is readable by this user only (the services set the same
#: umask themselves, `voc_platform.runtime.PRIVATE_UMASK`): files 0600, directories 0700.
PRIVATE_UMASK = 0o077


def keep_data_private(data_dir: Path) -> None:
    """Set the umask for this process and its children (nats-server's JetStream store, the
    logs) and close what an earlier run left under `data_dir` to other users."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    uid = os.getuid()
    for path in [data_dir, *data_dir.rglob("*")]:
        with contextlib.suppress(OSError):
            info = path.lstat()
            if info.st_uid == uid and not path.is_symlink() and info.st_mode & PRIVATE_UMASK:
                path.chmod(info.st_mode & 0o7777 & ~PRIVATE_UMASK)


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Development secrets, generated once per data dir (never the built-in defaults)."""
    path = data_dir / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {
        "admin_token": "adm_" + secrets.token_urlsafe(24),
        "internal_token": secrets.token_urlsafe(32),
        "jwt_secret": secrets.token_urlsafe(48),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    return data


@dataclass
class SystemConfig:
    data_dir: Path
    nats_url: str | None = None  # None: start the bundled nats-server
    nats_port: int = 4230
    ports: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_urls: dict[str, str] = field(default_factory=dict)
    push_allowed_hosts: str = PUBLIC_PUSH_HOSTS
    extra_env: dict[str, str] = field(default_factory=dict)
    log_format: str = "text"
    log_to_files: bool = True
    restart: bool = True

    @classmethod
    def free_ports(cls, data_dir: Path, **kwargs: object) -> SystemConfig:
        ports = {name: (free_port(), free_port()) for name in SERVICES}
        return cls(data_dir=data_dir, ports=ports, nats_port=0, **kwargs)  # type: ignore[arg-type]


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log: IO[str] | None) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"voc_{self.name}"],
            env=self.env,
            stdout=self.log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.process is not None:
            wait_or_kill(self.process, timeout)

    def kill(self) -> None:
        if self.running:
            assert self.process is not None
            kill(self.process)


class System:
    """nats-server + the four services. Used by `voc up`, the test suite and `make bench`."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.secrets = load_or_create_secrets(config.data_dir)
        self.nats: NatsServer | None = None
        self.services: dict[str, ServiceProcess] = {}
        self._logs: list[IO[str]] = []
        self._watch: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def nats_url(self) -> str:
        if self.config.nats_url:
            return self.config.nats_url
        assert self.nats is not None
        return self.nats.url

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[service][0]}"

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.config.ports[service][1]}"

    @property
    def admin_token(self) -> str:
        return self.secrets["admin_token"]

    def env_for(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
        env.update(
            {
                "VOC_ENV": "development",
                "VOC_DATA_DIR": str(self.config.data_dir),
                "VOC_NATS_URL": self.nats_url,
                "VOC_ADMIN_TOKEN": self.secrets["admin_token"],
                "VOC_INTERNAL_TOKEN": self.secrets["internal_token"],
                "VOC_JWT_SECRET": self.secrets["jwt_secret"],
                "VOC_PUSH_ALLOWED_HOSTS": self.config.push_allowed_hosts,
                "VOC_LOG_FORMAT": self.config.log_format,
                "VOC_NOTIFY_PUBLIC_URL": self.url("notify"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for service, (http, grpc) in self.config.ports.items():
            upper = service.upper()
            env[f"VOC_{upper}_HTTP_PORT"] = str(http)
            env[f"VOC_{upper}_GRPC_PORT"] = str(grpc)
            env[f"VOC_{service.upper()}_GRPC_TARGET"] = self.grpc_target(service)
        for service, url in self.config.database_urls.items():
            env[f"VOC_{service.upper()}_DATABASE_URL"] = url
        env.update(self.config.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.config.nats_url:
            self.nats = NatsServer(
                store_dir=self.config.data_dir / "nats",
                port=self.config.nats_port,
                log_file=self.config.data_dir / "logs" / "nats.log",
            )
            (self.config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            self.nats.start()
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(timeout)
        if self.config.restart:
            self._watch = threading.Thread(target=self._supervise, daemon=True, name="supervise")
            self._watch.start()

    def start_service(self, name: str) -> ServiceProcess:
        log: IO[str] | None = None
        if self.config.log_to_files:
            (self.config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            log = (self.config.data_dir / "logs" / f"{name}.log").open("a")
            self._logs.append(log)
        proc = self.services.get(name) or ServiceProcess(name, self.env_for(name), log)
        proc.env, proc.log = self.env_for(name), log
        self.services[name] = proc
        proc.start()
        return proc

    def wait_ready(self, timeout: float = 60.0, names: tuple[str, ...] = SERVICES) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while pending:
                for name in list(pending):
                    proc = self.services[name]
                    if not proc.running and not self.config.restart:
                        raise RuntimeError(f"{name} exited during start; see {self.log_path(name)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.url(name)}/readyz").status_code == 200:
                            pending.discard(name)
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in pending)
                    raise TimeoutError(f"not ready: {sorted(pending)}\n{tails}")
                if pending:
                    time.sleep(0.1)

    def log_path(self, name: str) -> Path:
        return self.config.data_dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _supervise(self) -> None:
        backoff: dict[str, float] = {}
        while not self._stopping.wait(0.5):
            for name, proc in self.services.items():
                if proc.running or self._stopping.is_set():
                    continue
                delay = backoff.get(name, 0.5)
                print(
                    f"[voc] {name} exited (code {proc.process.returncode if proc.process else '?'}); "
                    f"restarting in {delay:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
                if self._stopping.wait(delay):
                    return
                proc.restarts += 1
                self.start_service(name)
                backoff[name] = min(delay * 2, 10.0)

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        for proc in self.services.values():
            proc.terminate()
        for proc in self.services.values():
            proc.wait(timeout)
        if self.nats is not None:
            self.nats.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()
