"""Whose address a login is counted under (security review): uvicorn believes X-Forwarded-For
from loopback by default, so a caller on the box (or behind a proxy that passes the header on)
could name any address and never run out of failed logins. Now the header counts only from the
proxies VOC_TRUSTED_PROXIES names. A real notify process, real uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import service_process


def notify(tmp_path: Path, **extra: str) -> Iterator[str]:
    with service_process("voc_notify", tmp_path, VOC_LOGIN_ADDRESS_BURST="3", **extra) as url:
        yield url


def failed_logins(url: str, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.post(
            f"{url}/v1/auth/login",
            json={"email": f"nobody{i}@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": address},
            timeout=30,
        ).status_code
        for i, address in enumerate(forwarded_for)
    ]


@pytest.fixture
def untrusting(tmp_path: Path) -> Iterator[str]:
    yield from notify(tmp_path)


@pytest.fixture
def behind_a_proxy(tmp_path: Path) -> Iterator[str]:
    yield from notify(tmp_path, VOC_TRUSTED_PROXIES="127.0.0.1/32")


def test_without_trusted_proxies_the_header_does_not_pick_the_address(untrusting: str) -> None:
    answers = failed_logins(untrusting, [f"203.0.113.{i}" for i in range(5)])
    assert answers[:3] == [401] * 3 and answers[3:] == [429] * 2, answers


def test_a_trusted_proxy_names_the_client(behind_a_proxy: str) -> None:
    # Each client its own budget: five different clients behind the proxy, none limited...
    assert failed_logins(behind_a_proxy, [f"203.0.113.{i}" for i in range(5)]) == [401] * 5
    # ...and one client its own, whatever the others did.
    assert failed_logins(behind_a_proxy, ["198.51.100.7"] * 5)[3:] == [429] * 2


def test_a_trusted_proxies_entry_must_be_an_address_or_network(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), "VOC_TRUSTED_PROXIES": "10.0.0.0/8, *"})
    done = subprocess.run(
        [sys.executable, "-m", "voc_notify"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 78, done.stderr
    assert "VOC_TRUSTED_PROXIES: '*' is not an IP address" in done.stderr, done.stderr
