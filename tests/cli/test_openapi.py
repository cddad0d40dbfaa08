"""The four services' OpenAPI documents are committed under docs/openapi/ (#19 §3): the same
bytes as their apps serve, rewritten by `make openapi`, and a stale one fails `make lint`
(`voc openapi --check`) with the command that fixes it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from voc_cli import openapi

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_documents_are_what_the_apps_serve() -> None:
    assert openapi.DOCS == ROOT / "docs" / "openapi"
    assert openapi.stale() == [], "run 'make openapi' and commit docs/openapi/"
    notify = json.loads((openapi.DOCS / "notify.json").read_text())
    assert {"/v1/admin/webhooks", "/v1/admin/webhooks/{endpoint_id}/rotate-secret"} <= set(notify["paths"])
    feedback = json.loads((openapi.DOCS / "feedback.json").read_text())
    intake = feedback["paths"]["/v1/feedback"]["post"]
    assert "202" in intake["responses"] and "429" in intake["responses"]


def test_check_fails_on_a_stale_document_and_write_fixes_it(tmp_path: Path) -> None:
    def voc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voc_cli", "openapi", "--out", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    written = voc()
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{s}.json" for s in sorted(openapi.SERVICES)]
    assert voc("--check").returncode == 0
    (tmp_path / "actions.json").write_text("{}\n")
    stale = voc("--check")
    assert stale.returncode == 1 and "actions" in stale.stderr and "make openapi" in stale.stderr
    assert voc().returncode == 0 and voc("--check").returncode == 0


def test_make_lint_checks_the_documents() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = re.search(r"^lint:([^#\n]*)", makefile, re.MULTILINE)
    assert lint is not None and "openapi-check" in lint.group(1).split()
    assert re.search(r"^openapi-check:.*\n\t@\$\(RUN\) voc openapi --check$", makefile, re.MULTILINE)
