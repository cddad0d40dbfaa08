"""The embedded nats-server dies under load (#22): the supervisor starts it again on the same
port and store, the services reconnect, intake's outbox delivers what it held, and every
accepted feedback still reaches the phone.

Its own system (the session's shares a nats-server with other tests): nats-server + the four
services as processes under the real supervisor (`restart=True`), the push-service emulator as
the phone. Loopback only, 20 feedback/s for 10 s, bounded waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DatabaseFactory
from voc_cli import demo
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import SERVICES, System, SystemConfig

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam: paged for every complaint there
RATE = 20.0
SECONDS = 10.0
KILL_AT = 3.0


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("supervised")
    config = SystemConfig.free_ports(
        data_dir,
        database_urls={name: databases.url(name) for name in SERVICES},
        push_allowed_hosts="127.0.0.1:*",
        restart=True,
        log_format="json",
        extra_env={"VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "1000", "VOC_FEEDBACK_RATE_LIMIT_BURST": "1000"},
    )
    system = System(config)
    try:
        system.start(timeout=90)
        yield system
    finally:
        system.stop()


@pytest.mark.alone  # load, a SIGKILL and a bounded wait for the supervisor's restart
def test_killing_nats_under_load_loses_no_alert(
    supervised: System, push_emulator: PushEmulator, tmp_path: Path
) -> None:
    system = supervised
    assert system.nats is not None
    urls = {name: system.url(name) for name in SERVICES}
    creds = demo.seed(urls=urls, admin_token=system.admin_token, credentials_path=tmp_path / "creds.json")
    lead = next(s for s in creds["staff"] if s["email"] == LEAD)
    token = httpx.post(
        f"{urls['notify']}/v1/auth/login", json={"email": LEAD, "password": lead["password"]}
    ).json()["access_token"]
    subscription = push_emulator.new_subscription(label=f"{LEAD} (nats restart)")
    device = httpx.post(
        f"{urls['notify']}/v1/devices", json=subscription, headers={"Authorization": f"Bearer {token}"}
    )
    assert device.status_code == 201, device.text
    phone = push_emulator.subscription_id(subscription)
    key = next(s for s in creds["stores"] if s["id"] == "store-gangnam")["api_key"]
    old_pid = system.nats.process.pid if system.nats.process else None
    port = system.nats.port

    accepted: list[str] = []
    refused: list[int] = []
    killed = threading.Event()

    def kill_nats() -> None:
        assert system.nats is not None and system.nats.process is not None
        system.nats.process.kill()  # SIGKILL: no goodbye to the clients
        killed.set()

    threading.Timer(KILL_AT, kill_nats).start()
    start = time.monotonic()
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(int(RATE * SECONDS)):
            due = start + i / RATE
            time.sleep(max(0.0, due - time.monotonic()))
            response = client.post(
                f"{urls['feedback']}/v1/feedback",
                json={
                    "store_id": "store-gangnam",
                    "channel": "kiosk",
                    "text": f"국에서 머리카락이 나왔어요. 직원분도 사과 없이 그냥 가져가셨네요. ({i})",
                    "ratings": {"csat": 1},
                },
            )
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            else:
                refused.append(response.status_code)
    assert killed.is_set()
    # Intake does not need the bus: everything is accepted, the outbox holds the events.
    assert refused == [] and len(accepted) == int(RATE * SECONDS)

    deadline = time.monotonic() + 90
    missing = set(accepted)
    while missing and time.monotonic() < deadline:
        missing -= {p.json.get("feedback_id") for p in push_emulator.received(phone)}
        time.sleep(0.5)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted feedback never reached the phone"

    # The supervisor did it: a new nats-server process, on the same port and store.
    assert system.nats_restarts >= 1
    assert system.nats.running and system.nats.port == port
    assert system.nats.process is not None and system.nats.process.pid != old_pid
    assert all(proc.running for proc in system.services.values())
