"""`voc status` and `voc dlq`: what an operator asks of a running system.

`voc status` reads what `voc up` keeps in `$VOC_DATA_DIR/voc-up.json` (process ids, addresses),
asks every service's `/readyz`, JetStream for each durable consumer's pending and unacked
messages and the dead-letter stream's depth, and each service's own database for its outbox
rows not yet published (read-only).

Dead letters: a consumer that fails a message `max_deliver` times copies it to the `VOC_DLQ`
stream on `dlq.<original subject>` with the headers `Voc-Dead-Letter-Reason`,
`Voc-Dead-Letter-Consumer`, `Voc-Original-Subject` and `Nats-Msg-Id` = `<consumer>:<event id>`
(`voc_platform.bus.Bus._dead_letter`); its id here is its sequence number in that stream.
`replay` publishes it again on its original subject with its original headers and event id and
then deletes it from the dead-letter stream: the consumer that failed runs it again, and the
others skip it (they record every event id they handled, `processed_events`). JetStream refuses
an event id it stored less than its duplicate window (120 s) ago; such a replay is reported and
the dead letter kept. `discard` deletes dead letters. Both ask for confirmation (`--yes` skips
it) and `--dry-run` only says what they would do.

Connections use the services' variables: `VOC_NATS_URL` (else the one `voc up` runs),
`VOC_NATS_USER` / `_PASSWORD`, `VOC_NATS_CREDS`, `VOC_NATS_NKEY_SEED`, `VOC_NATS_TLS_*`
(deploy/: the `admin` user), and `VOC_<SERVICE>_DATABASE_URL` (else SQLite in the data dir).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from voc_cli.supervisor import DEFAULT_PORTS, SERVICES, port_setting, state_file
from voc_platform.bus import DLQ_STREAM, EVENTS_STREAM, NatsSecurity
from voc_platform.settings import comma_list

T = TypeVar("T")
DEAD_LETTER_HEADERS = ("Voc-Dead-Letter-Reason", "Voc-Dead-Letter-Consumer", "Voc-Original-Subject")
#: Not found: an unknown dead-letter id (a one-line message, nothing changed).
EXIT_NOT_FOUND = 2


class NotFound(Exception):
    """A dead-letter id that is not in the stream."""


def data_dir(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "data_dir", None) or os.environ.get("VOC_DATA_DIR", "./var"))


def read_state(directory: Path) -> dict[str, Any]:
    """What `voc up` said it runs, or {} when it is not running from this data dir."""
    path = state_file(directory.resolve())
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state


def nats_url(args: argparse.Namespace) -> str:
    return str(
        getattr(args, "nats_url", None)
        or os.environ.get("VOC_NATS_URL")
        or read_state(data_dir(args)).get("nats_url")
        or f"nats://127.0.0.1:{os.environ.get('VOC_NATS_PORT', '4230')}"
    )


def security(environ: Mapping[str, str]) -> NatsSecurity:
    """The NATS credentials and TLS from the same variables the services read."""

    def path(name: str) -> Path | None:
        value = environ.get(name)
        return Path(value) if value else None

    return NatsSecurity(
        user=environ.get("VOC_NATS_USER") or None,
        password=environ.get("VOC_NATS_PASSWORD") or None,
        creds=path("VOC_NATS_CREDS"),
        nkey_seed=path("VOC_NATS_NKEY_SEED"),
        tls_ca=path("VOC_NATS_TLS_CA"),
        tls_cert=path("VOC_NATS_TLS_CERT"),
        tls_key=path("VOC_NATS_TLS_KEY"),
    )


async def connect(url: str) -> Client:
    """A few quick tries at each server, then `NoServersError` (the command says NATS does not
    answer and exits 1). nats-py reads `max_reconnect_attempts=0` as "for ever" (1 gives two
    tries a server), and logs each failed try with its traceback unless given an error callback."""
    servers = comma_list(url)

    async def quiet(_: Exception) -> None:
        pass

    return await nats.connect(
        servers=servers,
        name="voc-cli",
        connect_timeout=2,
        max_reconnect_attempts=1,
        reconnect_time_wait=0,
        allow_reconnect=False,
        error_cb=quiet,
        **security(os.environ).connect_options(servers),
    )


def with_jetstream(url: str, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def run() -> T:
        nc = await connect(url)
        try:
            return await work(nc.jetstream(timeout=5))
        finally:
            await nc.close()

    return asyncio.run(run())


# ---------------------------------------------------------------------------------- dead letters


@dataclass(frozen=True)
class DeadLetter:
    id: int
    subject: str  # dlq.<original subject>
    time: datetime | None
    headers: dict[str, str]
    data: bytes

    @property
    def original_subject(self) -> str:
        return self.headers.get("Voc-Original-Subject") or self.subject.removeprefix("dlq.")

    @property
    def consumer(self) -> str:
        return self.headers.get("Voc-Dead-Letter-Consumer", "")

    @property
    def reason(self) -> str:
        return self.headers.get("Voc-Dead-Letter-Reason", "")

    @property
    def event_id(self) -> str:
        """The original event id (the dead letter's own Nats-Msg-Id is `<consumer>:<id>`)."""
        stored = self.headers.get("Nats-Msg-Id", "")
        prefix = f"{self.consumer}:"
        return stored[len(prefix) :] if self.consumer and stored.startswith(prefix) else stored

    def replay_headers(self) -> dict[str, str]:
        """The headers the event had before it died: trace context, type, its own event id."""
        headers = {k: v for k, v in self.headers.items() if k not in DEAD_LETTER_HEADERS}
        headers.pop("Nats-Msg-Id", None)
        if self.event_id:
            headers["Nats-Msg-Id"] = self.event_id
        return headers

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time.isoformat() if self.time else None,
            "subject": self.original_subject,
            "event_type": self.headers.get("Voc-Event-Type", ""),
            "consumer": self.consumer,
            "event_id": self.event_id,
            "reason": self.reason,
            "bytes": len(self.data),
        }


