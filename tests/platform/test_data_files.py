"""Data files are private (#21 finding 12): SQLite databases (with their -wal and -shm) hold key
hashes and customer data, the JetStream store holds events with names and phones, the VAPID key
signs pushes. A service process and `voc up` create them 0600 in 0700 directories, like the
secrets file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.files import loose_modes
from voc_cli.supervisor import free_port


def test_a_service_process_creates_its_data_files_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # as an operator's `mkdir` leaves it
    http = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update(
        {
            "VOC_DATA_DIR": str(data_dir),
            "VOC_NOTIFY_HTTP_PORT": str(http),
            "VOC_NOTIFY_GRPC_PORT": str(free_port()),
            "VOC_NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nobody there: intake answers anyway
            "VOC_LOG_FORMAT": "text",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "voc_notify"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "notify exited"
            try:
                if httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "notify did not start"
            time.sleep(0.1)
        names = {p.name for p in data_dir.iterdir()}
        assert {"notify.db", "vapid_private_key.pem"} <= names
        assert "notify.db-wal" in names  # WAL mode: the -wal (and -shm) files are data too
    finally:
        proc.terminate()
        proc.wait(20)
    assert loose_modes(data_dir) == []
