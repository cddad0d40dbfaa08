"""Two replicas of every service on PostgreSQL and a 3-node JetStream cluster (R3 streams),
as real processes, under steady load: every accepted feedback alerts each registered device
once, escalation timers fire once across replicas, and crashing one nats-server node (the stream
leader) and one replica of each service mid-run loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
import nats
import pytest

from tests.conftest import DATABASE, DatabaseFactory, keep_log
from voc_cli.cluster import Cluster, ClusterConfig
from voc_cli.cluster_load import post_load, register_phone
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import SERVICES

pytestmark = [
    pytest.mark.skipif(
        DATABASE != "postgres",
        reason="replicas share rows through FOR UPDATE SKIP LOCKED, which needs PostgreSQL "
        "(runs in make test-postgres)",
    ),
    pytest.mark.timeout(300),
    pytest.mark.alone,  # 11 processes and about 60 PostgreSQL connections (the server allows 100)
]

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam
RATE = 20.0  # feedback per second
SECONDS = 12.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory) -> Iterator[Cluster]:
    config = ClusterConfig(
        data_dir=tmp_path_factory.mktemp("cluster"),
        database_urls={name: databases.url(f"cluster_{name}") for name in SERVICES},
        replicas=2,
        push_allowed_hosts="127.0.0.1:*,localhost:*",
        # The test is about crashes, not the per-key throttle (20/s, burst 60 per replica): when
        # a replica dies, the survivor takes the whole 20/s plus the retries, and a client that
        # stalled on a busy box catches up in a burst, which the throttle rightly answers 429.
        extra_env={
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "1000000",
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "1000000",
        },
    )
    cluster = Cluster(config)
    try:
        cluster.start(timeout=150)
        yield cluster
    finally:
        cluster.stop()
        for name in SERVICES:
            for index in range(config.replicas):
                keep_log(cluster.log_path(name, index), f"cluster-{name}-{index}")


async def _rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _subject_counts(cluster: Cluster, subject: str) -> dict[str, int]:
    nc = await nats.connect(
        servers=[n.url for n in cluster.nats_nodes if n.process and n.process.poll() is None]
    )
    try:
        info = await nc.jetstream(timeout=5).stream_info("VOC", subjects_filter=subject)
        return dict(info.state.subjects or {})
    finally:
        await nc.close()


async def _until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:.0f}s: {what}")
        await asyncio.sleep(0.25)


async def test_replicas_share_the_work_and_survive_crashes_without_loss_or_duplicates(
    cluster: Cluster, push_emulator: PushEmulator
) -> None:
    report = cluster.stream_report()
    assert report["VOC"]["replicas"] == 3 and report["VOC_DLQ"]["replicas"] == 3
    # One durable consumer per purpose, shared by both replicas, itself replicated 3 times.
    assert set(report["VOC"]["consumers"]) >= {"notify-alerts", "profile-history", "feedback-case"}
    assert all(c["copies"] == 3 for c in report["VOC"]["consumers"].values())

    credentials = cluster.seed()
    devices = {}
    for label in ("lead-phone", "lead-tablet"):  # two devices of one person: a push on each
        subscription = push_emulator.new_subscription(label=label)
        register_phone(cluster, credentials, LEAD, subscription)
        devices[label] = push_emulator.subscription_id(subscription)
    key = next(s for s in credentials["stores"] if s["id"] == "store-gangnam")["api_key"]
    notify_db = cluster.config.database_urls["notify"]
    feedback_db = cluster.config.database_urls["feedback"]

    load = asyncio.create_task(
        post_load(
            lambda: cluster.live_urls("feedback"),
            key,
            count=int(RATE * SECONDS),
            rate=RATE,
            tag="replicas",
        )
    )
    # Both notify replicas race for timers made due now: each must fire exactly once.
    await asyncio.sleep(3.0)
    due = await _rows(
        notify_db,
        "UPDATE escalation_timers SET fire_at = 0 WHERE status = 'pending' AND kind = 'ack' "
        "AND level = 1 RETURNING id",
    )
    assert due, "no escalation timers to fire yet"
    # Mid-run: crash the JetStream stream leader and one replica of every service.
    await asyncio.sleep(3.0)
    leader = cluster.stream_report()["VOC"]["leader"]
    cluster.kill_nats_node(int(leader.rsplit("-", 1)[1]))
    for name in SERVICES:
        cluster.kill_replica(name, 1)
    result = await load

    accepted = set(result.accepted)
    assert result.failed == 0, f"{result.failed} requests never got a 202 (last status: {result.failures})"
    assert len(result.accepted) == len(accepted) == int(RATE * SECONDS)

    def pushed_feedback(device: str) -> Counter[str]:
        return Counter(
            p.json["feedback_id"] for p in push_emulator.received(device) if "feedback_id" in p.json
        )

    async def all_pushed() -> bool:
        return all(accepted <= set(pushed_feedback(d)) for d in devices.values())

    # A crashed notify replica's claimed deliveries come back when their 30 s lease expires.
    await _until(all_pushed, 60.0, "a push for every accepted feedback on every device")

    # Escalation: every timer made due fired once (one AlertEscalated each), across replicas.
    ids = [r["id"] for r in due]

    async def timers_done() -> bool:
        left = await _rows(
            notify_db,
            "SELECT 1 FROM escalation_timers WHERE id = ANY($1::text[]) AND status = 'pending'",
            ids,
        )
        return not left

    await _until(timers_done, 30.0, "the due escalation timers fired")

    async def deliveries_settled() -> bool:
        left = await _rows(notify_db, "SELECT 1 FROM deliveries WHERE status = 'pending' LIMIT 1")
        return not left

    await _until(deliveries_settled, 45.0, "every delivery (escalations too) sent")

    # Exactly one feedback row per accepted request (retries replayed the Idempotency-Key).
    rows = await _rows(feedback_db, "SELECT id FROM feedback WHERE id = ANY($1::text[])", list(accepted))
    assert len(rows) == len(accepted)
    texts = await _rows(feedback_db, "SELECT count(*) AS n FROM feedback WHERE text LIKE '%#replicas-%'")
    assert texts[0]["n"] == len(accepted)
    # One FeedbackReceived event per feedback in JetStream, despite relays crashing mid-publish.
    received = await _subject_counts(cluster, "voc.feedback.received")
    assert received == {"voc.feedback.received": len(accepted)}
    # Exactly one alert per feedback; one delivery per (alert, device, escalation level) (an
    # escalation re-pages the devices of the roles it reaches), all accepted.
    alerts = await _rows(
        notify_db,
        "SELECT feedback_id, count(*) AS n FROM alerts WHERE feedback_id = ANY($1::text[]) "
        "GROUP BY feedback_id",
        list(accepted),
    )
    assert len(alerts) == len(accepted) and all(r["n"] == 1 for r in alerts)
    deliveries = await _rows(
        notify_db,
        "SELECT d.device_id, d.alert_id, d.level, d.status FROM deliveries d "
        "JOIN alerts a ON a.id = d.alert_id WHERE a.feedback_id = ANY($1::text[])",
        list(accepted),
    )
    per_device: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
    for row in deliveries:
        assert row["status"] == "accepted"
        per_device[row["device_id"]][(row["alert_id"], row["level"])] += 1
    assert len(per_device) == len(devices)
    assert all(n == 1 for counts in per_device.values() for n in counts.values())
    # At the phone: one notification per feedback. Web Push is at-least-once across a crash (a
    # replica killed between the push service's 201 and its own commit re-sends after the
    # lease); such a re-send carries the same Topic, so the phone replaces, never duplicates.
    resent = 0
    for device in devices.values():
        topics: dict[str, set[str | None]] = defaultdict(set)
        for push in push_emulator.received(device):
            if push.json.get("feedback_id") in accepted:
                topics[push.json.get("feedback_id")].add(push.topic)
        assert all(len(t) == 1 and None not in t for t in topics.values())
        resent += sum(n for f, n in pushed_feedback(device).items() if f in accepted)
    resent -= len(deliveries)
    assert resent >= 0
    # A pattern alert's escalations stay unpublished (it is on no customer's timeline, #18).
    fired = await _rows(
        notify_db,
        "SELECT t.id FROM escalation_timers t JOIN alerts a ON a.id = t.alert_id "
        "WHERE t.id = ANY($1::text[]) AND t.status = 'fired' AND coalesce(a.kind, 'feedback') <> 'pattern'",
        ids,
    )
    escalated = await _rows(
        notify_db,
        "SELECT event_id FROM outbox WHERE event_id = ANY($1::text[])",
        [f"escalated:{r['id']}" for r in fired],
    )
    assert len(escalated) == len(fired) > 0
    published = await _subject_counts(cluster, "voc.alert.escalated")
    assert published == {"voc.alert.escalated": len(fired)}
    print(
        f"\n{len(accepted)} feedback at {RATE:.0f}/s; {result.retried} requests retried on the other "
        f"replica; {len(fired)} timers fired once; pushes re-sent after the crash (same Topic): {resent}"
    )
