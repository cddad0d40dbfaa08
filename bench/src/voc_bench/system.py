"""`make bench`: feedback-to-phone latency and throughput, measured open-loop.

Starts the whole system (embedded default; PostgreSQL with VOC_BENCH_DATABASE=postgres), gives
every demo staff member a phone (a push-service emulator subscription, in its own process),
then offers feedback at fixed arrival rates without waiting for answers, so slow answers cannot
hide. Per feedback: intake latency (client side) and end-to-end latency (request sent -> push
received and decrypted at the phone). A repeat complaint that notify folds into an open alert is
covered by the alert's re-push that carries it. Loss: every delivery notify planned (one per
device of each routed staff member, superseded ones aside) must reach its phone, and every
feedback must reach some phone; duplicates are the same alert state received twice by a phone.

One module (~800 lines) on purpose: it is read top to bottom as the method docs/BENCHMARKS.md
describes (workload, phones, one open-loop step, its accounting against notify's rows, the
report), and the sections are marked; nothing else imports its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import asyncpg
import httpx
import nats
import orjson
import psutil
import uvloop
from sqlalchemy import text

from voc_bench import loadgen
from voc_cli import demo
from voc_cli.supervisor import SERVICES, System, SystemConfig, free_port
from voc_feedback.classification.evaluate import default_eval_dir, load_items
from voc_platform.db import Database
from voc_platform.progress import Progress, add_flag, shown

RESULTS = Path("bench/results")


# ------------------------------------------------------------------ workload


class Text(NamedTuple):
    """One feedback text of the workload, with the ratings that came with it."""

    text: str
    sentiment: str
    csat: int | None = None
    nps: int | None = None
    ces: int | None = None


def load_texts() -> list[Text]:
    """Realistic Korean and English feedback: the classifier's evaluation set."""
    eval_dir = default_eval_dir()
    items: list[Text] = []
    for lang in ("ko", "en"):
        path = eval_dir / f"{lang}.jsonl"
        if path.is_file():
            items += [Text(i.text, i.sentiment, i.csat, i.nps, i.ces) for i in load_items(path)]
    if not items:
        items = [
            Text("Waited 40 minutes.", "negative", csat=2),
            Text("직원분이 정말 친절했어요", "positive", csat=5),
        ]
    return items


