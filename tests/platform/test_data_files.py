"""Data files are private (#21 finding 12): SQLite databases (with their -wal and -shm) hold key
hashes and customer data, the JetStream store holds events with names and phones, the VAPID key
signs pushes. A service process and `voc up` create them 0600 in 0700 directories, like the
secrets file."""

from __future__ import annotations

from pathlib import Path

from tests.support.files import loose_modes
from tests.support.processes import service_process


def test_a_service_process_creates_its_data_files_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # as an operator's `mkdir` leaves it
    with service_process("voc_notify", data_dir):
        names = {p.name for p in data_dir.iterdir()}
        assert {"notify.db", "vapid_private_key.pem"} <= names
        assert "notify.db-wal" in names  # WAL mode: the -wal (and -shm) files are data too
    assert loose_modes(data_dir) == []
