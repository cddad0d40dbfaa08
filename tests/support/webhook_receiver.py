"""A webhook receiver on loopback for the tests: a real HTTP server (a thread per request, so a
hanging answer holds only its own), recording what arrives per path and answering as told:
a status per path, a path that hangs until released, or not there at all (`stop`, then `start`
again on the same port). `verified` checks each signature with the `standardwebhooks` library."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

from voc_cli.supervisor import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return orjson.loads(self.body)


class WebhookReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.statuses: dict[str, list[int]] = {}  # path -> statuses to answer, in turn (last repeats)
        self.hanging: set[str] = set()
        self.extra_headers: dict[str, dict[str, str]] = {}  # path -> headers sent with every answer
        self.reply = b'{"ok":true}'
        self._release = threading.Event()
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        self.statuses[path] = list(statuses)

    def _status_for(self, path: str) -> int:
        queue = self.statuses.get(path)
        if not queue:
            return 200
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path in receiver.hanging:
                    receiver._release.wait(60)
                    return
                status = receiver._status_for(self.path)
                with receiver._cond:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                            time.time(),
                        )
                    )
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.reply)))
                for name, value in receiver.extra_headers.get(self.path, {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="webhook-receiver"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: connections to the port are refused until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def release(self) -> None:
        """Let every hanging request end (without an answer)."""
        self._release.set()

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 30.0, ok: bool = False
    ) -> list[Received]:
        """At least `count` requests (on `path`; only 2xx-answered ones when `ok`)."""

        def matching() -> list[Received]:
            return [
                r
                for r in self.received
                if (path is None or r.path == path) and (not ok or 200 <= r.status < 300)
            ]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(
                    f"{len(matching())} of {count} webhooks within {timeout}s: {self.received}"
                )
            return matching()

    def verified(self, secret: str, path: str | None = None) -> list[dict[str, Any]]:
        """The bodies of what arrived (on `path`), each signature checked by `standardwebhooks`."""
        hook = Webhook(secret)
        with self._cond:
            arrived = [r for r in self.received if path is None or r.path == path]
        return [hook.verify(r.body, r.headers) for r in arrived]
