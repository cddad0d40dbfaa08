"""An SMS / KakaoTalk Alimtalk HTTP gateway on loopback that checks a request the way a Korean
provider's API does (bearer token, registered sender number, approved template, a Korean
mobile number, the template's variables, an idempotency key), and records what it accepted.

    with SmsGateway(token="t", sender="0212345678", template_id="FOLLOWUP_01") as gw:
        ... gw.url ... gw.accepted() ... gw.fail_next(503)

Answers: 401 without the token; 400 with `{"error": ...}` for a wrong sender, template, number
or a missing variable; the queued failure of `fail_next`; 200 `{"message_id": ...}` otherwise.
A repeat of an idempotency key answers 200 again without a second message.

`report_to(url, token)` makes it report deliveries as a provider's callback does: after each
message it takes, a POST of `{"message_id", "status": "delivered" | "failed", "error"}` with the
bearer token, `failed` for a number in `unreachable` (a handset off for the message's lifetime);
a 409 or 5xx answer is retried after its Retry-After, as providers retry callbacks."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/messages"
KOREAN_MOBILE = re.compile(r"^(?:\+8210|010)\d{7,8}$")
REQUIRED_VARIABLES = ("store", "question", "url")


@dataclass(frozen=True)
class SmsRequest:
    idempotency_key: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body["text"])


class SmsGateway:
    def __init__(self, *, token: str, sender: str, template_id: str) -> None:
        self.token, self.sender, self.template_id = token, sender, template_id
        self._accepted: list[SmsRequest] = []
        self._failures: list[int] = []
        self.refused: list[str] = []  # the errors answered, in order
        self.reports: list[tuple[str, int, dict[str, Any]]] = []  # (message id, status, answer)
        self._report_to: tuple[str, str] | None = None
        self.unreachable: set[str] = set()
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = gateway._handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        if path != PATH:
            return 404, {"error": "not_found"}
        if lower.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthorized"}
        if not lower.get("content-type", "").startswith("application/json"):
            return 415, {"error": "json_expected"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "malformed_json"}
        key = lower.get("idempotency-key", "")
        error = self._invalid(body, key)
        with self._lock:
            if error:
                self.refused.append(error)
                return 400, {"error": error}
            if self._failures:
                return self._failures.pop(0), {"error": "temporarily_unavailable"}
            if any(r.idempotency_key == key for r in self._accepted):
                return 200, {"message_id": key, "duplicate": True}
            self._accepted.append(SmsRequest(key, body))
            report_to = self._report_to
        if report_to is not None:
            threading.Thread(target=self._report, args=(report_to, body), daemon=True).start()
        return 200, {"message_id": key}

    def report_to(self, url: str, token: str) -> None:
        """Report each message taken from now on to `url` (the delivery-report endpoint)."""
        with self._lock:
            self._report_to = (url, token)

    def _report(self, target: tuple[str, str], body: dict[str, Any]) -> None:
        """The provider's callback, a moment after the handset answered (or did not): tried up to
        ten times, a 409 or 5xx after its Retry-After (capped at 1 s here)."""
        url, token = target
        failed = body["to"] in self.unreachable
        report = {"message_id": body["message_id"], "status": "failed" if failed else "delivered"}
        if failed:
            report["error"] = "E-3001 handset unreachable until the message expired"
        data = json.dumps({**report, "provider_ref": f"emu-{time.monotonic_ns()}"}).encode()
        for _ in range(10):
            time.sleep(0.2)
            request = urllib.request.Request(
                url,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            retry_after = "1"
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status, answer = response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, json.loads(exc.read() or b"{}")
                retry_after = exc.headers.get("Retry-After") or "1"
            except OSError:
                continue
            with self._lock:
                self.reports.append((report["message_id"], status, answer))
            if status != 409 and status < 500:
                return
            time.sleep(min(float(retry_after), 1.0))

    def _invalid(self, body: Any, key: str) -> str:
        if not isinstance(body, dict):
            return "body_must_be_an_object"
        if not key or key != body.get("message_id"):
            return "idempotency_key_must_equal_message_id"
        if body.get("from") != self.sender:
            return "sender_not_registered"
        if body.get("template_id") != self.template_id:
            return "template_not_approved"
        if not KOREAN_MOBILE.match(str(body.get("to", ""))):
            return "invalid_recipient_number"
        text = body.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 1000:
            return "text_required_up_to_1000_chars"
        variables = body.get("variables")
        if not isinstance(variables, dict) or any(not variables.get(v) for v in REQUIRED_VARIABLES):
            return "template_variables_missing"
        if str(variables["url"]) not in text:
            return "text_does_not_match_template"
        return ""

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def accepted(self) -> list[SmsRequest]:
        with self._lock:
            return list(self._accepted)

    def start(self) -> SmsGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SmsGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
