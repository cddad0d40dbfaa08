"""`voc classifier train | status | promote | rollback`: the classifier's model registry on the
feedback service (docs/CLASSIFIER.md, "Learning from corrections"; docs/OPERATIONS.md).

`train` builds a version from the committed corpora plus staff corrections (an ndjson export
file, or downloaded `--from` a feedback service), scores it and the active version on the gate's
held-out sets in this process, uploads it with those figures as a candidate and asks for its
promotion, which the service grants only if no figure falls beyond the gate's tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from voc_cli.up import admin_target

GATE_ENTRY = "gate.json"


class Refused(Exception):
    """The service answered with an error; its problem+json is printed."""


def _call(method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    try:
        return httpx.request(method, url, headers=headers, timeout=httpx.Timeout(120, connect=10), **kwargs)
    except httpx.HTTPError as exc:
        raise Refused(f"{url} did not answer ({exc!r})") from exc


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    if response.status_code >= 400:
        raise Refused(f"HTTP {response.status_code}: {json.dumps(body, ensure_ascii=False, indent=2)}")
    return body


def _target(args: argparse.Namespace) -> tuple[str, str]:
    return admin_target(args.url, args.token, service="feedback", data_dir=getattr(args, "data_dir", None))


def download_corrections(base: str, token: str) -> str:
    """The feedback service's corrections export (`GET /v1/classifier/corrections`, ndjson)."""
    response = _call("GET", f"{base.rstrip('/')}/v1/classifier/corrections", token)
    if response.status_code >= 400:
        _json(response)
    return response.text


def _gate_table(candidate: dict[str, float], baseline: dict[str, float], versions: tuple[str, str]) -> str:
    from voc_feedback.classification.gate import GATE_METRICS, TOLERANCE

    lines = [f"{'gate metric':<34}{versions[0][:20]:>21}{versions[1][:20]:>21}{'change':>9}{'allowed':>9}"]
    for metric in GATE_METRICS:
        change = candidate[metric] - baseline[metric]
        verdict = "" if change >= -TOLERANCE[metric] - 1e-9 else "  REGRESSES"
        lines.append(
            f"{metric:<34}{baseline[metric]:>21.4f}{candidate[metric]:>21.4f}{change:>+9.4f}"
            f"{-TOLERANCE[metric]:>+9.3f}{verdict}"
        )
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    """Train, gate, upload, promote; exit 0 promoted (or uploaded with --no-promote), 1 refused, 2 error."""
    # Lazy: numpy and the classifier (~0.3 s) only for this command.
    from voc_feedback.classification import train as training
    from voc_feedback.classification.correction_export import (
        CorrectionsInvalid,
        parse_corrections,
        read_corrections,
    )
    from voc_feedback.classification.gate import GateDataMissing, gate_metrics
    from voc_feedback.classification.model import BundleInvalid, packaged_model, read_bundle, write_bundle
    from voc_platform.progress import shown

    try:
        url, token = _target(args)
        if args.from_url:
            text = download_corrections(args.from_url, token)
            corrections = parse_corrections(text.splitlines())
            print(f"corrections: {len(corrections)} items from {args.from_url}")
        elif args.corrections:
            corrections = read_corrections(Path(args.corrections))
            print(f"corrections: {len(corrections)} items from {args.corrections}")
        else:
            corrections = []
            print("corrections: none given (--corrections FILE or --from URL)")
        state = _json(_call("GET", f"{url}/v1/admin/classifier/models", token))
        baseline_version = state["active_version"] or state["builtin_version"]
        if state["active_version"]:
            blob = _call("GET", f"{url}/v1/admin/classifier/models/{baseline_version}/bundle", token)
            if blob.status_code != 200:
                _json(blob)
            baseline_model = read_bundle(blob.content)[0]
        else:
            baseline_model = packaged_model()
            if baseline_model.version != baseline_version:
                raise Refused(
                    f"the service's built-in model is {baseline_version}, this checkout's "
                    f"{baseline_model.version}: run the gate from the same release"
                )
        started = time.perf_counter()
        rows = training.load_rows(Path(args.data)) + training.correction_rows(corrections)
        trained = training.train_model(training.small_sample(rows, args.max_rows), show=shown(args.progress))
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        candidate_model = read_bundle(write_bundle(trained.npz, trained.meta))[0]
        candidate = gate_metrics(candidate_model, Path(args.data))
        baseline = gate_metrics(baseline_model, Path(args.data))
        gate_seconds = time.perf_counter() - started
    except (Refused, OSError, CorrectionsInvalid, GateDataMissing, BundleInvalid) as exc:
        print(f"voc classifier train: {exc}", file=sys.stderr)
        return 2
    print(f"trained {trained.version} in {train_seconds:.1f} s; gate scored in {gate_seconds:.1f} s")
    print(_gate_table(candidate, baseline, (f"active {baseline_version}", f"new {trained.version}")))
    gate = {"baseline_version": baseline_version, "candidate": candidate, "baseline": baseline}
    bundle = write_bundle(trained.npz, trained.meta, {GATE_ENTRY: json.dumps(gate).encode()})
    try:
        uploaded = _json(
            _call(
                "POST",
                f"{url}/v1/admin/classifier/models",
                token,
                content=bundle,
                headers={"Content-Type": "application/zip"},
            )
        )
        print(f"uploaded {uploaded['version']} as a candidate ({uploaded['training_rows']} training rows)")
        if args.no_promote:
            return 0
        return _promote(url, token, uploaded["version"])
    except Refused as exc:
        print(f"voc classifier train: {exc}", file=sys.stderr)
        return 2


