"""`voc customers import FILE` and `voc visits import FILE`: stream a CRM or POS export to the
profile service's bulk import (CSV or JSON Lines) and print the per-row report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from voc_cli.up import admin_target
from voc_platform.progress import Progress

CHUNK = 256 * 1024


def _chunks(path: Path, progress: Progress | None = None) -> Iterator[bytes]:
    last = b"\n"
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
            last = chunk
            if progress is not None:
                progress.advance(chunk.count(b"\n"))
    if progress is not None and not last.endswith(b"\n"):
        progress.advance(1)  # a last line without its newline


def _lines(path: Path) -> int:
    """Lines in the file (a last one without a newline counts), for the progress bar."""
    count, last = 0, b"\n"
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            count, last = count + chunk.count(b"\n"), chunk
    return count + (0 if last.endswith(b"\n") else 1)


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt = args.format or ("jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv")
    url, token = admin_target(
        args.url, args.token, service="profile", data_dir=getattr(args, "data_dir", None)
    )
    endpoint = "/v1/customers:import" if args.kind == "customers" else "/v1/visits:import"
    if not path.is_file():
        print(f"voc {args.kind} import: no such file: {path}", file=sys.stderr)
        return 2
    progress = None
    if not args.no_progress:
        header = 1 if fmt == "csv" else 0  # a CSV's first line names the columns
        progress = Progress(f"{args.kind}: sent", max(_lines(path) - header, 0), "rows")
        progress.done = -header
    try:
        response = httpx.post(
            f"{url}{endpoint}",
            params={"format": fmt},
            content=_chunks(path, progress),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(600, connect=10),
        )
    except httpx.HTTPError as exc:
        print(f"voc {args.kind} import: {url} did not answer ({exc!r})", file=sys.stderr)
        return 2
    if progress is not None:
        progress.finish("the report follows")
    try:
        answer = response.json()
    except ValueError:
        print(f"voc {args.kind} import: HTTP {response.status_code}: {response.text[:500]}", file=sys.stderr)
        return 2
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    if response.status_code != 200:
        return 2
    return 1 if answer.get("failed") else 0


def register(subparsers: Any, command: Any) -> None:
    """Add `customers import` and `visits import` to the `voc` command (`command` adds a
    subcommand whose --help ends with an example)."""
    for kind, help_text in (("customers", "CRM customers (admin)"), ("visits", "POS visits (admin)")):
        example = f"voc {kind} import {kind}.csv"
        parser = command(subparsers, kind, help_text, example)
        actions = parser.add_subparsers(dest="action", required=True)
        run = command(actions, "import", f"bulk import {kind} from CSV or JSON Lines", example)
        run.add_argument("file")
        run.add_argument("--format", choices=("csv", "jsonl"), help="default: by file extension")
        run.add_argument("--url", help="profile service URL (default: from demo-credentials.json)")
        run.add_argument("--token", help="admin token (default: $VOC_ADMIN_TOKEN or demo-credentials.json)")
        run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
        run.set_defaults(func=cmd_import, kind=kind)