def _letter(raw: Any) -> DeadLetter:
    return DeadLetter(
        id=int(raw.seq),
        subject=str(raw.subject),
        time=raw.time if isinstance(raw.time, datetime) else None,
        headers={str(k): str(v) for k, v in (raw.headers or {}).items()},
        data=raw.data or b"",
    )


async def dead_letters(js: JetStreamContext, *, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters in stream order, at most `limit`."""
    found: list[DeadLetter] = []
    info = await js.stream_info(DLQ_STREAM)
    seq = max(int(info.state.first_seq or 1), 1)
    last = int(info.state.last_seq or 0)
    while seq <= last and (limit is None or len(found) < limit):
        try:
            raw = await js.get_msg(DLQ_STREAM, seq=seq, subject="dlq.>", next=True)
        except NotFoundError:
            break
        found.append(_letter(raw))
        seq = int(raw.seq or seq) + 1
    return found


async def dead_letter(js: JetStreamContext, letter_id: int) -> DeadLetter:
    try:
        return _letter(await js.get_msg(DLQ_STREAM, seq=letter_id))
    except NotFoundError:
        raise NotFound(f"no dead letter {letter_id} in {DLQ_STREAM} (`voc dlq list` shows them)") from None


def decoded_payload(letter: DeadLetter) -> Any:
    """The event as JSON when its type is one of ours, else the payload's size."""
    type_name = letter.headers.get("Voc-Event-Type", "")
    try:
        from google.protobuf import json_format, symbol_database

        import voc.events.v1.events_pb2  # noqa: F401 - registers the event types

        message = symbol_database.Default().GetSymbol(type_name)()
        message.ParseFromString(letter.data)
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    except Exception:
        return {"bytes": len(letter.data), "note": f"not decoded (type {type_name or 'unknown'})"}


def _confirm(question: str, args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question} [y/N] no: not a terminal; pass --yes to confirm", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _ids(args: argparse.Namespace) -> list[int] | None:
    """The ids given, or None for --all."""
    if args.all:
        return None
    if not args.ids:
        raise SystemExit(f"voc dlq {args.action}: give dead-letter ids or --all (`voc dlq list`)")
    return [int(i) for i in args.ids]


def cmd_dlq(args: argparse.Namespace) -> int:
    url = nats_url(args)
    try:
        return with_jetstream(url, lambda js: _dlq(js, args))
    except NotFound as exc:
        print(exc, file=sys.stderr)
        return EXIT_NOT_FOUND
    except (OSError, nats.errors.Error) as exc:
        print(f"voc dlq: cannot reach NATS at {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


async def _dlq(js: JetStreamContext, args: argparse.Namespace) -> int:
    try:
        await js.stream_info(DLQ_STREAM)
    except NotFoundError:
        print(f"no {DLQ_STREAM} stream yet (no service has started on this NATS)", file=sys.stderr)
        return 1
    if args.action == "list":
        letters = await dead_letters(js, limit=args.limit)
        if args.json:
            print(json.dumps([letter.summary() for letter in letters], ensure_ascii=False, indent=2))
            return 0
        if not letters:
            print(f"no dead letters in {DLQ_STREAM}")
            return 0
        print(f"{'id':>6}  {'time (UTC)':<19}  {'subject':<32} {'consumer':<20} reason")
        for letter in letters:
            when = letter.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if letter.time else "?"
            print(
                f"{letter.id:>6}  {when:<19}  {letter.original_subject:<32} {letter.consumer:<20} "
                f"{letter.reason[:80]}"
            )
        return 0
    if args.action == "show":
        letter = await dead_letter(js, int(args.id))
        shown = {**letter.summary(), "headers": letter.headers, "event": decoded_payload(letter)}
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0

    ids = _ids(args)
    letters = await dead_letters(js) if ids is None else [await dead_letter(js, i) for i in ids]
    if not letters:
        print(f"no dead letters in {DLQ_STREAM}")
        return 0
    verb = "replay" if args.action == "replay" else "discard"
    for letter in letters:
        target = f" -> {letter.original_subject}" if verb == "replay" else ""
        would = "would " if args.dry_run else ""
        print(f"{would}{verb} {letter.id}{target} ({letter.consumer}: {letter.reason[:60]})")
    if args.dry_run:
        print(f"dry run: nothing {verb}ed")
        return 0
    if not _confirm(f"{verb.capitalize()} {len(letters)} dead letter(s)?", args):
        print("nothing changed")
        return 1
    done = kept = 0
    for letter in letters:
        if verb == "replay":
            ack = await js.publish(letter.original_subject, letter.data, headers=letter.replay_headers())
            if ack.duplicate:
                age = time.time() - letter.time.timestamp() if letter.time else 0.0
                print(
                    f"kept {letter.id}: JetStream still remembers event {letter.event_id} (its duplicate "
                    f"window is 120 s; this one died {age:.0f} s ago); replay it again later"
                )
                kept += 1
                continue
        with contextlib.suppress(NotFoundError):  # discarded meanwhile: the same outcome
            await js.delete_msg(DLQ_STREAM, letter.id)
        done += 1
    print(f"{verb}ed {done} dead letter(s)" + (f", kept {kept}" if kept else ""))
    return 1 if kept else 0


# ---------------------------------------------------------------------------------------- status


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(target: str) -> bool:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def outbox_pending(service: str, directory: Path) -> dict[str, Any]:
    """Rows of the service's outbox not yet published, and the oldest one's age (read-only)."""
    url = os.environ.get(f"VOC_{service.upper()}_DATABASE_URL") or f"sqlite:///{directory / f'{service}.db'}"
    sql = "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL"
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1].split("?", 1)[0]
            if not Path(path).exists():
                return {"error": f"no database at {path}"}
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as db:
                count, oldest = db.execute(sql).fetchone()
        else:
            import asyncpg  # lazy: only for PostgreSQL

            async def query() -> tuple[int, float | None]:
                conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
                try:
                    row = await conn.fetchrow(sql)
                    return int(row[0]), row[1]
                finally:
                    await conn.close()

            count, oldest = asyncio.run(query())
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"pending": int(count), "oldest_age_seconds": round(time.time() - oldest, 1) if oldest else None}


