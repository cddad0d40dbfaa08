"""`make test` says so in its last line when the browser tests could not run, and `make
test-browser` is how to run them (#22 §3)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def test_make_test_ends_with_the_browser_line_when_chromium_is_missing() -> None:
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "test-sqlite",
            "PYTEST_ARGS=-q -p no:cacheprovider tests/test_import_rules.py",
        ],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    line = "make: browser tests skipped (/usr/bin/chromium not installed); run them with 'make test-browser'"
    if CHROMIUM.exists():
        assert "browser tests skipped" not in done.stdout
    else:
        assert last.startswith(line), last


def test_make_test_browser_installs_chromium_as_root_and_runs_the_browser_tests() -> None:
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "test-browser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "apt-get install -y -qq chromium fonts-noto-cjk" in plan and '"$(id -u)" = 0' in plan
    assert "pytest -m browser tests/browser" in plan