def workload(n: int, stores: list[str], seed: int = 7) -> list[dict[str, Any]]:
    """About a third negative; half known customers (some repeat), half anonymous."""
    rng = random.Random(seed)
    items = load_texts()
    negative = [i for i in items if i.sentiment == "negative"]
    other = [i for i in items if i.sentiment != "negative"]
    channels = ["kiosk", "app", "web", "survey", "call_center", "chatbot"]
    bodies = []
    for k in range(n):
        item = rng.choice(negative if k % 3 == 0 else other)
        body: dict[str, Any] = {
            "store_id": stores[k % len(stores)],
            "channel": rng.choice(channels),
            "text": item.text,
        }
        ratings = {
            r: v for r, v in (("csat", item.csat), ("nps", item.nps), ("ces", item.ces)) if v is not None
        }
        if ratings:
            body["ratings"] = ratings
        roll = rng.random()
        if roll < 0.15:
            body["customer"] = {"loyalty_id": rng.choice(["L-1001", "L-1002", "L-1003", "L-1004"])}
        elif roll < 0.5:
            body["customer"] = {"phone": f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"}
        bodies.append(body)
    return bodies


# ------------------------------------------------------------------ phones


@dataclass(frozen=True)
class Push:
    """One push decrypted at a phone. `updates` is the alert's update count when it was sent:
    0 for the first push, k once the k-th repeat complaint was folded into the alert."""

    phone: str
    feedback_id: str | None
    alert_id: str | None
    at: float
    updates: int


class Phones:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voc_bench.phones"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoints: dict[str, str] = {}
        #: pushes that arrived but did not decrypt (as of the last dump); they count as lost
        self.undecryptable = 0

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def subscribe(self, label: str) -> dict[str, Any]:
        sub: dict[str, Any] = self._call({"op": "subscribe", "label": label})["subscription"]
        self.endpoints[sub["endpoint"]] = label
        return sub

    def received(self) -> list[Push]:
        """Every push so far, in arrival order (the list only grows)."""
        dump = self._call({"op": "dump"})
        self.undecryptable = int(dump.get("undecryptable", 0))
        return [
            Push(
                phone=r[0],
                feedback_id=r[1],
                alert_id=r[2],
                at=r[3],
                updates=int(r[4] or 0) if len(r) > 4 else 0,
            )
            for r in dump["received"]
        ]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the phones process stops its emulator
            self.proc.wait(10)


# ------------------------------------------------------------------ measuring


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Sent:
    index: int
    #: when the request was due (the open-loop schedule): latencies count from here, so a load
    #: generator that falls behind on the shared cores cannot hide the wait
    sent_at: float
    #: when its task started sending (a wait for a free connection comes after, and counts in
    #: the latencies, not here)
    left_at: float = 0.0
    answered_at: float = 0.0
    status: int = 0
    feedback_id: str = ""
    error: str = ""


class ProcessSampler:
    """CPU seconds and peak RSS of each process of the system, sampled in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self._cpu0 = {n: sum(p.cpu_times()[:2]) for n, p in self.procs.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.cpu: dict[str, float] = {}

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak_rss[name] = max(self.peak_rss[name], proc.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for name, proc in self.procs.items():
            try:
                self.cpu[name] = sum(proc.cpu_times()[:2]) - self._cpu0[name]
            except psutil.Error:
                self.cpu[name] = float("nan")


@dataclass
class RunResult:
    rate: float
    duration: float
    offered: int
    accepted: int
    errors: int
    achieved_rps: float
    intake_ms: dict[str, float | None]
    e2e_ms: dict[str, float | None]
    expected_pushes: int
    received_pushes: int
    lost_pushes: int
    duplicate_pushes: int
    feedback_without_alert: int
    # Added later: defaults keep older JSON reports readable.
    feedback_without_push: int = 0
    merged_feedback: int = 0
    #: pushes that reached a phone but did not decrypt (a broken push is as good as lost)
    undecryptable_pushes: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    #: how late requests left against the schedule (the load generator's own lag)
    send_lag_ms: dict[str, float | None] = field(default_factory=dict)
    cpu_percent: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    #: --webhook: the step's webhook deliveries (made by its events), how long each waited from
    #: its event to its successful attempt, and when the last one went, after the last feedback
    #: was sent (webhooks yield to pages, so under overload they catch up after the step)
    webhook_deliveries: int = 0
    webhook_pending: int = 0
    webhook_delay_ms: dict[str, float | None] = field(default_factory=dict)
    webhook_caught_up_s: float | None = None

    @property
    def clean(self) -> bool:
        return (
            self.errors == 0
            and self.lost_pushes == 0
            and self.duplicate_pushes == 0
            and self.feedback_without_alert == 0
            and self.feedback_without_push == 0
            and self.undecryptable_pushes == 0
        )

    @property
    def lost_feedback(self) -> int:
        return self.feedback_without_alert + self.feedback_without_push


def summary(values: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values]
    return {
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else None,
        "mean": statistics.fmean(ms) if ms else None,
    }


async def offer(
    client: loadgen.Client,
    path: str,
    keys: dict[str, str],
    bodies: list[dict[str, Any]],
    rate: float,
    progress: Progress | None = None,
) -> list[Sent]:
    """Open loop: request i leaves at start + i/rate whether or not earlier ones answered.

    Every request's bytes are built before the first leaves, and `loadgen` sends them on
    keep-alive connections with a C-parsed response: the load generator shares the 2 cores with
    the system under test (aiohttp took ~0.5 ms of CPU per request, httpx three times that).
    """
    requests = [
        client.post(path, orjson.dumps(body), {"Authorization": f"Bearer {keys[body['store_id']]}"})
        for body in bodies
    ]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    wall_offset = time.time() - loop.time()
    sent: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(record: Sent, request: bytes) -> None:
        record.left_at = time.time()
        try:
            response = await client.send(request)
            record.status = response.status
            if response.status == 202:
                record.feedback_id = orjson.loads(response.body)["id"]
            else:
                record.error = response.body[:200].decode(errors="replace")
        except (ConnectionError, TimeoutError, OSError) as exc:
            record.error = repr(exc)
        record.answered_at = time.time()

    for i, request in enumerate(requests):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        record = Sent(index=i, sent_at=wall_offset + start + i / rate)
        sent.append(record)
        tasks.append(asyncio.create_task(one(record, request)))
        if progress is not None:
            progress.advance(1)
    await asyncio.gather(*tasks)
    return sent


@dataclass
class NotifyState:
    """What notify recorded for the alerts created or updated since a step started."""

    #: alert id -> (its feedback id, the ids of the feedback folded into it, in order)
    alerts: dict[str, tuple[str, list[str]]]
    #: (alert id, device endpoint, delivery status) for every delivery of those alerts
    deliveries: list[tuple[str, str, str]]


async def notify_state(system: System, since: float) -> NotifyState:
    url = _notify_url(system)
    # An alert of this step was created in it, or (a repeat folded into an older alert) updated.
    db = Database(url)
    try:
        async with db.session() as session:
            alert_rows = (
                await session.execute(
                    text(
                        "SELECT a.id, a.feedback_id, a.related_feedback FROM alerts a "
                        "WHERE a.created_at >= :since OR a.updated_at >= :since"
                    ),
                    {"since": since},
                )
            ).all()
            delivery_rows = (
                await session.execute(
                    text(
                        "SELECT d.alert_id, v.endpoint, d.status FROM deliveries d "
                        "JOIN alerts a ON a.id = d.alert_id JOIN devices v ON v.id = d.device_id "
                        "WHERE a.created_at >= :since OR a.updated_at >= :since"
                    ),
                    {"since": since},
                )
            ).all()
    finally:
        await db.dispose()
    alerts: dict[str, tuple[str, list[str]]] = {}
    for alert_id, feedback_id, related in alert_rows:
        items = json.loads(related) if isinstance(related, str | bytes) else related
        alerts[alert_id] = (feedback_id, [item.get("id") for item in items or []])
    return NotifyState(alerts=alerts, deliveries=[(a, e, st) for a, e, st in delivery_rows])


@dataclass
class Accounting:
    covered: dict[str, tuple[str, int]]  # feedback id -> (alert id, k): covered by pushes with updates >= k
    e2e: dict[str, float]  # feedback id -> seconds from sent_at to its first covering push
    expected: set[tuple[str, str]]  # (alert id, phone) for every delivery not cancelled
    lost: set[tuple[str, str]]
    without_alert: set[str]
    without_push: set[str]
    merged: int
    received: int  # pushes of this step's alerts received during this step
    duplicates: int
    pending: int  # deliveries of this step's alerts notify has not finished yet

    @property
    def settled(self) -> bool:
        return not self.without_alert and not self.lost and self.pending == 0


def account(
    sent_at: dict[str, float],
    state: NotifyState,
    pushes: list[Push],
    before: int,
    phone_of: dict[str, str],
) -> Accounting:
    """Match accepted feedback (id -> sent_at) to notify's alerts and to the phones' pushes.

    `pushes` is everything the phones received, in arrival order; the first `before` of them
    arrived before this step started (an alert can span steps when a repeat is folded into it).
    """
    covered: dict[str, tuple[str, int]] = {}
    for alert_id, (primary, related) in state.alerts.items():
        if primary in sent_at:
            covered[primary] = (alert_id, 0)
        for k, feedback_id in enumerate(related, start=1):
            if feedback_id in sent_at:
                covered[feedback_id] = (alert_id, k)
    relevant = {alert_id for alert_id, _ in covered.values()}
    by_alert: dict[str, list[Push]] = {}
    for p in pushes:
        if p.alert_id is not None and p.alert_id in relevant:
            by_alert.setdefault(p.alert_id, []).append(p)
    e2e: dict[str, float] = {}
    without_push: set[str] = set()
    for feedback_id, (alert_id, k) in covered.items():
        times = [p.at for p in by_alert.get(alert_id, []) if p.updates >= k]
        if times:
            e2e[feedback_id] = min(times) - sent_at[feedback_id]
        else:
            without_push.add(feedback_id)
    # Superseded deliveries are cancelled and never sent: only the others must arrive.
    expected = {
        (alert_id, phone_of.get(endpoint, endpoint))
        for alert_id, endpoint, status in state.deliveries
        if alert_id in relevant and status != "cancelled"
    }
    got = {(alert_id, p.phone) for alert_id, received in by_alert.items() for p in received}
    # A duplicate is the same alert state received twice by one phone (an update is not one).
    # Counted for this step only: what arrived before it was counted in earlier steps.
    seen: dict[tuple[str | None, int, str], int] = {}
    seen_before: dict[tuple[str | None, int, str], int] = {}
    for i, p in enumerate(pushes):
        if p.alert_id in relevant:
            key = (p.alert_id, p.updates, p.phone)
            seen[key] = seen.get(key, 0) + 1
            if i < before:
                seen_before[key] = seen_before.get(key, 0) + 1
    duplicates = sum(max(0, n - max(1, seen_before.get(key, 0))) for key, n in seen.items())
    return Accounting(
        covered=covered,
        e2e=e2e,
        expected=expected,
        lost=expected - got,
        without_alert=set(sent_at) - set(covered),
        without_push=without_push,
        merged=sum(1 for _, k in covered.values() if k > 0),
        received=sum(1 for p in pushes[before:] if p.alert_id in relevant),
        duplicates=duplicates,
        pending=sum(
            1 for alert_id, _, status in state.deliveries if alert_id in relevant and status == "pending"
        ),
    )


def _notify_url(system: System) -> str:
    return (
        system.config.database_urls.get("notify")
        or f"sqlite:///{(system.config.data_dir / 'notify.db').resolve()}"
    )


class WebhookTally(NamedTuple):
    delivered: list[tuple[float, float]]  # (created_at, delivered_at) of each delivered one
    pending: int


async def webhook_tally(system: System, since: float) -> WebhookTally:
    """The webhook deliveries made since `since`: delivered ones' times, and how many are pending."""
    db = Database(_notify_url(system))
    try:
        async with db.session() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT created_at, delivered_at, status FROM webhook_deliveries "
                        "WHERE created_at >= :since"
                    ),
                    {"since": since},
                )
            ).all()
    finally:
        await db.dispose()
    delivered = [(c, d) for c, d, status in rows if status == "delivered" and d is not None]
    return WebhookTally(delivered, sum(1 for _, _, status in rows if status == "pending"))


