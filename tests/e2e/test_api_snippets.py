"""The "Send feedback from your app" snippets of docs/API.md (#19 §3) work as printed, against
the running system: the Python function and the JavaScript one (run by node) each get an item accepted,
the same Idempotency-Key answers the same id, and a bad request fails at once (no retries)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

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
        snippet("javascript")
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
