"""The "Send feedback from your app" snippets of docs/API.md (#19 §3) work as printed, against
the running system: the Python function and the JavaScript one (run by node) each get an item accepted,
the same Idempotency-Key answers the same id, and a bad request fails at once (no retries)."""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.conftest import RunningSystem

API = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def snippet(language: str) -> str:
    section = (
        API.read_text(encoding="utf-8").split("## Send feedback from your app", 1)[1].split("\n## ", 1)[0]
    )
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found is not None, f"no {language} block in the section"
    return found.group(1)


def test_the_python_snippet_sends_once_and_fails_fast_on_bad_input(running_system: RunningSystem) -> None:
    code = snippet("python").split("\nwith httpx.Client", 1)[0]  # the function, not the demo call
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/API.md", "exec"), namespace)
    send_feedback = namespace["send_feedback"]
    key = running_system.store("store-gangnam")["api_key"]
    feedback = {
        "store_id": "store-gangnam",
        "channel": "app",
        "ratings": {"csat": 5},
        "text": "Friendly and fast.",
    }
    with httpx.Client(base_url=running_system.url("feedback")) as client:
        idempotency_key = str(uuid.uuid4())
        first = send_feedback(client, key, feedback, idempotency_key=idempotency_key)
        assert send_feedback(client, key, feedback, idempotency_key=idempotency_key) == first
        started = time.monotonic()
        with pytest.raises(ValueError, match="422"):
            send_feedback(client, key, {**feedback, "ratings": {"csat": 9}})
        assert time.monotonic() - started < 2  # not retried
    item = httpx.get(
        f"{running_system.url('feedback')}/v1/feedback/{first}", headers=running_system.admin_headers
    )
    assert item.status_code == 200 and item.json()["channel"] == "app"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_snippet_sends_once(running_system: RunningSystem, tmp_path: Path) -> None:
    key = running_system.store("store-gangnam")["api_key"]
    script = tmp_path / "send.mjs"
    script.write_text(
        snippet("javascript").split("\nsendFeedback(", 1)[0]  # the function, not the demo call
        + f"""
const base = {running_system.url("feedback")!r};
const feedback = {{store_id: "store-gangnam", channel: "app", ratings: {{csat: 4}}, text: "Quick and kind."}};
const idempotencyKey = "js-snippet-{uuid.uuid4()}";
const first = await sendFeedback(base, {key!r}, feedback, {{idempotencyKey}});
const again = await sendFeedback(base, {key!r}, feedback, {{idempotencyKey}});
try {{
  await sendFeedback(base, {key!r}, {{...feedback, channel: "pigeon"}});
  console.log("NOT REFUSED");
}} catch (error) {{
  console.log(first + " " + again + " " + String(error.message).slice(0, 3));
}}
"""
    )
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    feedback_id, again, refused = done.stdout.split()
    assert again == feedback_id and refused == "422"
    item = httpx.get(
        f"{running_system.url('feedback')}/v1/feedback/{feedback_id}", headers=running_system.admin_headers
    )
    assert item.status_code == 200 and item.json()["ratings"]["csat"] == 4


class _Flaky(http.server.BaseHTTPRequestHandler):
    """A feedback endpoint that answers 429 (Retry-After: 1), then 503, then 202, and records
    each try's Idempotency-Key: what the snippets must ride out, with the key kept."""

    answers: ClassVar[list[tuple[int, dict[str, str], bytes]]] = []
    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.keys.append(self.headers.get("Idempotency-Key") or "")
        status, headers, body = self.answers.pop(0)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.keys.clear()
    _Flaky.answers[:] = [
        (429, {"Retry-After": "1"}, b'{"status": 429, "title": "Too Many Requests"}'),
        (503, {}, b'{"status": 503, "title": "Service Unavailable"}'),
        (202, {}, b'{"id": "0193-accepted", "status": "received"}'),
    ]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_snippet_rides_out_429_and_503_and_leaves_one_answer(flaky: str, tmp_path: Path) -> None:
    script = snippet("bash").replace("http://127.0.0.1:8010", flaky)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 1  # Retry-After honoured
    assert done.stdout.strip() == "202"
    assert (tmp_path / "answer.json").read_text() == '{"id": "0193-accepted", "status": "received"}'
    assert len(_Flaky.keys) == 3 and len(set(_Flaky.keys)) == 1 and _Flaky.keys[0]


def test_the_python_snippet_rides_out_429_and_503_and_does_not_wait_after_its_last_try(flaky: str) -> None:
    code = snippet("python").split("\nwith httpx.Client", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/API.md", "exec"), namespace)
    send_feedback = namespace["send_feedback"]
    with httpx.Client(base_url=flaky) as client:
        started = time.monotonic()
        assert send_feedback(client, "vocsk_x", {"store_id": "s"}) == "0193-accepted"
        assert time.monotonic() - started >= 1  # Retry-After honoured
        assert len(_Flaky.keys) == 3 and len(set(_Flaky.keys)) == 1
        _Flaky.answers[:] = [(503, {}, b"{}")]
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="after 1 tries"):
            send_feedback(client, "vocsk_x", {"store_id": "s"}, attempts=1)
        assert time.monotonic() - started < 0.2  # no back-off after the last try


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_snippet_rides_out_429_and_503(flaky: str, tmp_path: Path) -> None:
    script = tmp_path / "retry.mjs"
    script.write_text(
        snippet("javascript").split("\nsendFeedback(", 1)[0]  # the function, not the demo call
        + f"""
const started = Date.now();
const id = await sendFeedback({flaky!r}, "vocsk_x", {{store_id: "s"}});
console.log(id + " " + (Date.now() - started));
"""
    )
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    feedback_id, elapsed_ms = done.stdout.split()
    assert feedback_id == "0193-accepted" and int(elapsed_ms) >= 1000  # Retry-After honoured
    assert len(_Flaky.keys) == 3 and len(set(_Flaky.keys)) == 1
