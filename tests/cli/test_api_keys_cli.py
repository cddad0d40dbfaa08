"""`voc api-keys rotate` rotates (#22 §2): a new key for the same stores, the old one still
accepted for `--grace` seconds and refused after; `revoke` stops a key at once. The real `voc`
command against the running system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from tests.conftest import RunningSystem
from tests.support.system import wait_for

GRACE = 3


def voc(system: RunningSystem, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_FEEDBACK_URL": system.url("feedback"), "VOC_ADMIN_TOKEN": system.system.admin_token})
    return subprocess.run(
        [sys.executable, "-m", "voc_cli", "api-keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def submit(system: RunningSystem, key: str) -> int:
    return httpx.post(
        f"{system.url('feedback')}/v1/feedback",
        json={"store_id": "store-gangnam", "channel": "kiosk", "ratings": {"csat": 5}},
        headers={"Authorization": f"Bearer {key}"},
    ).status_code


def test_rotate_keeps_the_old_key_for_the_grace_then_refuses_it(running_system: RunningSystem) -> None:
    created = voc(running_system, "create", "--name", "rotation test", "--store", "store-gangnam")
    assert created.returncode == 0, created.stderr
    old: dict[str, Any] = json.loads(created.stdout)
    assert submit(running_system, old["api_key"]) == 202

    rotated = voc(running_system, "rotate", old["id"], "--grace", str(GRACE))
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new: dict[str, Any] = json.loads(rotated.stdout)
    assert new["api_key"] != old["api_key"] and new["store_ids"] == ["store-gangnam"]
    assert f"keeps working for {GRACE} s" in rotated.stderr
    rotated_at = time.monotonic()
    # Not revoked: both keys work during the grace period.
    assert submit(running_system, old["api_key"]) == 202
    assert submit(running_system, new["api_key"]) == 202
    assert time.monotonic() - rotated_at < GRACE, "too slow to see the grace period"
    listed = {k["id"]: k for k in json.loads(voc(running_system, "list").stdout)}
    assert listed[old["id"]]["replaced_by"] == new["id"] and listed[old["id"]]["expires_at"]

    # After the grace the old key is refused; the new one keeps working.
    wait_for(lambda: submit(running_system, old["api_key"]) == 401, timeout=GRACE + 10, interval=0.25)
    assert submit(running_system, new["api_key"]) == 202

    # Rotating the retired key again is refused (rotate its successor); revoke is immediate.
    again = voc(running_system, "rotate", old["id"])
    assert again.returncode == 1 and "already rotated" in again.stdout
    revoked = voc(running_system, "revoke", new["id"])
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    assert submit(running_system, new["api_key"]) == 401


def test_rotate_without_an_id_says_so(running_system: RunningSystem) -> None:
    done = voc(running_system, "rotate")
    assert done.returncode == 2
    assert "give the key's id" in done.stderr
