"""`voc up` (what `make run` runs): starts everything, seeds once, writes the credentials file
in the DESIGN §5 shape, restarts a crashed service, and stops everything on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from voc_cli.supervisor import SERVICES, free_port


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_voc_up_runs_seeds_restarts_and_stops(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), "VOC_NATS_PORT": str(free_port())})
    for name in SERVICES:
        env[f"VOC_{name.upper()}_HTTP_PORT"] = str(free_port())
        env[f"VOC_{name.upper()}_GRPC_PORT"] = str(free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "voc_cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    creds_path = tmp_path / "demo-credentials.json"
    try:
        deadline = time.monotonic() + 90
        while not creds_path.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "voc up did not seed in time"
            time.sleep(0.2)
        time.sleep(0.3)
        creds = json.loads(creds_path.read_text())
        assert list(creds)[:5] == ["feedback_url", "profile_url", "actions_url", "notify_url", "admin_token"]
        assert set(creds) == {
            "feedback_url",
            "profile_url",
            "actions_url",
            "notify_url",
            "admin_token",
            "stores",
            "staff",
        }
        assert all(set(s) == {"id", "name", "api_key"} for s in creds["stores"])
        assert all(set(s) == {"id", "name", "role", "store_ids", "email", "password"} for s in creds["staff"])
        login = httpx.post(
            f"{creds['notify_url']}/v1/auth/login",
            json={"email": creds["staff"][0]["email"], "password": creds["staff"][0]["password"]},
        )
        assert login.status_code == 200

        # Crash one service: the supervisor starts it again.
        victim = next(p for p in _children(proc.pid) if "voc_profile" in " ".join(p.cmdline()))
        victim.kill()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{creds['profile_url']}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "crashed service was not restarted"
            time.sleep(0.2)
        assert any(
            "voc_profile" in " ".join(p.cmdline()) and p.pid != victim.pid for p in _children(proc.pid)
        )
        children = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Frontline VoC is running." in out and "[voc] stopped" in out
    assert "restarting" in out
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"


@pytest.mark.parametrize("argv", [["playbooks", "validate"], ["playbooks", "test"]])
def test_playbook_cli_on_the_shipped_library(argv: list[str]) -> None:
    from voc_actions.playbooks import library_path

    args = [sys.executable, "-m", "voc_cli", *argv, str(library_path())]
    if argv[1] == "test":
        args.append(str(library_path() / "cases.yaml"))
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ok:" in result.stdout or " 0 failed" in result.stdout