async def _bus_status(js: JetStreamContext) -> dict[str, Any]:
    consumers = [
        {
            "consumer": info.name,
            "pending": int(info.num_pending or 0),
            "ack_pending": int(info.num_ack_pending or 0),
            "redelivered": int(info.num_redelivered or 0),
        }
        for info in await js.consumers_info(EVENTS_STREAM)
    ]
    try:
        dlq = int((await js.stream_info(DLQ_STREAM)).state.messages or 0)
    except NotFoundError:
        dlq = 0
    return {"consumers": sorted(consumers, key=lambda c: str(c["consumer"])), "dlq_depth": dlq}


def status(args: argparse.Namespace) -> dict[str, Any]:
    directory = data_dir(args)
    state = read_state(directory)
    report: dict[str, Any] = {
        "supervisor": {"pid": state.get("pid"), "running": pid_alive(state.get("pid"))} if state else None,
        "services": {},
    }
    with httpx.Client(timeout=2, trust_env=False) as client:
        for name in SERVICES:
            known = state.get("services", {}).get(name, {})
            http_port, grpc_port = DEFAULT_PORTS[name]
            upper = name.upper()
            http_port = port_setting(f"VOC_{upper}_HTTP_PORT", http_port, command="voc status")
            grpc_port = port_setting(f"VOC_{upper}_GRPC_PORT", grpc_port, command="voc status")
            url = known.get("url") or f"http://127.0.0.1:{http_port}"
            grpc = known.get("grpc") or f"127.0.0.1:{grpc_port}"
            try:
                ready = client.get(f"{url}/readyz").status_code == 200
                answers = True
            except httpx.HTTPError:
                ready = answers = False
            entry: dict[str, Any] = {
                "pid": known.get("pid"),
                "process": pid_alive(known.get("pid")) if known else None,
                "http": url,
                "http_answers": answers,
                "ready": ready,
                "grpc": grpc,
                "grpc_open": _port_open(grpc),
                "restarts": known.get("restarts", 0),
                "outbox": outbox_pending(name, directory),
            }
            if known.get("gave_up"):
                entry["gave_up"] = known["gave_up"]
            report["services"][name] = entry
    url = nats_url(args)
    report["nats"] = {"url": url, "pid": state.get("nats_pid"), "restarts": state.get("nats_restarts", 0)}
    try:
        report["nats"].update(with_jetstream(url, _bus_status), reachable=True)
    except Exception as exc:
        report["nats"].update(reachable=False, error=f"{type(exc).__name__}: {exc}"[:200])
    return report


