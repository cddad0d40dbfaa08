"""`voc customers import` and `voc visits import` against the profile app served by uvicorn on a
loopback port (its own thread and event loop, a fresh migrated database): exit codes, the report
the command prints, and the rows that landed."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from tests.conftest import DatabaseFactory
from voc_cli.__main__ import main as voc
from voc_platform import migrations
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_profile.__main__ import MIGRATIONS
from voc_profile.api import build_app
from voc_profile.models import Customer, Visit, audit_table
from voc_profile.settings import Settings

TOKEN = "test-admin-token-profile-cli"


class ProfileServer:
    """The profile REST app on 127.0.0.1:<free port>, in a thread with its own event loop."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="profile-http", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        database = Database(self.database_url)
        try:
            await migrations.upgrade(database, MIGRATIONS, name="profile")
            settings = Settings(admin_token=TOKEN, max_import_bytes=16 * 1024 * 1024, import_batch_size=100)
            app = build_app(settings, database, Audit(database, audit_table))
            config = uvicorn.Config(
                app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            # uvicorn says it is listening only through this flag.
            while not self._server.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if serving.done():
                serving.result()
            port = self._server.servers[0].sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await serving
        finally:
            await database.dispose()

    def start(self) -> ProfileServer:
        self._thread.start()
        assert self._ready.wait(60), "the profile app did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)

    def count(self, model: Any) -> int:
        """Rows in the service's database, read through a separate connection."""

        async def read() -> int:
            database = Database(self.database_url)
            try:
                async with database.session() as session:
                    return int(await session.scalar(select(func.count()).select_from(model)) or 0)
            finally:
                await database.dispose()

        return asyncio.run(read())


@pytest.fixture
def server(databases: DatabaseFactory) -> Iterator[ProfileServer]:
    running = ProfileServer(databases.url("profile_cli")).start()
    yield running
    running.stop()


def run(capsys: pytest.CaptureFixture[str], server: ProfileServer, *args: str) -> tuple[int, dict[str, Any]]:
    """`voc <args> --url … --token …` in process: (exit code, the JSON it printed)."""
    code = voc([*args, "--url", server.url, "--token", TOKEN])
    captured = capsys.readouterr()
    PROGRESS_SEEN[:] = captured.err.splitlines()
    printed: dict[str, Any] = json.loads(captured.out)
    return code, printed


PROGRESS_SEEN: list[str] = []  # what the last `run` printed on stderr


def customers_csv(n: int) -> str:
    return "loyalty_id,phone,email,name,tier,home_store_id\n" + "".join(
        f"CLI-{i:04d},010-7{i // 1000:03d}-{i % 1000:04d},cli{i}@example.com,고객{i},gold,store-{i % 3}\n"
        for i in range(n)
    )


def test_customer_and_visit_imports_print_the_report_and_exit_by_outcome(
    server: ProfileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A clean file: exit 0, every row created.
    clean = tmp_path / "customers.csv"
    clean.write_text(customers_csv(250), encoding="utf-8")
    code, report = run(capsys, server, "customers", "import", str(clean))
    assert code == 0
    assert report["kind"] == "customers" and report["rows"] == 250 and report["created"] == 250
    # Progress on stderr (#22): counts and rate, the last line at 100 %.
    assert PROGRESS_SEEN[-1].startswith(f"customers: sent [{'#' * 24}] 100% 250/250 rows, ")
    assert PROGRESS_SEEN[-1].endswith(" rows/s; the report follows")
    assert report["failed"] == 0 and report["errors"] == []
    assert server.count(Customer) == 250

    # Bad rows: exit 1, the printed report names their lines; the valid rows land.
    mixed = tmp_path / "more.csv"
    mixed.write_text(
        "loyalty_id,phone,email,name,tier\n"
        "CLI-0001,,,새 이름,vip\n"  # line 2: an update of an existing customer
        "CLI-9001,12,x@example.com,잘못된 번호,basic\n"  # line 3: phone
        "CLI-9002,,,등급,diamond\n"  # line 4: tier
        "CLI-9003,,new@example.com,신규,basic\n",  # line 5: a new customer
        encoding="utf-8",
    )
    code, report = run(capsys, server, "customers", "import", str(mixed))
    assert code == 1
    assert (report["created"], report["updated"], report["failed"]) == (1, 1, 2)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(3, "phone"), (4, "tier")]
    assert server.count(Customer) == 251
    headers = {"Authorization": f"Bearer {TOKEN}"}
    vips = httpx.get(f"{server.url}/v1/customers", params={"signal": "vip"}, headers=headers).json()
    assert [(c["name"], c["tier"], c["home_store_id"]) for c in vips["customers"]] == [
        ("새 이름", "vip", "store-1")
    ]

    # JSON Lines by the file's extension.
    lines = tmp_path / "customers.jsonl"
    lines.write_text(
        json.dumps({"loyalty_id": "CLI-J1", "name": "제이슨"}, ensure_ascii=False) + "\n{broken\n",
        encoding="utf-8",
    )
    code, report = run(capsys, server, "customers", "import", str(lines))
    assert code == 1 and report["created"] == 1 and [e["line"] for e in report["errors"]] == [2]
    assert "not valid JSON" in report["errors"][0]["message"]

    # Visits by loyalty id and phone; a re-run changes nothing and still exits 0.
    visits = tmp_path / "visits.csv"
    visits.write_text(
        "loyalty_id,phone,store_id,visited_at,amount\n"
        "CLI-0002,,store-gangnam,2026-03-01T12:30:00+09:00,15000\n"
        ",010-7000-0003,store-hongdae,1772337000,9000\n"
        "CLI-0404,,store-gangnam,2026-03-01T12:30:00+09:00,1\n",  # line 4: CLI-0404 is not a customer
        encoding="utf-8",
    )
    code, report = run(capsys, server, "visits", "import", str(visits))
    assert code == 1 and report["kind"] == "visits" and report["inserted"] == 2
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(4, "customer")]
    assert server.count(Visit) == 2
    good_visits = tmp_path / "visits-ok.csv"
    good_visits.write_text("\n".join(visits.read_text().splitlines()[:3]) + "\n", encoding="utf-8")
    code, report = run(capsys, server, "visits", "import", str(good_visits))
    assert code == 0 and report["inserted"] == 0 and report["unchanged"] == 2
    assert server.count(Visit) == 2