async def wait_idle(system: System, timeout: float = 180.0) -> None:
    """Start each step from an idle system: no event waiting in any durable consumer."""
    nc = await nats.connect(system.nats_url)
    try:
        js = nc.jetstream()
        deadline = time.time() + timeout
        while time.time() < deadline:
            infos = await js.consumers_info("VOC")
            if all(c.num_pending == 0 and c.num_ack_pending == 0 for c in infos):
                return
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def run_once(
    system: System,
    phones: Phones,
    creds: dict[str, Any],
    *,
    rate: float,
    duration: float,
    drain_timeout: float = 30.0,
    seed: int = 7,
    label: str = "",
    show_progress: bool = False,
    webhooks: bool = False,
    webhook_timeout: float = 300.0,
) -> RunResult:
    """One open-loop step. With `show_progress`, stderr shows the feedback sent against the
    planned count, then, while draining, the accepted feedback that reached a phone."""
    await wait_idle(system)
    keys = {s["id"]: s["api_key"] for s in creds["stores"]}
    n = max(1, int(rate * duration))
    bodies = workload(n, list(keys), seed=seed)
    pids = {name: proc.process.pid for name, proc in system.services.items() if proc.process}
    if system.nats is not None and system.nats.process is not None:
        pids["nats"] = system.nats.process.pid
    # The measuring side shares the 2 cores too: its CPU is reported beside the system's.
    pids["phones"] = phones.proc.pid
    pids["loadgen"] = os.getpid()
    before = len(phones.received())
    undecryptable_before = phones.undecryptable
    # A bounded pool, as a store app fleet behind a gateway would have. Requests beyond it queue
    # client-side, and that wait counts in the measured latency (sent_at is the scheduled time).
    url = urlsplit(system.url("feedback"))
    client = loadgen.Client(url.hostname or "127.0.0.1", url.port or 80, connections=64)
    sampler = ProcessSampler(pids)
    sending = Progress(f"[bench] {label}: sent", n, "feedback", show=show_progress)
    t0 = time.time()
    try:
        sent = await offer(client, "/v1/feedback", keys, bodies, rate, sending)
    finally:
        await client.close()
    wall = time.time() - t0
    accepted = {s.feedback_id: s.sent_at for s in sent if s.feedback_id}
    sending.finish(f"{len(accepted):,} accepted")
    draining = Progress(f"[bench] {label}: pushed", len(accepted), "feedback", show=show_progress)
    draining.started = sending.started  # elapsed and rate over the whole step, not the drain alone
    # Wait until every accepted feedback has its alert and every planned push arrived (or the
    # drain timeout passes). Notify first, then the phones: a delivery notify marks done was
    # recorded at its phone before the push service answered, so the dump cannot lag it.
    deadline = time.time() + drain_timeout
    while True:
        state = await notify_state(system, t0)
        tally = account(accepted, state, phones.received(), before, phones.endpoints)
        draining.update(len(tally.e2e))
        if tally.settled or time.time() > deadline:
            break
        await asyncio.sleep(0.5)
    draining.finish("settled" if tally.settled else "drain timeout")
    hooks = WebhookTally([], 0)
    if webhooks:  # the step's webhook work counts in its CPU too: wait for it to catch up
        deadline = time.time() + webhook_timeout
        while True:
            hooks = await webhook_tally(system, t0)
            if hooks.pending == 0 or time.time() > deadline:
                break
            await asyncio.sleep(0.5)
    sampler.stop()
    intake = [s.answered_at - s.sent_at for s in sent if s.status == 202]
    measured = max(wall, 1e-9)
    return RunResult(
        rate=rate,
        duration=duration,
        offered=len(sent),
        accepted=len(accepted),
        errors=len(sent) - len(accepted),
        achieved_rps=round(len(accepted) / measured, 1),
        intake_ms=summary(intake),
        e2e_ms=summary(list(tally.e2e.values())),
        expected_pushes=len(tally.expected),
        received_pushes=tally.received,
        lost_pushes=len(tally.lost),
        duplicate_pushes=tally.duplicates,
        feedback_without_alert=len(tally.without_alert),
        feedback_without_push=len(tally.without_push),
        merged_feedback=tally.merged,
        undecryptable_pushes=phones.undecryptable - undecryptable_before,
        cpu_seconds={k: round(v, 2) for k, v in sampler.cpu.items()},
        send_lag_ms=summary([max(0.0, s.left_at - s.sent_at) for s in sent]),
        cpu_percent={k: round(100 * v / measured, 1) for k, v in sampler.cpu.items()},
        peak_rss_mb={k: round(v / 2**20, 1) for k, v in sampler.peak_rss.items()},
        webhook_deliveries=len(hooks.delivered) + hooks.pending,
        webhook_pending=hooks.pending,
        webhook_delay_ms=summary([d - c for c, d in hooks.delivered]) if hooks.delivered else {},
        webhook_caught_up_s=(
            round(max(d for _, d in hooks.delivered) - (t0 + wall), 1) if hooks.delivered else None
        ),
    )