def healthy(report: Mapping[str, Any]) -> bool:
    return bool(report["nats"].get("reachable")) and all(s["ready"] for s in report["services"].values())


def cmd_status(args: argparse.Namespace) -> int:
    report = status(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if healthy(report) else 1
    supervisor = report["supervisor"]
    if supervisor is None:
        print(f"voc up: not running from {data_dir(args)} (no voc-up.json there); asking the default ports")
    else:
        print(f"voc up: pid {supervisor['pid']} {'running' if supervisor['running'] else 'NOT RUNNING'}")
    print(f"{'service':<9} {'pid':>7} {'ready':<6} {'http':<24} {'grpc':<16} {'restarts':>8}  outbox pending")
    for name, s in report["services"].items():
        box = s["outbox"]
        pending = box.get("error") or (
            f"{box['pending']}" + (f" (oldest {box['oldest_age_seconds']} s)" if box["pending"] else "")
        )
        grpc = s["grpc"] + ("" if s["grpc_open"] else " (closed)")
        print(
            f"{name:<9} {s['pid'] or '-':>7} {'yes' if s['ready'] else 'NO':<6} {s['http']:<24} "
            f"{grpc:<16} {s['restarts']:>8}  {pending}"
        )
        if s.get("gave_up"):
            print(f"          given up: {s['gave_up']}")
    n = report["nats"]
    if not n.get("reachable"):
        print(f"nats      {n['url']}: NOT REACHABLE ({n.get('error')})")
        return 1
    print(
        f"nats      {n['url']}  pid {n['pid'] or '-'}  restarts {n['restarts']}  "
        f"dead letters {n['dlq_depth']}"
    )
    print(f"{'consumer':<28} {'pending':>8} {'unacked':>8} {'redelivered':>11}")
    for c in n["consumers"]:
        print(f"{c['consumer']:<28} {c['pending']:>8} {c['ack_pending']:>8} {c['redelivered']:>11}")
    return 0 if healthy(report) else 1