def _promote(url: str, token: str, version: str) -> int:
    response = _call("POST", f"{url}/v1/admin/classifier/models/{version}:promote", token)
    if response.status_code == 409:
        problem = response.json()
        print(f"REFUSED: {problem.get('detail')}", file=sys.stderr)
        for r in problem.get("regressions", []):
            print(
                f"  {r['metric']}: {r['candidate']} against {r['baseline']} (fell {r['drop']}, "
                f"allowed {r['tolerance']})",
                file=sys.stderr,
            )
        return 1
    promoted = _json(response)
    print(
        f"promoted {promoted['version']} (was {promoted['previous_version']}); every replica switches to it"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        url, token = _target(args)
        state = _json(_call("GET", f"{url}/v1/admin/classifier/models", token))
    except Refused as exc:
        print(f"voc classifier status: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(state, ensure_ascii=False, indent=2))
        return 0
    print(f"active:  {state['active_version'] or state['builtin_version'] + ' (built-in)'}")
    print(f"served by {url}: {state['served_version']}")
    for m in state["models"]:
        gate = (m["metrics"] or {}).get("gate") or {}
        figures = ", ".join(f"{k} {v:.4f}" for k, v in (gate.get("candidate") or {}).items())
        print(f"  {m['version']:<22} {m['status']:<10} rows {m['training_rows']:>6}  by {m['created_by']}")
        if figures:
            print(f"    gate vs {gate.get('baseline_version')}: {figures}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    try:
        url, token = _target(args)
        return _promote(url, token, args.version)
    except Refused as exc:
        print(f"voc classifier promote: {exc}", file=sys.stderr)
        return 2


def cmd_rollback(args: argparse.Namespace) -> int:
    try:
        url, token = _target(args)
        done = _json(_call("POST", f"{url}/v1/admin/classifier/models/{args.version}:rollback", token))
    except Refused as exc:
        print(f"voc classifier rollback: {exc}", file=sys.stderr)
        return 2
    print(f"rolled back to {done['active_version']} (was {done['previous_version']})")
    return 0


def register(subparsers: Any, command: Any) -> None:
    """Add `classifier train | status | promote | rollback` to the `voc` command."""
    from voc_platform.progress import add_flag

    parser = command(
        subparsers, "classifier", "the classifier's model registry (admin)", "voc classifier status"
    )
    actions = parser.add_subparsers(dest="action", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="feedback service URL (default: from demo-credentials.json)")
        p.add_argument("--token", help="admin token (default: $VOC_ADMIN_TOKEN or demo-credentials.json)")

    train = command(
        actions,
        "train",
        "train a version from data/classifier + corrections, gate it, upload and promote it",
        "voc classifier train --from http://127.0.0.1:8010\n"
        "  voc classifier train --corrections corrections.ndjson --no-promote",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument("--corrections", help="staff corrections, the ndjson export")
    source.add_argument("--from", dest="from_url", help="download the corrections from this feedback service")
    train.add_argument(
        "--data", default="data/classifier", help="corpora and held-out sets (default: %(default)s)"
    )
    train.add_argument(
        "--max-rows",
        type=int,
        default=0,
        help="train on about N rows: a deliberately weak model the gate must refuse (tests)",
    )
    train.add_argument("--no-promote", action="store_true", help="upload as a candidate only")
    add_flag(train)
    target(train)
    train.set_defaults(func=cmd_train)

    status = command(
        actions, "status", "active version, candidates and their gate figures", "voc classifier status"
    )
    status.add_argument("--json", action="store_true")
    target(status)
    status.set_defaults(func=cmd_status)

    promote = command(
        actions, "promote", "promote a candidate (the gate applies)", "voc classifier promote VERSION"
    )
    promote.add_argument("version")
    target(promote)
    promote.set_defaults(func=cmd_promote)

    back = command(
        actions,
        "rollback",
        "make an earlier active version (or the built-in one) active again",
        "voc classifier rollback hashlr-2-abf3131c3a",
    )
    back.add_argument("version")
    target(back)
    back.set_defaults(func=cmd_rollback)