async def closed_loop_max(
    url: str, headers: dict[str, str], body: dict[str, Any], *, seconds: float = 5.0, concurrency: int = 32
) -> float:
    """Requests per second with `concurrency` clients each sending back-to-back."""
    done = 0
    stop_at = time.monotonic() + seconds
    parts = urlsplit(url)
    client = loadgen.Client(parts.hostname or "127.0.0.1", parts.port or 80, connections=concurrency)
    request = client.post(parts.path, orjson.dumps(body), headers)

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            response = await client.send(request)
            if response.status < 300:
                done += 1

    try:
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - started)
    finally:
        await client.close()


# ------------------------------------------------------------------ reporting


def webhook_line(result: RunResult) -> str:
    delay = result.webhook_delay_ms
    ms = " / ".join(f"{(delay.get(k) or 0) / 1000:.2f}" for k in ("p50", "p99", "max"))
    return (
        f"[bench] {result.rate:.0f}/s webhooks: {result.webhook_deliveries:,} made, "
        f"{result.webhook_pending} still pending; delay p50 / p99 / max {ms} s; "
        f"the last sent {result.webhook_caught_up_s} s after the last feedback"
    )


def table(results: list[RunResult]) -> str:
    """`lost`: planned pushes that never reached their phone; `fb lost`: feedback with no alert or
    no push covering it; `merged`: repeat complaints folded into an open alert."""
    head = (
        f"{'rate/s':>7} {'ok/s':>7} {'err':>4} {'lost':>5} {'fb lost':>7} {'dup':>4} {'merged':>6} "
        f"{'intake p50':>10} {'p99':>7} {'e2e p50':>8} {'p95':>7} {'p99':>7} {'max':>7}"
    )
    lines = [head, "-" * len(head)]

    def f(v: float | None) -> str:
        return f"{v:7.1f}" if v is not None else "      -"

    for r in results:
        lines.append(
            f"{r.rate:7.0f} {r.achieved_rps:7.1f} {r.errors:4d} {r.lost_pushes:5d} {r.lost_feedback:7d} "
            f"{r.duplicate_pushes:4d} {r.merged_feedback:6d} "
            f"{f(r.intake_ms['p50']):>10} {f(r.intake_ms['p99'])} "
            f"{f(r.e2e_ms['p50']):>8} {f(r.e2e_ms['p95'])} {f(r.e2e_ms['p99'])} "
            f"{f(r.e2e_ms['max'])}"
        )
    return "\n".join(lines)


