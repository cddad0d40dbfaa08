"""The `voc` command: run the system, seed and try it, and the CX team's admin helpers.

The cluster (nats-py, ~290 ms to import), the push emulator (cryptography, ~85 ms) and the
playbook engine (~60 ms) are imported inside the subcommands that use them, so that `voc api-keys`
or `voc customers import` starts without them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from voc_cli import classifier_cli, profile_cli, supervisor, up
from voc_cli.processes import interrupt_on_sigterm
from voc_cli.supervisor import keep_data_private, load_or_create_secrets

if TYPE_CHECKING:
    from voc_cli.mail_sink import ReceivedMail


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("VOC_DATA_DIR", "./var"))


def _admin(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    token = os.environ.get("VOC_ADMIN_TOKEN") or load_or_create_secrets(_data_dir(args))["admin_token"]
    return token, {"Authorization": f"Bearer {token}"}


def _url(service: str, default_port: int) -> str:
    return os.environ.get(
        f"VOC_{service.upper()}_URL",
        f"http://127.0.0.1:{os.environ.get(f'VOC_{service.upper()}_HTTP_PORT', default_port)}",
    )


def cmd_up(args: argparse.Namespace) -> int:
    try:
        keep_data_private(_data_dir(args))  # before anything is written there
    except OSError as exc:
        print(f"[voc] cannot start: VOC_DATA_DIR {_data_dir(args)}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.scale > 1:
        # N processes per service on a 3-node JetStream cluster and PostgreSQL (docs/SCALING.md).
        from voc_cli.cluster import run_up as run_cluster  # lazy: nats-py (see the docstring)

        return run_cluster(
            data_dir=_data_dir(args), replicas=args.scale, postgres_url=args.postgres, seed=not args.no_seed
        )
    return up.run(data_dir=_data_dir(args), seed=not args.no_seed)


def cmd_playbooks(args: argparse.Namespace) -> int:
    from voc_actions.playbooks import (  # lazy: the playbook engine (see the docstring)
        PlaybookValidationError,
        load_directory,
        read_directory,
        run_cases,
    )

    try:
        library = load_directory(args.dir, require_defaults=args.action != "publish")
    except PlaybookValidationError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.action == "validate":
        print(f"ok: {len(library)} playbooks in {args.dir}")
        return 0
    if args.action == "test":
        try:
            results = run_cases(library, Path(args.cases).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"cannot read {args.cases}: {exc}", file=sys.stderr)
            return 1
        except PlaybookValidationError as exc:
            print(exc, file=sys.stderr)
            return 1
        failed = [r for r in results if not r.ok]
        for r in results:
            print(f"{'PASS' if r.ok else 'FAIL'}  {r.name}: expected {r.expected}, got {r.actual}")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed else 0
    _, headers = _admin(args)
    files = dict(read_directory(args.dir))
    response = httpx.put(
        f"{_url('actions', 8030)}/v1/playbooks", json={"files": files}, headers=headers, timeout=30
    )
    print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    return 0 if response.status_code == 200 else 1


def cmd_api_keys(args: argparse.Namespace) -> int:
    """Store API keys over feedback's admin API. `rotate` issues a new key for the same stores
    and keeps the old one working for `--grace` seconds (then it is refused); `revoke` stops a
    key at once (a lost tablet)."""
    _, headers = _admin(args)
    base = f"{_url('feedback', 8010)}/v1/admin/api-keys"
    key_id = getattr(args, "key_id", None) or getattr(args, "id", None)
    if args.action in ("rotate", "revoke") and not key_id:
        print(f"voc api-keys {args.action}: give the key's id (see `voc api-keys list`)", file=sys.stderr)
        return 2
    if args.action == "create":
        response = httpx.post(
            base, json={"name": args.name, "store_ids": args.store}, headers=headers, timeout=10
        )
    elif args.action == "list":
        response = httpx.get(base, headers=headers, timeout=10)
    elif args.action == "rotate":
        response = httpx.post(
            f"{base}/{key_id}/rotate", json={"grace_seconds": args.grace}, headers=headers, timeout=10
        )
    else:
        response = httpx.delete(f"{base}/{key_id}", headers=headers, timeout=10)
    if response.content:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    if args.action == "rotate" and response.status_code == 201:
        print(
            f"rotated: the new key is above (shown once); the old key {key_id} keeps working for "
            f"{args.grace} s, then it is refused",
            file=sys.stderr,
        )
    elif args.action == "revoke" and response.status_code == 204:
        print(f"revoked: {key_id} is refused from now on", file=sys.stderr)
    return 0 if response.status_code < 400 else 1


def cmd_demo_phone(args: argparse.Namespace) -> int:
    """A stand-in phone: a local push service that decrypts and prints what notify sends."""
    from voc_cli.push_emulator import PushEmulator  # lazy: cryptography (see the docstring)

    creds = up.load_credentials(_data_dir(args))
    person = next((s for s in creds["staff"] if s["email"] == args.email), None)
    if person is None:
        print(f"no demo staff with e-mail {args.email}", file=sys.stderr)
        return 1
    notify = creds["notify_url"]
    try:
        login = httpx.post(
            f"{notify}/v1/auth/login",
            json={"email": person["email"], "password": person["password"]},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        print(
            f"[phone] notify at {notify} does not answer ({type(exc).__name__}): is `voc up` running?",
            file=sys.stderr,
        )
        return 1
    if login.status_code != 200:
        print(
            f"[phone] notify refused the login of {person['email']}: HTTP {login.status_code}",
            file=sys.stderr,
        )
        return 1
    token = login.json()["access_token"]
    port = args.port if args.port is not None else supervisor.demo_phone_port()
    interrupt_on_sigterm()  # from here on a `kill` cleans up as Ctrl-C does
    try:
        emulator = PushEmulator(port=port).start()
    except OSError as exc:
        print(
            f"[phone] cannot listen on 127.0.0.1:{port} ({exc.strerror}): another demo phone?",
            file=sys.stderr,
        )
        return 1
    subscription = emulator.new_subscription(label=person["email"])
    response = httpx.post(
        f"{notify}/v1/devices", json=subscription, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if response.status_code != 201:
        # `voc up` allows pushes to 127.0.0.1:<VOC_DEMO_PHONE_PORT> only (or VOC_PUSH_ALLOWED_HOSTS).
        print(f"[phone] notify refused the device: {response.json().get('detail')}", file=sys.stderr)
        emulator.stop()
        return 1
    device_id = response.json()["id"]
    print(f"[phone] {person['name']} ({person['role']}) registered device {device_id}")
    print(f"[phone] waiting for pushes at {subscription['endpoint']} (Ctrl-C to stop)", flush=True)
    seen = 0
    try:
        while True:
            pushes = emulator.received()
            for push in pushes[seen:]:
                print(f"[phone] push (TTL {push.ttl}s, urgency {push.urgency}):")
                print(json.dumps(push.json, ensure_ascii=False, indent=2), flush=True)
            seen = len(pushes)
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        # This phone's push service goes away with it: unregister first, so notify stops trying
        # before the port closes.
        try:
            answer = httpx.delete(
                f"{notify}/v1/devices/{device_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            problem = None if answer.status_code == 204 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            problem = f"notify unreachable: {type(exc).__name__}"
        emulator.stop()
        if problem is None:
            print(f"[phone] device {device_id} unregistered", flush=True)
        else:
            print(f"[phone] device {device_id} not unregistered ({problem})", file=sys.stderr)


def cmd_demo_inbox(args: argparse.Namespace) -> int:
    """A local mailbox: an SMTP server on loopback that prints the follow-up mail it receives and
    keeps each in `<data dir>/inbox/` as it came (`.eml`) and its HTML part (`.html`, for a
    browser: the mail a customer's client shows)."""
    from voc_cli.mail_sink import MailSink  # lazy: aiosmtpd

    kept = _data_dir(args) / "inbox"

    port = args.port if args.port is not None else supervisor.demo_inbox_port()
    try:
        sink = MailSink(port=port).start()
    except (OSError, RuntimeError) as exc:
        print(f"[inbox] cannot listen on 127.0.0.1:{port} ({exc}): another demo inbox?", file=sys.stderr)
        return 1
    print(f"[inbox] SMTP on 127.0.0.1:{port}; notify sends here when started with", flush=True)
    print(
        f"[inbox]   VOC_SMTP_URL=smtp://127.0.0.1:{port} VOC_MAIL_FROM=voc@demo.local "
        "VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS=0 make run",
        flush=True,
    )
    print("[inbox] waiting for mail (Ctrl-C to stop)", flush=True)
    seen = 0
    interrupt_on_sigterm()
    try:
        while True:
            mails = sink.received()
            for mail in mails[seen:]:
                print(f"[inbox] mail to {', '.join(mail.rcpt_tos)} from {mail.mail_from}")
                print(f"  Subject: {mail.subject}")
                print("  " + mail.part("plain").rstrip().replace("\n", "\n  "))
                print(f"  kept: {_keep_mail(kept, mail, seen + 1)}", flush=True)
                seen += 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        sink.stop()


def _keep_mail(folder: Path, mail: ReceivedMail, number: int) -> str:
    """The mail as `<time>-<n>.eml` and its HTML part beside it; what to print about them."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{number:03d}"
    stem.with_suffix(".eml").write_bytes(mail.message.as_bytes())
    html = mail.part("html")
    if not html:
        return str(stem.with_suffix(".eml"))
    stem.with_suffix(".html").write_text(html, encoding="utf-8")
    return f"{stem.with_suffix('.eml')} (HTML: {stem.with_suffix('.html')})"


def cmd_demo_feedback(args: argparse.Namespace) -> int:
    creds = up.load_credentials(_data_dir(args))
    store = next(s for s in creds["stores"] if s["id"] == args.store)
    body: dict[str, Any] = {
        "store_id": store["id"],
        "channel": "kiosk",
        "text": args.text,
        "ratings": {"csat": args.csat},
        "customer": {"loyalty_id": args.loyalty_id} if args.loyalty_id else None,
    }
    body = {k: v for k, v in body.items() if v is not None}
    response = httpx.post(
        f"{creds['feedback_url']}/v1/feedback",
        json=body,
        headers={"Authorization": f"Bearer {store['api_key']}"},
        timeout=10,
    )
    print(response.status_code, json.dumps(response.json(), ensure_ascii=False))
    return 0 if response.status_code == 202 else 1


def command(subparsers: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with an example."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def cmd_status(args: argparse.Namespace) -> int:
    from voc_cli import ops  # lazy: nats-py (see the docstring)

    return ops.cmd_status(args)


def cmd_dlq(args: argparse.Namespace) -> int:
    from voc_cli import ops  # lazy: nats-py (see the docstring)

    return ops.cmd_dlq(args)


def cmd_openapi(args: argparse.Namespace) -> int:
    from voc_cli import openapi  # lazy: builds the four apps

    return openapi.run(out=Path(args.out) if args.out else openapi.DOCS, check=args.check)


def build_parser() -> argparse.ArgumentParser:
    """Every `voc` command and its flags (one declaration list, ~150 lines, on purpose: it is the
    CLI's table of contents and `voc completion` walks it; the handlers live in their modules)."""
    parser = argparse.ArgumentParser(
        prog="voc",
        description=__doc__,
        epilog="example:\n  voc up         # what `make run` runs\n  voc status     # in another terminal",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", help="default: $VOC_DATA_DIR or ./var")
    sub = parser.add_subparsers(dest="command", required=True)

    start = command(
        sub,
        "up",
        "start nats-server and the four services with demo data (VOC_* settings passed through)",
        "voc up --no-seed\n"
        "  VOC_FEEDBACK_RATE_LIMIT_BURST=2 voc up   # says which settings differ from the defaults",
    )
    start.add_argument("--no-seed", action="store_true", help="do not create the demo stores, staff and keys")
    start.add_argument(
        "--scale",
        type=int,
        default=1,
        help="processes per service; >1 runs a 3-node nats cluster on PostgreSQL",
    )
    start.add_argument("--postgres", help="PostgreSQL URL for --scale (default 127.0.0.1:5432)")
    start.set_defaults(func=cmd_up)

    st = command(
        sub,
        "status",
        "processes, ports, consumer lag, outbox pending and dead letters of a running system",
        "voc status            # exit 1 when a service is not ready or NATS is unreachable\n"
        "  voc status --json",
    )
    st.add_argument("--json", action="store_true", help="the report as JSON")
    st.add_argument("--nats-url", help="default: $VOC_NATS_URL or the one `voc up` runs")
    st.set_defaults(func=cmd_status)

    dlq = command(
        sub,
        "dlq",
        "dead letters (events a consumer failed max_deliver times): list, show, replay, discard",
        "voc dlq list\n  voc dlq show 17\n  voc dlq replay 17 --dry-run\n  voc dlq discard --all --yes",
    )
    dlq.add_argument("--nats-url", help="default: $VOC_NATS_URL or the one `voc up` runs")
    dlq_actions = dlq.add_subparsers(dest="action", required=True)
    listing = command(dlq_actions, "list", "the dead letters, oldest first", "voc dlq list --limit 20")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    show = command(
        dlq_actions, "show", "one dead letter: headers, reason and the decoded event", "voc dlq show 17"
    )
    show.add_argument("id", type=int)
    for action, summary, example in (
        (
            "replay",
            "publish again on the original subject with the original event id, then remove it",
            "voc dlq replay 17 18 --dry-run",
        ),
        ("discard", "remove dead letters for good", "voc dlq discard --all --yes"),
    ):
        act = command(dlq_actions, action, summary, example)
        act.add_argument("ids", nargs="*", type=int, help="dead-letter ids (`voc dlq list`)")
        act.add_argument("--all", action="store_true", help="every dead letter")
        act.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        act.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    dlq.set_defaults(func=cmd_dlq)

    pb = command(
        sub,
        "playbooks",
        "validate, test and publish a playbook directory",
        "voc playbooks test services/actions/src/voc_actions/library "
        "services/actions/src/voc_actions/library/cases.yaml",
    )
    pb.add_argument("action", choices=["validate", "test", "publish"])
    pb.add_argument("dir")
    pb.add_argument("cases", nargs="?", help="CASES.yaml (for test)")
    pb.set_defaults(func=cmd_playbooks)

    keys = command(
        sub,
        "api-keys",
        "store API keys (admin): create, list, rotate with a grace period, revoke",
        "voc api-keys create --name 'kiosk 3' --store store-gangnam\n"
        "  voc api-keys rotate 0193c5e2-… --grace 3600\n  voc api-keys revoke 0193c5e2-…",
    )
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = command(
        key_actions,
        "create",
        "a new key for some stores (printed once)",
        "voc api-keys create --name 'kiosk 3' --store store-gangnam --store store-hongdae",
    )
    create.add_argument("--name", default="store app")
    create.add_argument("--store", action="append", default=[], help="a store id (repeat for several)")
    command(key_actions, "list", "every key (prefix, stores, expiry; never the key)", "voc api-keys list")
    rotate = command(
        key_actions,
        "rotate",
        "a new key for the same stores; the old one keeps working for --grace seconds",
        "voc api-keys rotate 0193c5e2-7d7a-7b4e-9c1e-3f0c2a9b1d44 --grace 3600",
    )
    rotate.add_argument(
        "--grace",
        type=int,
        default=86400,
        help="seconds the old key keeps working (default 86400; 0: refused at once)",
    )
    revoke = command(
        key_actions, "revoke", "refuse a key from now on (a lost tablet)", "voc api-keys revoke 0193c5e2-…"
    )
    for parser_ in (rotate, revoke):
        parser_.add_argument("key_id", nargs="?", help="the key's id (`voc api-keys list`)")
        parser_.add_argument("--id", help=argparse.SUPPRESS)  # the earlier spelling
    keys.set_defaults(func=cmd_api_keys)

    phone = command(
        sub,
        "demo-phone",
        "a stand-in phone that prints decrypted pushes",
        "voc demo-phone --email minji@gangnam.demo",
    )
    phone.add_argument("--email", default="minji@gangnam.demo")
    phone.add_argument(
        "--port",
        type=int,
        default=None,
        help="default: $VOC_DEMO_PHONE_PORT or 8049, the one local port `voc up` lets notify push to",
    )
    phone.set_defaults(func=cmd_demo_phone)

    inbox = command(
        sub,
        "demo-inbox",
        "a local mailbox (SMTP on loopback) that prints the follow-up mail customers get",
        "voc demo-inbox   # then: VOC_SMTP_URL=smtp://127.0.0.1:8025 VOC_MAIL_FROM=voc@demo.local make run",
    )
    inbox.add_argument("--port", type=int, default=None, help="default: $VOC_DEMO_INBOX_PORT or 8025")
    inbox.set_defaults(func=cmd_demo_inbox)

    fb = command(
        sub,
        "demo-feedback",
        "post one feedback item as a demo store app",
        "voc demo-feedback --store store-gangnam --csat 1 --text '국이 식었어요'",
    )
    fb.add_argument("--store", default="store-gangnam")
    fb.add_argument("--text", default="국에서 머리카락이 나왔어요. 직원분도 사과 없이 그냥 가져가셨네요.")
    fb.add_argument("--csat", type=int, default=1)
    fb.add_argument("--loyalty-id", default="L-1001")
    fb.set_defaults(func=cmd_demo_feedback)

    profile_cli.register(sub, command)
    classifier_cli.register(sub, command)

    docs = command(
        sub,
        "openapi",
        "write the four services' OpenAPI documents to docs/openapi/ (or check them: make lint)",
        "voc openapi            # what `make openapi` runs\n"
        "  voc openapi --check    # exit 1 when a committed document is stale",
    )
    docs.add_argument("--out", help="directory (default: docs/openapi of the repository)")
    docs.add_argument("--check", action="store_true", help="compare instead of writing")
    docs.set_defaults(func=cmd_openapi)

    comp = command(
        sub,
        "completion",
        "print a shell completion script for voc",
        "voc completion bash > ~/.local/share/bash-completion/completions/voc\n"
        "  source <(voc completion zsh)   # in ~/.zshrc",
    )
    comp.add_argument("shell", choices=["bash", "zsh"])
    comp.set_defaults(func=lambda args: cmd_completion(parser, args))
    return parser


def cmd_completion(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from voc_cli.completion import script

    print(script(parser, args.shell), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "playbooks" and args.action == "test" and not args.cases:
        parser.error("playbooks test needs CASES.yaml")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
