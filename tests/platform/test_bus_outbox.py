"""The shared runtime against a real nats-server and a real database: outbox relay,
deduplication, idempotent consumers, bounded redelivery and the dead-letter stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg
from sqlalchemy import MetaData, func, select

from tests.conftest import DatabaseFactory
from voc.events.v1 import events_pb2
from voc_cli.nats import NatsServer
from voc_platform.bus import DLQ_STREAM, Bus, ConsumerSpec
from voc_platform.db import Database
from voc_platform.outbox import OutboxRelay, add_event, define_platform_tables, mark_processed

metadata = MetaData()
outbox, processed = define_platform_tables(metadata)


@pytest.fixture
async def database(databases: DatabaseFactory) -> AsyncIterator[Database]:
    db = Database(databases.url("platform"))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    b = Bus(nats_server.url, name="test")
    await b.connect()
    await b.ensure_streams()
    yield b
    await b.stop_consumers()
    await b.close()


def event(feedback_id: str) -> events_pb2.FeedbackLinked:
    return events_pb2.FeedbackLinked(feedback_id=feedback_id, customer_id="c1")


async def test_outbox_relay_publishes_on_commit_and_only_once(database: Database, bus: Bus) -> None:
    subject = f"voc.test.{uuid.uuid4().hex[:8]}"
    got: list[Msg] = []

    async def collect(msg: Msg) -> None:
        got.append(msg)

    assert bus.nc is not None
    sub = await bus.nc.subscribe(subject, cb=collect)
    relay = OutboxRelay(database, outbox, bus, poll_interval=60)  # polling cannot be what sends
    relay.start()
    try:
        async with database.transaction() as session:
            event_id = await add_event(session, outbox, subject=subject, message=event("f1"))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert len(got) == 1, "the commit woke the relay"
        assert got[0].headers is not None and got[0].headers["Nats-Msg-Id"] == event_id
        assert "traceparent" in got[0].headers or got[0].headers["Voc-Event-Type"]
        assert events_pb2.FeedbackLinked.FromString(got[0].data).feedback_id == "f1"
        assert await relay.pending() == 0
        # A rolled-back transaction leaves nothing to send.
        with pytest.raises(RuntimeError):
            async with database.transaction() as session:
                await add_event(session, outbox, subject=subject, message=event("f2"))
                raise RuntimeError("boom")
        assert await relay.pending() == 0
        # Publishing the same event id twice is dropped by the stream's duplicate window.
        await bus.publish(subject, b"x", msg_id=event_id)
        info = await bus.js.stream_info("VOC")  # type: ignore[union-attr]
        before = info.state.messages
        await bus.publish(subject, b"x", msg_id=event_id)
        assert (await bus.js.stream_info("VOC")).state.messages == before  # type: ignore[union-attr]
    finally:
        await relay.stop()
        await sub.unsubscribe()


async def test_events_wait_in_the_outbox_while_nats_is_unreachable(database: Database) -> None:
    dead = Bus("nats://127.0.0.1:1", name="nowhere")  # never connected
    relay = OutboxRelay(database, outbox, dead)
    async with database.transaction() as session:
        await add_event(session, outbox, subject="voc.test.offline", message=event("f3"))
    with pytest.raises(RuntimeError):
        await relay.flush()
    assert await relay.pending() == 1
    async with database.session() as session:
        attempts = await session.scalar(select(outbox.c.attempts))
    assert attempts == 1


async def test_idempotent_consumer_marks_each_event_once(database: Database) -> None:
    async with database.transaction() as session:
        assert await mark_processed(session, processed, consumer="c", event_id="e1")
    async with database.transaction() as session:
        assert not await mark_processed(session, processed, consumer="c", event_id="e1")
        assert await mark_processed(session, processed, consumer="other", event_id="e1")
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(processed)) == 2


async def test_failing_handler_is_retried_then_dead_lettered(bus: Bus) -> None:
    subject = f"voc.test.poison.{uuid.uuid4().hex[:8]}"
    attempts: list[int] = []

    async def handler(msg: Msg) -> None:
        attempts.append(msg.metadata.num_delivered)
        raise ValueError("cannot handle this")

    await bus.consume(
        ConsumerSpec(
            durable=f"poison-{uuid.uuid4().hex[:6]}",
            subjects=[subject],
            handler=handler,
            max_deliver=3,
            backoff=(0.05, 0.1),
        )
    )
    await bus.publish(subject, b"poison", msg_id=uuid.uuid4().hex)
    for _ in range(200):
        if len(attempts) >= 3:
            break
        await asyncio.sleep(0.02)
    dlq = await bus.js.pull_subscribe(f"dlq.{subject}", durable=None, stream=DLQ_STREAM)  # type: ignore[union-attr]
    msgs = await dlq.fetch(1, timeout=5)
    assert attempts == [1, 2, 3], "bounded redelivery: exactly max_deliver attempts"
    assert msgs[0].data == b"poison"
    assert "cannot handle this" in msgs[0].headers["Voc-Dead-Letter-Reason"]  # type: ignore[index]
    await asyncio.sleep(0.3)
    assert len(attempts) == 3, "terminated after dead-lettering"


async def test_handler_success_acks(bus: Bus) -> None:
    subject = f"voc.test.ok.{uuid.uuid4().hex[:8]}"
    seen: list[bytes] = []

    async def handler(msg: Msg) -> None:
        seen.append(msg.data)

    durable = f"ok-{uuid.uuid4().hex[:6]}"
    await bus.consume(ConsumerSpec(durable=durable, subjects=[subject], handler=handler))
    for i in range(5):
        await bus.publish(subject, f"m{i}".encode(), msg_id=uuid.uuid4().hex)
    for _ in range(200):
        if len(seen) == 5:
            break
        await asyncio.sleep(0.02)
    assert sorted(seen) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    await asyncio.sleep(0.2)
    info = await bus.js.consumer_info("VOC", durable)  # type: ignore[union-attr]
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_acks_of_handlers_finishing_together_leave_together_and_stop_sends_the_last(
    nats_server: NatsServer,
) -> None:
    subject = f"voc.test.acks.{uuid.uuid4().hex[:8]}"
    durable = f"acks-{uuid.uuid4().hex[:6]}"
    bus = Bus(nats_server.url, name="test-acks")
    await bus.connect()
    await bus.ensure_streams()
    done = asyncio.Event()
    seen: list[bytes] = []

    async def handler(msg: Msg) -> None:
        seen.append(msg.data)
        if len(seen) == 30:
            done.set()

    await bus.consume(ConsumerSpec(durable=durable, subjects=[subject], handler=handler))
    assert bus.nc is not None
    published_before = bus.nc.stats["out_msgs"]
    await asyncio.gather(
        *(bus.publish(subject, f"m{i}".encode(), msg_id=uuid.uuid4().hex) for i in range(30))
    )
    await asyncio.wait_for(done.wait(), 5)
    # Stopped right after the last handler returned: the acks still inside their window are
    # sent by stop_consumers, so nothing is redelivered to the next consumer of the durable.
    await bus.stop_consumers()
    acks = bus.nc.stats["out_msgs"] - published_before - 30  # minus the 30 publishes
    assert acks >= 30
    await bus.close()

    again = Bus(nats_server.url, name="test-acks-2")
    await again.connect()
    redelivered: list[bytes] = []

    async def second(msg: Msg) -> None:
        redelivered.append(msg.data)

    try:
        await again.consume(ConsumerSpec(durable=durable, subjects=[subject], handler=second))
        await asyncio.sleep(0.3)
        info = await again.js.consumer_info("VOC", durable)  # type: ignore[union-attr]
        assert redelivered == [] and info.num_ack_pending == 0 and info.num_pending == 0
        assert info.delivered.consumer_seq == 30 and info.ack_floor.consumer_seq == 30
    finally:
        await again.stop_consumers()
        await again.close()


async def test_one_standing_pull_serves_bursts_beyond_its_batch_and_quiet_spells_past_its_expiry(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pull loop keeps one request open: a burst larger than the batch is all handled (new
    requests follow as each is used up), and a message published after the request expired,
    or after a 408 ended it, is still picked up within the renewal interval."""
    import voc_platform.bus as bus_module

    monkeypatch.setattr(bus_module, "PULL_EXPIRES_SECONDS", 0.3)
    monkeypatch.setattr(bus_module, "PULL_GRACE_SECONDS", 0.1)
    subject = f"voc.test.stream.{uuid.uuid4().hex[:8]}"
    seen: list[bytes] = []
    limit_hit = asyncio.Event()
    running = 0

    async def handler(msg: Msg) -> None:
        nonlocal running
        running += 1
        if running > 4:
            limit_hit.set()
        await asyncio.sleep(0.01)
        running -= 1
        seen.append(msg.data)

    durable = f"stream-{uuid.uuid4().hex[:6]}"
    await bus.consume(
        ConsumerSpec(durable=durable, subjects=[subject], handler=handler, batch=8, concurrency=4)
    )
    burst = [f"b{i}".encode() for i in range(50)]
    for data in burst:
        await bus.publish(subject, data, msg_id=uuid.uuid4().hex)
    for _ in range(300):
        if len(seen) == len(burst):
            break
        await asyncio.sleep(0.02)
    assert sorted(seen) == sorted(burst), "every message of a burst six times the batch"
    assert not limit_hit.is_set(), "never more than `concurrency` handlers at once"
    await asyncio.sleep(1.0)  # several request lifetimes with nothing to deliver
    await bus.publish(subject, b"late", msg_id=uuid.uuid4().hex)
    for _ in range(100):
        if b"late" in seen:
            break
        await asyncio.sleep(0.02)
    assert b"late" in seen, "a message after a quiet spell still arrives"
    await asyncio.sleep(0.2)
    info = await bus.js.consumer_info("VOC", durable)  # type: ignore[union-attr]
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_relay_marks_rows_late_on_sqlite_and_a_restart_before_that_adds_no_duplicate(
    database: Database, bus: Bus
) -> None:
    """On SQLite the relay writes `published_at` for a second's rows at once (and at shutdown);
    a relay that dies before writing them sends those rows again, and the stream's duplicate
    window (same Nats-Msg-Id) keeps the consumers' view to one copy each. On PostgreSQL the
    rows are marked in the transaction that claimed them, so nothing is left to re-send."""
    subject = f"voc.test.late.{uuid.uuid4().hex[:8]}"
    durable = f"late-{uuid.uuid4().hex[:6]}"
    seen: list[str] = []

    async def handler(msg: Msg) -> None:
        seen.append(events_pb2.FeedbackLinked.FromString(msg.data).feedback_id)

    await bus.consume(ConsumerSpec(durable=durable, subjects=[subject], handler=handler))

    async def unmarked() -> int:
        async with database.session() as session:
            value = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(value or 0)

    first = OutboxRelay(database, outbox, bus)
    for i in range(3):
        async with database.transaction() as session:
            await add_event(session, outbox, subject=subject, message=event(f"late-{i}"))
    assert await first.flush() == 3
    assert await first.pending() == 0, "acknowledged rows are not pending"
    late = 3 if database.sqlite else 0
    assert await unmarked() == late, "SQLite writes the marks later, together"
    # This relay "dies" now; a new one starts from the table alone.
    second = OutboxRelay(database, outbox, bus)
    assert await second.flush() == late, "unmarked rows are sent again after a restart"
    await second.stop()  # shutdown writes the marks
    assert await unmarked() == 0
    for _ in range(100):
        if len(seen) >= 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert sorted(seen) == ["late-0", "late-1", "late-2"], "the stream dropped the second copies"