def plot(results: list[RunResult], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rates = [r.rate for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        ax.plot(rates, [r.e2e_ms[key] or float("nan") for r in results], style, label=f"e2e {key}")
    ax.axhline(250, color="grey", linestyle="--", linewidth=1, label="250 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered feedback per second (open loop)")
    ax.set_ylabel("feedback → decrypted push (ms)")
    ax.set_title("Frontline VoC: latency against load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# ------------------------------------------------------------------ main


async def start_webhook_sink(notify: str, admin_token: str) -> tuple[asyncio.subprocess.Process, str]:
    """The webhook sink as its own process and one endpoint at it subscribed to every type (#19:
    the targets hold with webhooks on)."""
    port = free_port()
    sink = await asyncio.create_subprocess_exec(sys.executable, "-m", "voc_bench.webhook_sink", str(port))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for _ in range(100):
            try:
                await client.get(f"{url}/count")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        r = await client.post(
            f"{notify}/v1/admin/webhooks",
            json={"url": f"{url}/hook", "events": ["*"], "description": "make bench --webhook"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        r.raise_for_status()
    print(f"[bench] webhook endpoint subscribed to * at {url}/hook", flush=True)
    return sink, url


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run in order: databases, system, phones, warm-up, target run, sweep, ceiling,
    teardown (one function, ~125 lines, so the run's sequence reads in one place)."""
    database = os.environ.get("VOC_BENCH_DATABASE", "sqlite")
    data_dir = Path(tempfile.mkdtemp(prefix="voc-bench-"))
    db_urls: dict[str, str] = {}
    created: list[str] = []
    if database == "postgres":
        base = os.environ.get("VOC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        conn = await asyncpg.connect(base)
        for name in SERVICES:
            db = f"voc_bench_{name}_{os.getpid()}"
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{db}"')
            created.append(db)
            db_urls[name] = f"{base.rsplit('/', 1)[0]}/{db}"
        await conn.close()
    config = SystemConfig.free_ports(
        data_dir,
        database_urls=db_urls,
        push_allowed_hosts="127.0.0.1:*",
        restart=False,
        log_format="json",
        # The benchmark measures the pipeline, not the per-key intake rate limit.
        extra_env={
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "1000000",
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "1000000",
            # --webhook: the sink listens on loopback (voc_bench.webhook_sink)
            "VOC_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:*",
        },
    )
    system = System(config)
    sink: asyncio.subprocess.Process | None = None
    phones = Phones()
    print(f"[bench] starting the system ({database}) in {data_dir}", flush=True)
    await asyncio.to_thread(system.start, 90)
    report: dict[str, Any] = {}
    show = shown(args.progress)
    try:
        urls = {n: system.url(n) for n in ("feedback", "profile", "actions", "notify")}
        creds = await asyncio.to_thread(
            demo.seed,
            urls=urls,
            admin_token=system.admin_token,
            credentials_path=data_dir / "demo-credentials.json",
        )
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            for person in creds["staff"]:
                if person["role"] == "analyst":
                    continue  # read-only, never paged: no phone (#20)
                login = await client.post(
                    f"{urls['notify']}/v1/auth/login",
                    json={"email": person["email"], "password": person["password"]},
                )
                login.raise_for_status()
                sub = phones.subscribe(person["email"])
                r = await client.post(
                    f"{urls['notify']}/v1/devices",
                    json=sub,
                    headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                )
                r.raise_for_status()
        if args.webhook:
            sink, sink_url = await start_webhook_sink(urls["notify"], system.admin_token)
        print(f"[bench] {len(creds['staff'])} phones registered; warming up", flush=True)
        step = functools.partial(run_once, system, phones, creds, show_progress=show, webhooks=args.webhook)
        await step(rate=20, duration=3, drain_timeout=20, seed=1, label="warm-up 20/s")

        results: list[RunResult] = []
        rates = [float(r) for r in args.rates.split(",")] if args.rates else []
        if args.target:
            print(f"[bench] target run: {args.target_rate}/s for {args.target_seconds}s", flush=True)
            label = f"target {args.target_rate:.0f}/s"
            target = await step(rate=args.target_rate, duration=args.target_seconds, seed=2, label=label)
            report["target"] = asdict(target)
            print(table([target]), flush=True)
            if args.webhook:
                print(webhook_line(target), flush=True)
        for i, rate in enumerate(rates):
            print(f"[bench] sweep {rate:.0f}/s for {args.seconds}s", flush=True)
            result = await step(rate=rate, duration=args.seconds, seed=10 + i, label=f"sweep {rate:.0f}/s")
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
            if args.webhook:
                print(webhook_line(result), flush=True)
            if result.e2e_ms["p99"] is not None and result.e2e_ms["p99"] > 5000 and not result.clean:
                print("[bench] far past saturation; stopping the sweep", flush=True)
                break
        report["sweep"] = [asdict(r) for r in results]
        held = [r.rate for r in results if r.clean and (r.e2e_ms["p99"] or 1e9) <= 250]
        report["highest_rate_p99_under_250ms_no_loss"] = max(held) if held else None

        # Ceiling: a bare FastAPI POST endpoint vs our intake, both closed-loop on this machine.
        await wait_idle(system)
        store = creds["stores"][0]
        body = {"store_id": store["id"], "channel": "kiosk", "text": "Ceiling probe: the soup was cold."}
        ours = await closed_loop_max(
            f"{system.url('feedback')}/v1/feedback",
            {"Authorization": f"Bearer {store['api_key']}"},
            body,
            seconds=args.ceiling_seconds,
        )
        port = free_port()
        bare = await asyncio.create_subprocess_exec(sys.executable, "-m", "voc_bench.ceiling", str(port))
        try:
            async with httpx.AsyncClient(trust_env=False) as client:
                for _ in range(100):
                    try:
                        await client.post(f"http://127.0.0.1:{port}/v1/feedback", json=body)
                        break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
            ceiling = await closed_loop_max(
                f"http://127.0.0.1:{port}/v1/feedback", {}, body, seconds=args.ceiling_seconds
            )
        finally:
            bare.terminate()
            await bare.wait()
        report["intake_closed_loop_rps"] = round(ours, 1)
        report["bare_fastapi_closed_loop_rps"] = round(ceiling, 1)
        report["intake_vs_bare_ratio"] = round(ours / ceiling, 3) if ceiling else None
        if sink is not None:
            async with httpx.AsyncClient(trust_env=False) as client:
                report["webhooks_received"] = (await client.get(f"{sink_url}/count")).json()["count"]
    finally:
        if sink is not None:
            sink.terminate()
            await sink.wait()
        phones.close()
        await asyncio.to_thread(system.stop)
        if created:
            conn = await asyncpg.connect(
                os.environ.get("VOC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
            )
            for db in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await conn.close()
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    report["database"] = database
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voc_bench.system", description=__doc__)
    parser.add_argument("--rates", default="10,50,100,200,300,400,450,500,800", help="sweep rates per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per sweep step")
    parser.add_argument(
        "--target",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the 100/s x 60 s target run",
    )
    parser.add_argument("--target-rate", type=float, default=100.0)
    parser.add_argument("--target-seconds", type=float, default=60.0)
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="with one webhook endpoint subscribed to every type (a sink process on loopback)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_flag(parser)  # per step on stderr: feedback sent / planned, then pushed / accepted
    args = parser.parse_args(argv)
    report = uvloop.run(bench(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"{stamp}-{report['database']}.json"
    path.write_text(json.dumps(report, indent=2))
    sweep = [RunResult(**r) for r in report.get("sweep", [])]
    print()
    if "target" in report:
        print("target run:")
        print(table([RunResult(**report["target"])]))
    if sweep:
        print("\nsweep:")
        print(table(sweep))
        png = args.out / f"{stamp}-{report['database']}.png"
        if plot(sweep, png):
            print(f"\ncurve: {png}")
    print(
        f"\nhighest rate with p99 <= 250 ms and no loss: "
        f"{report.get('highest_rate_p99_under_250ms_no_loss')}/s"
    )
    print(
        f"intake closed-loop {report.get('intake_closed_loop_rps')}/s vs bare FastAPI "
        f"{report.get('bare_fastapi_closed_loop_rps')}/s (ratio {report.get('intake_vs_bare_ratio')})"
    )
    last = report.get("target") or (report["sweep"][-1] if report.get("sweep") else None)
    if last:
        print(
            "CPU % and peak RSS (MB) per process:",
            {k: (last["cpu_percent"].get(k), last["peak_rss_mb"].get(k)) for k in last["peak_rss_mb"]},
        )
    if "webhooks_received" in report:
        print(f"webhooks received by the endpoint subscribed to *: {report['webhooks_received']}")
        for result in [RunResult(**report["target"])] if "target" in report else []:
            print(webhook_line(result))
        for result in sweep:
            print(webhook_line(result))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
