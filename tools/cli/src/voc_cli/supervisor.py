"""Start, watch and stop the whole system as separate processes (`voc up`, tests, bench).

The services get the caller's environment: `voc up` only fills in what is unset (development
secrets, log format, ...) and owns nothing but what it allocated or started itself (the data
dir, the ports, the URL of the nats-server it runs, the database URLs it was given). It restarts
a service or the embedded nats-server that dies, with a growing back-off, and gives up on a
service that refuses its configuration (exit status 78, one line naming the variable) or keeps
exiting at once, instead of restarting it forever.
"""

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from voc_cli.nats import NatsServer
from voc_cli.processes import kill, wait_or_kill
from voc_platform.grpc import address_host
from voc_platform.settings import CONFIG_EXIT_STATUS

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
DEMO_INBOX_PORT = 8025  # where `voc demo-inbox` listens for SMTP (VOC_DEMO_INBOX_PORT)
# A service exits with CONFIG_EXIT_STATUS (78, EX_CONFIG) when a setting is invalid
# (`voc_platform.settings.load_settings`): restarting it cannot help, so the supervisor gives up.
#: Back-off between restarts (doubling), and when a run counts as a quick exit.
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 10.0
QUICK_EXIT_SECONDS = 10.0
#: A service that exits this many times in a row at start is given up on: before it ever answered
#: /readyz, or within QUICK_EXIT_SECONDS of its start. (A crash at start on a busy machine can
#: take longer than that just to import the interpreter's modules; it is still a crash at start.)
MAX_QUICK_EXITS = 5


def port_setting(name: str, default: int, *, command: str = "voc") -> int:
    """A port from the environment (`default` when unset or empty); an invalid one stops the
    command with one line naming it, never a traceback."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise SystemExit(f"{command}: {name}: a port number from 1 to 65535 (got {value!r})")
    return port


def demo_phone_port() -> int:
    """The port of `voc demo-phone`'s local push service: VOC_DEMO_PHONE_PORT or 8049."""
    return port_setting("VOC_DEMO_PHONE_PORT", DEMO_PHONE_PORT)


def demo_inbox_port() -> int:
    """The port of `voc demo-inbox`'s local SMTP server: VOC_DEMO_INBOX_PORT or 8025."""
    return port_setting("VOC_DEMO_INBOX_PORT", DEMO_INBOX_PORT)


def default_push_hosts() -> str:
    """What `voc up` lets notify push to: VOC_PUSH_ALLOWED_HOSTS when given, else the public push
    services and the demo phone's own port on loopback. Never every local port: any staff
    member registers endpoints, and an allowed local port is a service they can make notify
    call."""
    return os.environ.get("VOC_PUSH_ALLOWED_HOSTS") or f"{PUBLIC_PUSH_HOSTS},127.0.0.1:{demo_phone_port()}"


def ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (0 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


#: Ports `free_port` hands out lie below the kernel's ephemeral range (Linux: 32768-60999). A port
#: picked *from* that range is free when picked, but before the service binds it any outgoing
#: connection (a test's HTTP client, a gRPC channel) may take it as its local port: the suite saw
#: a service fail to start with "address already in use" that way.
LISTEN_FLOOR = 20_000
#: "low-high": the ports `free_port` draws from instead (the test suite gives each of its
#: parallel workers its own slice, so two workers never hand out the same port).
PORT_RANGE_VARIABLE = "VOC_FREE_PORT_RANGE"
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def listen_range() -> tuple[int, int]:
    """[low, high) of `free_port`: VOC_FREE_PORT_RANGE (inclusive bounds), else from
    `LISTEN_FLOOR` to the kernel's ephemeral floor (empty when that leaves no room)."""
    given = os.environ.get(PORT_RANGE_VARIABLE, "").strip()
    if not given:
        ceiling = ephemeral_floor()
        return (LISTEN_FLOOR, ceiling) if ceiling > LISTEN_FLOOR + 1_000 else (LISTEN_FLOOR, LISTEN_FLOOR)
    low, sep, high = given.partition("-")
    try:
        bounds = int(low), int(high) + 1
    except ValueError:
        bounds = (0, 0)
    if not sep or not 1024 <= bounds[0] < bounds[1] <= 65536:
        raise ValueError(f"{PORT_RANGE_VARIABLE}={given!r}: expected low-high, ports 1024-65535")
    return bounds


def free_port(host: str = "127.0.0.1") -> int:
    """A port to listen on: free now, never handed out before by this process, and drawn from
    `listen_range()`: below the ephemeral range, where the kernel leaves room for that (else
    the kernel's choice)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = listen_range()
    with _handed_out_lock:
        for _ in range(200 if high > low else 0):
            # secrets, not a seeded generator: forked processes must not draw the same ports.
            port = low + secrets.randbelow(high - low)
            if port not in _handed_out and can_listen(host, port):
                _handed_out.add(port)
                return port
        for _ in range(20):
            with socket.socket(family) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError(f"no free port on {host}")


def can_listen(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now, as asyncio's would (SO_REUSEADDR: a port left
    in TIME_WAIT is free; one another program listens on, or an outgoing connection holds, is not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


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


def state_file(data_dir: Path) -> Path:
    """Where `voc up` says what runs (process ids, addresses) for `voc status`."""
    return data_dir / "voc-up.json"


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
    push_allowed_hosts: str | None = None  # None: $VOC_PUSH_ALLOWED_HOSTS, else the public push services
    # Set for every service, over the caller's environment (the tests' and the bench's own).
    extra_env: dict[str, str] = field(default_factory=dict)
    log_format: str | None = None  # None: $VOC_LOG_FORMAT, else text
    log_to_files: bool = True
    restart: bool = True
    state_file: Path | None = None  # kept up to date for `voc status` (`voc up` sets it)

    @classmethod
    def free_ports(cls, data_dir: Path, **kwargs: object) -> SystemConfig:
        ports = {name: (free_port(), free_port()) for name in SERVICES}
        return cls(data_dir=data_dir, ports=ports, nats_port=0, **kwargs)  # type: ignore[arg-type]


class ServiceFailed(RuntimeError):
    """The supervisor gave up on a service (invalid setting, or exiting at once again and again)."""


class NotReady(TimeoutError):
    """Services that did not answer /readyz in time (their log tails in the message)."""

    def __init__(self, names: set[str], tails: str) -> None:
        super().__init__(f"not ready: {sorted(names)}\n{tails}")
        self.names = tuple(sorted(names))


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log: IO[str] | None) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.quick_exits = 0  # exits in a row, each before it was ready or soon after its start
        self.ready = False  # this run answered /readyz (seen by wait_ready or the supervisor)
        self.restart_at: float | None = None  # when the supervisor starts it again
        self.delay = RESTART_FIRST_DELAY
        self.gave_up: str | None = None  # why the supervisor stopped restarting it

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.ready = False
        self.restart_at = None
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

    def __init__(self, config: SystemConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        # The caller's environment, passed through to the services (a snapshot: what `voc up`
        # was started with).
        self.environ = dict(os.environ if environ is None else environ)
        self.secrets = load_or_create_secrets(config.data_dir)
        self.nats: NatsServer | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.nats_restarts = 0
        self._logs: list[IO[str]] = []
        self._watch: threading.Thread | None = None
        self._stopping = threading.Event()
        self.failed = threading.Event()  # set when the supervisor gives up on a service

    @property
    def nats_url(self) -> str:
        if self.config.nats_url:
            return self.config.nats_url
        assert self.nats is not None
        return self.nats.url

    @property
    def client_host(self) -> str:
        """Where this machine reaches the services: VOC_HOST, or loopback when they listen on
        every address (a link to http://0.0.0.0:… reaches no one)."""
        host = self.environ.get("VOC_HOST", "").strip() or "127.0.0.1"
        if host in ("0.0.0.0", "::", "[::]"):
            return "127.0.0.1"
        return address_host(host)

    def url(self, service: str) -> str:
        return f"http://{self.client_host}:{self.config.ports[service][0]}"

    def grpc_target(self, service: str) -> str:
        return f"{self.client_host}:{self.config.ports[service][1]}"

    @property
    def admin_token(self) -> str:
        """The caller's VOC_ADMIN_TOKEN when set, else the one generated for this data dir."""
        return self.env_for("feedback")["VOC_ADMIN_TOKEN"]

    def defaults(self) -> dict[str, str]:
        """What the services get when the caller's environment does not say otherwise."""
        return {
            "VOC_ENV": "development",
            "VOC_ADMIN_TOKEN": self.secrets["admin_token"],
            "VOC_INTERNAL_TOKEN": self.secrets["internal_token"],
            "VOC_JWT_SECRET": self.secrets["jwt_secret"],
            "VOC_LOG_FORMAT": "text",
            "VOC_PUSH_ALLOWED_HOSTS": PUBLIC_PUSH_HOSTS,
            "VOC_NOTIFY_PUBLIC_URL": self.url("notify"),
            # The follow-up links customers get (feedback's own default is its bind address).
            "VOC_FEEDBACK_PUBLIC_URL": self.url("feedback"),
            # The manager console (feedback's /dashboard) calls notify and actions directly.
            "VOC_ACTIONS_PUBLIC_URL": self.url("actions"),
            "VOC_CONSOLE_ORIGINS": self.url("feedback"),
        }

    def owned(self) -> dict[str, str]:
        """What the supervisor sets whatever the environment says: what it started or allocated
        (data dir, ports, the embedded nats-server's URL) and what its config was given."""
        owned = {"VOC_DATA_DIR": str(self.config.data_dir)}
        if self.config.nats_url or self.nats is not None:
            owned["VOC_NATS_URL"] = self.nats_url
        if self.config.push_allowed_hosts is not None:
            owned["VOC_PUSH_ALLOWED_HOSTS"] = self.config.push_allowed_hosts
        if self.config.log_format is not None:
            owned["VOC_LOG_FORMAT"] = self.config.log_format
        for service, (http, grpc) in self.config.ports.items():
            upper = service.upper()
            owned[f"VOC_{upper}_HTTP_PORT"] = str(http)
            owned[f"VOC_{upper}_GRPC_PORT"] = str(grpc)
            owned[f"VOC_{upper}_GRPC_TARGET"] = self.grpc_target(service)
        for service, url in self.config.database_urls.items():
            owned[f"VOC_{service.upper()}_DATABASE_URL"] = url
        owned.update(self.config.extra_env)
        return owned

    def env_for(self, name: str) -> dict[str, str]:
        """The caller's environment, the defaults under it and what the supervisor owns over it."""
        env = {**self.defaults(), **self.environ, **self.owned()}
        env["PYTHONUNBUFFERED"] = "1"
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
        if self.config.restart:
            # Before waiting: a service that dies while starting is restarted (or given up on).
            self._watch = threading.Thread(target=self._supervise, daemon=True, name="supervise")
            self._watch.start()
        self.write_state()
        self.wait_ready(timeout)

    def write_state(self) -> None:
        """The supervisor's and its children's process ids and addresses, for `voc status`."""
        if self.config.state_file is None:
            return
        state = {
            "pid": os.getpid(),
            "data_dir": str(self.config.data_dir),
            "nats_url": self.nats_url,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "nats_restarts": self.nats_restarts,
            "services": {
                name: {
                    "pid": proc.process.pid if proc.process else None,
                    "url": self.url(name),
                    "grpc": self.grpc_target(name),
                    "restarts": proc.restarts,
                    "gave_up": proc.gave_up,
                }
                for name, proc in self.services.items()
            },
        }
        self.config.state_file.write_text(json.dumps(state, indent=2))

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
                    if proc.gave_up:
                        raise ServiceFailed(proc.gave_up)
                    if not proc.running and not self.config.restart:
                        raise RuntimeError(f"{name} exited during start; see {self.log_path(name)}")
                    if self._probe_ready(client, name, proc):
                        pending.discard(name)
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in pending)
                    raise NotReady(pending, tails)
                if pending:
                    time.sleep(0.1)

    def log_path(self, name: str) -> Path:
        return self.config.data_dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def last_words(self, name: str, *, refusal: bool = False) -> str:
        """A service's last log line; with `refusal`, the last line saying why it refused to start
        (a log may hold an earlier run's lines, but not a later one's)."""
        tail = [line for line in self.log_tail(name, 50).splitlines() if line.strip()]
        refused = [line for line in tail if "refusing to start" in line] if refusal else []
        return (refused or tail or ["(no output)"])[-1].strip()

    def _probe_ready(self, client: httpx.Client, name: str, proc: ServiceProcess) -> bool:
        """Whether the service answers /readyz now; remembered for this run of it."""
        with contextlib.suppress(httpx.HTTPError):
            if client.get(f"{self.url(name)}/readyz").status_code == 200:
                proc.ready = True
                return True
        return False

    def _supervise(self) -> None:
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            self._supervise_with(client)

    def _supervise_with(self, client: httpx.Client) -> None:
        while not self._stopping.wait(0.25):
            if self.nats is not None and not self.nats.running:
                self._restart_nats()
            now = time.monotonic()
            for name, proc in self.services.items():
                if self._stopping.is_set():
                    return
                if proc.running and not proc.ready:
                    # Until a run is ready, an exit is a failure to start, however long the
                    # start took on a busy machine.
                    self._probe_ready(client, name, proc)
                if proc.running or proc.gave_up:
                    continue
                if proc.restart_at is None:
                    self._exited(name, proc, now)
                elif now >= proc.restart_at:
                    proc.restarts += 1
                    self.start_service(name)
                    self.write_state()

    def _exited(self, name: str, proc: ServiceProcess, now: float) -> None:
        """Decide what to do about a service that just exited: restart it later, or give up."""
        code = proc.process.returncode if proc.process else None
        quick = not proc.ready or now - proc.started_at < QUICK_EXIT_SECONDS
        proc.quick_exits = proc.quick_exits + 1 if quick else 0
        if not quick:
            proc.delay = RESTART_FIRST_DELAY  # it ran a while: this is a crash, not a loop
        words = self.last_words(name, refusal=code == CONFIG_EXIT_STATUS)
        if code == CONFIG_EXIT_STATUS:
            proc.gave_up = f"{name} refuses its configuration: {words}"
        elif proc.quick_exits >= MAX_QUICK_EXITS:
            proc.gave_up = f"{name} exited {proc.quick_exits} times in a row right after starting: {words}"
        if proc.gave_up:
            print(f"[voc] {proc.gave_up}", file=sys.stderr, flush=True)
            print(f"[voc] not restarting {name}; see {self.log_path(name)}", file=sys.stderr, flush=True)
            self.failed.set()
            self.write_state()
            return
        print(
            f"[voc] {name} exited (code {code}); restarting in {proc.delay:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        proc.restart_at = now + proc.delay
        proc.delay = min(proc.delay * 2, RESTART_MAX_DELAY)

    def _restart_nats(self) -> None:
        """Start the embedded nats-server again on the same port and store (the services
        reconnect by themselves; their outboxes then deliver what they held)."""
        assert self.nats is not None
        code = self.nats.process.returncode if self.nats.process else None
        delay = RESTART_FIRST_DELAY
        print(
            f"[voc] nats-server exited (code {code}); restarting it on port {self.nats.port}",
            file=sys.stderr,
            flush=True,
        )
        while not self._stopping.is_set():
            try:
                self.nats.start()
            except (RuntimeError, TimeoutError) as exc:
                last = str(exc).strip().splitlines()[-1:] or [""]
                print(f"[voc] nats-server did not start ({last[0]}); again in {delay:.1f}s", file=sys.stderr)
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RESTART_MAX_DELAY)
                continue
            self.nats_restarts += 1
            self.write_state()
            print("[voc] nats-server is back", file=sys.stderr, flush=True)
            return

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.join(timeout=30)
        for proc in self.services.values():
            proc.terminate()
        for proc in self.services.values():
            proc.wait(timeout)
        if self.nats is not None:
            self.nats.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.config.state_file is not None:
            self.config.state_file.unlink(missing_ok=True)