def test_a_file_the_service_refuses_exits_2_with_the_problem_and_writes_nothing(
    server: ProfileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Several MB after the broken line: the CLI is still sending when the service answers.
    broken = tmp_path / "broken.csv"
    with broken.open("wb") as out:
        out.write(customers_csv(2000).encode())
        out.write(b"CLI-X,,x@example.com,\xc3\x28,basic,\n")  # line 2002
        out.write(customers_csv(80_000).split("\n", 1)[1].encode())
    assert broken.stat().st_size > 4 * 1024 * 1024
    code, problem = run(capsys, server, "customers", "import", str(broken))
    assert code == 2
    assert problem["status"] == 400 and problem["line"] == 2002 and "not UTF-8" in problem["detail"]
    assert server.count(Customer) == 0

    unclosed = tmp_path / "visits.csv"
    unclosed.write_text(
        'loyalty_id,store_id,visited_at\nCLI-1,"store-gangnam,1772337000\nCLI-2,store-a,1772337000\n'
    )
    code, problem = run(capsys, server, "visits", "import", str(unclosed))
    assert code == 2 and problem["status"] == 400 and problem["line"] == 2
    assert "never closed" in problem["errors"][0]["message"]
    assert server.count(Visit) == 0

    # The real entry point and the token from the environment: the same answer, exit status 2.
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("loyalty_id,shoe_size\nCLI-1,270\n")
    env = {**os.environ, "VOC_ADMIN_TOKEN": TOKEN}
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "customers", "import", str(wrong), "--url", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    problem = json.loads(done.stdout)
    assert problem["status"] == 422 and problem["errors"][0]["field"] == "shoe_size"
    assert server.count(Customer) == 0


def test_a_missing_file_or_a_service_that_does_not_answer_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert voc(["customers", "import", str(tmp_path / "nope.csv"), "--url", url, "--token", TOKEN]) == 2
    assert "no such file" in capsys.readouterr().err
    present = tmp_path / "one.csv"
    present.write_text(customers_csv(1))
    assert voc(["customers", "import", str(present), "--url", url, "--token", TOKEN]) == 2
    assert "did not answer" in capsys.readouterr().err
