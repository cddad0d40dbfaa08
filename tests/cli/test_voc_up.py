"""`voc up` (what `make run` runs): starts everything with the caller's settings (and says which),
seeds once, writes the credentials file in the DESIGN §5 shape, lets notify push to the demo
phone's port and no other local one, restarts a crashed service, gives up on one that refuses
its configuration, and stops everything on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.files import loose_modes
from tests.support.processes import CliProcess
from voc_cli.supervisor import PUBLIC_PUSH_HOSTS, SERVICES, default_push_hosts, free_port


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_voc_up_runs_seeds_restarts_and_stops(tmp_path: Path) -> None:
    # A file an earlier run left readable by others (#21 finding 12): `voc up` closes it.
    (tmp_path / "logs").mkdir(mode=0o755)
    (tmp_path / "logs" / "nats.log").write_text("")
    (tmp_path / "logs" / "nats.log").chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    phone_port = free_port()
    env.update(
        {
            "VOC_DATA_DIR": str(tmp_path),
            "VOC_NATS_PORT": str(free_port()),
            "VOC_DEMO_PHONE_PORT": str(phone_port),
            # A documented override (#22): honoured by the service, and named at start.
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "2",
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "0.01",
        }
    )
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
        check_rate_limit_override(creds)
        check_status(env)
        # A second `voc up` from the same data dir says that one runs, in one line.
        again = subprocess.run(
            [sys.executable, "-m", "voc_cli", "up"], env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1 and f"voc up already runs from {tmp_path}" in again.stderr, again.stderr
        login = httpx.post(
            f"{creds['notify_url']}/v1/auth/login",
            json={"email": creds["staff"][0]["email"], "password": creds["staff"][0]["password"]},
        )
        assert login.status_code == 200
        staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
        check_first_screens(creds)
        check_push_allowlist(creds, staff, env, phone_port)
        # Databases (with -wal/-shm), the JetStream store, the VAPID key, the secrets, the demo
        # credentials and the logs: 0600 files in 0700 directories (#21 finding 12).
        names = {p.name for p in tmp_path.iterdir()}
        assert {"feedback.db", "notify.db-wal", "vapid_private_key.pem", "secrets.json", "nats"} <= names
        assert any((tmp_path / "nats").rglob("*.blk")), "the JetStream store holds the seeded events"
        assert loose_modes(tmp_path) == []

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
    assert "VOC_FEEDBACK_RATE_LIMIT_BURST=2   (feedback)" in out, out
    assert "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND=0.01   (feedback)" in out
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"


def check_first_screens(creds: dict[str, Any]) -> None:
    """#20 "the demo data gives each demo manager a useful first screen": the Gangnam store
    manager, the Seoul area manager and cx_admin, signed in, see feedback, targets set for their
    places and outreach work on the dashboard's first screen (the calls it makes)."""
    password = {s["email"]: s["password"] for s in creds["staff"]}
    feedback, profile = creds["feedback_url"], creds["profile_url"]
    for email, stores in (
        ("seoyeon@gangnam.demo", {"store-gangnam"}),
        ("jimin@area.demo", {"store-gangnam", "store-hongdae"}),
        ("cx@hq.demo", {"store-gangnam", "store-hongdae", "store-busan"}),
    ):
        login = httpx.post(
            f"{creds['notify_url']}/v1/auth/login", json={"email": email, "password": password[email]}
        )
        assert login.status_code == 200, (email, login.text)
        me = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deadline = time.monotonic() + 30
        while True:  # the seeded feedback is classified and counted within moments
            board = httpx.get(f"{feedback}/v1/analytics", headers=me)
            assert board.status_code == 200, (email, board.text)
            if board.json()["volume"] >= 2 * len(stores) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert board.json()["volume"] >= 2 * len(stores), (email, board.json()["volume"])
        targets = httpx.get(f"{feedback}/v1/analytics/targets", headers=me).json()
        shown = {p["id"] for p in targets["places"] if p["kind"] == "store"}
        assert shown == stores, (email, shown)
        for place in targets["places"]:
            assert any(m.get("target") is not None for m in place["metrics"]), (email, place["id"])
        outreach = httpx.get(f"{feedback}/v1/analytics/outreach", headers=me).json()
        assert {r["store_id"] for r in outreach["rows"]} == stores, (email, outreach)
        assert httpx.get(f"{profile}/v1/outreach/assignments", headers=me).status_code == 200
    # The VIP of the README's try has a history when the first complaint arrives: earlier visits
    # at two stores (imported as history, so nobody was paged for them).
    admin = {"Authorization": f"Bearer {creds['admin_token']}"}
    vips = httpx.get(f"{profile}/v1/customers", params={"signal": "vip"}, headers=admin).json()["customers"]
    vip = next(c for c in vips if c["name"] == "김민수")  # L-1001
    timeline = httpx.get(f"{profile}/v1/customers/{vip['id']}/timeline", headers=admin).json()["entries"]
    visits = [e for e in timeline if e["kind"] == "visit"]
    assert len(visits) == 6 and {v["store_id"] for v in visits} == {"store-gangnam", "store-hongdae"}, visits


def check_status(env: dict[str, str]) -> None:
    """`voc status` from another terminal: every process, its ports, consumer lag, outbox
    pending and dead letters of the system `voc up` runs."""
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["supervisor"]["running"] is True
    for name in SERVICES:
        service = report["services"][name]
        assert service["process"] and service["ready"] and service["grpc_open"], (name, service)
        assert service["http"] == f"http://127.0.0.1:{env[f'VOC_{name.upper()}_HTTP_PORT']}"
        assert service["outbox"]["pending"] >= 0, service["outbox"]
    nats = report["nats"]
    assert nats["reachable"] and nats["url"].endswith(f":{env['VOC_NATS_PORT']}") and nats["pid"]
    assert nats["dlq_depth"] == 0
    consumers = {c["consumer"]: c for c in nats["consumers"]}
    assert len(consumers) >= 4 and all(
        c["pending"] >= 0 and c["ack_pending"] >= 0 for c in consumers.values()
    )
    text = subprocess.run(
        [sys.executable, "-m", "voc_cli", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert text.returncode == 0 and "dead letters 0" in text.stdout, text.stdout
    assert all(f"{name} " in text.stdout for name in [*SERVICES, *consumers])


def check_rate_limit_override(creds: dict[str, Any]) -> None:
    """VOC_FEEDBACK_RATE_LIMIT_BURST=2 reached the feedback service `voc up` started: a third
    submission in a row with one store's key is refused (the default burst is 60)."""
    store = creds["stores"][-1]  # not the key demo-feedback uses below
    answers = [
        httpx.post(
            f"{creds['feedback_url']}/v1/feedback",
            json={"store_id": store["id"], "channel": "kiosk", "text": f"override check {i}"},
            headers={"Authorization": f"Bearer {store['api_key']}"},
        ).status_code
        for i in range(3)
    ]
    assert answers == [202, 202, 429], answers


def test_voc_up_gives_up_on_a_service_that_refuses_its_configuration(tmp_path: Path) -> None:
    """An invalid value: the service says which variable and what it accepts, `voc up` shows
    that line and exits instead of restarting the service forever."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), "VOC_NATS_PORT": str(free_port())})
    env["VOC_FEEDBACK_RATE_LIMIT_BURST"] = "0"
    for name in SERVICES:
        env[f"VOC_{name.upper()}_HTTP_PORT"] = str(free_port())
        env[f"VOC_{name.upper()}_GRPC_PORT"] = str(free_port())
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "up", "--no-seed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert time.monotonic() - started < 60
    refusal = "VOC_FEEDBACK_RATE_LIMIT_BURST: Input should be greater than or equal to 1"
    assert f"feedback refuses its configuration: voc-feedback: refusing to start: {refusal}" in out, out
    assert out.count(refusal) == 1, out  # said once, not again in the "cannot start" line
    assert "[voc] cannot start: a service was given up on (above)" in out, out
    assert "not restarting feedback" in out and "[voc] stopped" in out
    assert "restarting in" not in out  # never restarted
    log = (tmp_path / "logs" / "feedback.log").read_text()
    assert log.count("refusing to start") == 1, log


def _up_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), "VOC_NATS_PORT": str(free_port())})
    for name in SERVICES:
        env[f"VOC_{name.upper()}_HTTP_PORT"] = str(free_port())
        env[f"VOC_{name.upper()}_GRPC_PORT"] = str(free_port())
    return {**env, **extra}


def test_voc_up_refuses_a_port_in_use_and_a_stream_it_cannot_replicate(tmp_path: Path) -> None:
    """Said in one line before anything starts: a port in use (it was "actions exited 5 times in
    a row: SystemExit: 3" after 8 s, or nats-server's log as a traceback) and stream replicas a
    single nats-server cannot hold (60 s of silence, then a TimeoutError traceback)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        for variable in ("VOC_ACTIONS_HTTP_PORT", "VOC_NATS_PORT"):
            done = subprocess.run(
                [sys.executable, "-m", "voc_cli", "up", "--no-seed"],
                env=_up_env(tmp_path, **{variable: str(taken)}),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 1, done.stdout + done.stderr
            assert f"[voc] cannot start: {variable} {taken} is in use" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "up", "--no-seed"],
        env=_up_env(tmp_path, VOC_NATS_STREAM_REPLICAS="3"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "VOC_NATS_STREAM_REPLICAS=3 needs a NATS cluster" in done.stderr, (
        done.stderr
    )
    assert not (tmp_path / "logs").exists()  # nothing was started


def check_push_allowlist(
    creds: dict[str, Any], staff: dict[str, str], env: dict[str, str], phone_port: int
) -> None:
    """A staff member cannot make notify call a local service (its answers were shown to
    managers); `voc demo-phone` on its port still gets its pushes."""
    keys = {
        "p256dh": "BGJsKcDyFgFQljnanNu-uiOcF5wRvWJU_sgvLJAMrKElZ214jljqrxuGerklBeMbNlnmEUScH-3KocTe-H3wQKI",
        "auth": "aB3coAYJ6uUBU12LO5wJYQ",
    }
    for url in (creds["feedback_url"], creds["profile_url"], f"http://localhost:{phone_port}"):
        refused = httpx.post(
            f"{creds['notify_url']}/v1/devices", json={"endpoint": f"{url}/x", "keys": keys}, headers=staff
        )
        assert refused.status_code == 422 and "allowlist" in refused.json()["detail"], refused.text

    phone = CliProcess("demo-phone", "--email", "minji@gangnam.demo", env=env)
    try:
        phone.wait_for("waiting for pushes")
        assert f"127.0.0.1:{phone_port}/push/" in phone.printed
        posted = subprocess.run(
            [sys.executable, "-m", "voc_cli", "demo-feedback"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert posted.returncode == 0, posted.stdout + posted.stderr
        phone.wait_for("[phone] push", timeout=60)
    finally:
        # SIGTERM (`kill`) stops it as Ctrl-C does: the device is unregistered.
        code = phone.stop(signal.SIGTERM)
    assert code == 0 and "[phone] device " in phone.printed and " unregistered" in phone.printed, (
        phone.printed
    )


def test_voc_up_allows_the_demo_phone_port_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOC_PUSH_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("VOC_DEMO_PHONE_PORT", raising=False)
    assert default_push_hosts() == f"{PUBLIC_PUSH_HOSTS},127.0.0.1:8049"
    monkeypatch.setenv("VOC_DEMO_PHONE_PORT", "18049")
    assert default_push_hosts() == f"{PUBLIC_PUSH_HOSTS},127.0.0.1:18049"
    monkeypatch.setenv("VOC_PUSH_ALLOWED_HOSTS", "push.example.com")  # the user's own choice wins
    assert default_push_hosts() == "push.example.com"


@pytest.mark.parametrize("argv", [["playbooks", "validate"], ["playbooks", "test"]])
def test_playbook_cli_on_the_shipped_library(argv: list[str]) -> None:
    from voc_actions.playbooks import library_path

    args = [sys.executable, "-m", "voc_cli", *argv, str(library_path())]
    if argv[1] == "test":
        args.append(str(library_path() / "cases.yaml"))
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ok:" in result.stdout or " 0 failed" in result.stdout


def test_voc_up_refuses_shared_ports_odd_replicas_an_unusable_data_dir_and_no_nats(tmp_path: Path) -> None:
    """Two services on one port (profile failed to bind while its readiness check reached
    feedback; once "running" was printed), a replica count that is no number, a data dir that
    cannot be one (a traceback), and a VOC_NATS_URL where nothing listens (a minute's wait):
    one line each, nothing started (settings review)."""
    shared = str(free_port())
    cases = [
        ({"VOC_PROFILE_HTTP_PORT": shared, "VOC_FEEDBACK_HTTP_PORT": shared}, "one port for two listeners"),
        ({"VOC_NATS_STREAM_REPLICAS": "abc"}, "VOC_NATS_STREAM_REPLICAS='abc': a whole number"),
        ({"VOC_DATA_DIR": "/proc/voc-data"}, "[voc] cannot start: VOC_DATA_DIR /proc/voc-data"),
        # A NATS nobody runs: each service retried for the whole minute's wait.
        (
            {"VOC_NATS_URL": f"nats://127.0.0.1:{free_port()}"},
            "VOC_NATS_URL: no NATS server takes a connection (nats://127.0.0.1:",
        ),
        # Not a NATS URL: it read as "no NATS server takes a connection".
        (
            {"VOC_NATS_URL": f"nats://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"},
            "VOC_NATS_URL must start with nats://, tls://, ws:// or wss:// (each server; got 'http://",
        ),
        # An address of no machine here: it said every port was "in use".
        ({"VOC_HOST": "10.9.9.9"}, "VOC_HOST='10.9.9.9': the services cannot listen there"),
    ]
    for extra, says in cases:
        done = subprocess.run(
            [sys.executable, "-m", "voc_cli", "up", "--no-seed"],
            env=_up_env(tmp_path, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "logs").exists()
