"""Transactional outbox and idempotent-consumer bookkeeping.

`add_event` writes an event row in the caller's transaction, so a 2xx answer means the data and
its event are committed together. `OutboxRelay` publishes committed rows to JetStream with
`Nats-Msg-Id` = event id (the stream drops a duplicate within its window) and marks them sent.
It wakes on commit; a slow poll covers a relay restart or a publish that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from google.protobuf.message import Message
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform import dbsync, telemetry
from voc_platform.db import Database, on_commit
from voc_platform.dbsync import Prepared, Reader, insert_ignore

if TYPE_CHECKING:
    from voc_platform.bus import Bus

log = logging.getLogger(__name__)


def define_platform_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox and processed-events tables, attached to a service's own metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(100), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("published_at", Float, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Index("ix_outbox_unpublished", "published_at", "seq"),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(100), primary_key=True),
        Column("processed_at", Float, nullable=False),
    )
    return outbox, processed


_relays: dict[int, OutboxRelay] = {}


def new_event_id() -> str:
    return str(uuid.uuid4())


async def add_event(
    session: AsyncSession,
    outbox: Table,
    *,
    subject: str,
    message: Message,
    event_id: str | None = None,
) -> str:
    """Write one event in the caller's transaction; the relay sends it once that commits."""
    event_id = event_id or new_event_id()
    await add_events(session, outbox, [(subject, message, event_id)])
    return event_id


async def add_events(
    session: AsyncSession, outbox: Table, events: Sequence[tuple[str, Message, str | None]]
) -> list[str]:
    """Write several (subject, message, event id or None) events with one statement."""
    if not events:
        return []
    rows = outbox_rows(events)
    await session.run_sync(lambda s: insert_outbox_rows(Reader.of(s.connection()), outbox, rows))
    on_commit(session, wake_relays)
    return [str(row["event_id"]) for row in rows]


def outbox_rows(events: Sequence[tuple[str, Message, str | None]]) -> list[dict[str, Any]]:
    """The outbox rows of (subject, message, event id or None) events, carrying the current
    trace context; for `insert_outbox_rows` inside a caller's `run_sync` (then the caller also
    calls `on_commit(session, wake_relays)`)."""
    headers: dict[str, str] = {}
    telemetry.inject(headers)
    now = time.time()
    return [
        {
            "event_id": event_id or new_event_id(),
            "subject": subject,
            "event_type": message.DESCRIPTOR.full_name,
            "payload": message.SerializeToString(),
            "headers": orjson.dumps({"Voc-Event-Type": message.DESCRIPTOR.full_name, **headers}).decode(),
            "created_at": now,
            "attempts": 0,
        }
        for subject, message, event_id in events
    ]


_PREPARED: dict[tuple[str, Callable[[Table], Prepared]], Prepared] = {}


def _prepared(table: Table, statement: Callable[[Table], Prepared]) -> Prepared:
    """`statement(table)`, built once per table name: each service has its own outbox and
    processed-events tables, with the same shape."""
    key = (table.key, statement)
    found = _PREPARED.get(key)
    if found is None:
        found = _PREPARED[key] = statement(table)
    return found


# The statements, one function each, built by `_prepared`.


def _insert_outbox(ob: Table) -> Prepared:
    return Prepared(insert(ob))


def _insert_processed(processed: Table) -> Prepared:
    return Prepared(lambda dialect: insert_ignore(dialect, processed))


def _pending_rows(ob: Table) -> Prepared:
    return Prepared(
        select(ob.c.seq, ob.c.event_id, ob.c.subject, ob.c.payload, ob.c.headers)
        .where(ob.c.published_at.is_(None), ob.c.seq > bindparam("after"))
        .order_by(ob.c.seq)
        .limit(bindparam("batch_size"))
    )


def _mark_published(ob: Table) -> Prepared:
    return Prepared(update(ob).where(ob.c.seq == bindparam("row_seq")))


def _count_attempt(ob: Table) -> Prepared:
    return Prepared(update(ob).where(ob.c.seq == bindparam("row_seq")).values(attempts=ob.c.attempts + 1))


def insert_outbox_rows(reader: Reader, outbox: Table, rows: Sequence[dict[str, Any]]) -> None:
    prepared = _prepared(outbox, _insert_outbox)
    if len(rows) == 1:
        prepared.execute(reader, rows[0])
    elif rows:
        prepared.execute_many(reader, rows)


def wake_relays() -> None:
    """Wake this process's outbox relays (after a commit that wrote outbox rows)."""
    for relay in _relays.values():
        relay.wake()


def mark_processed_sync(reader: Reader, processed: Table, *, consumer: str, event_id: str) -> bool:
    """`mark_processed` inside a `dbsync` hop (the caller's transaction)."""
    values = {"consumer": consumer, "event_id": event_id, "processed_at": time.time()}
    prepared = _prepared(processed, _insert_processed)
    return prepared.execute(reader, values) == 1


async def mark_processed(session: AsyncSession, processed: Table, *, consumer: str, event_id: str) -> bool:
    """Record that `consumer` handled `event_id` in the caller's transaction.

    Returns False when it was already recorded: the caller skips the work (idempotent consumer).
    One `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL): a concurrent duplicate waits
    for the first transaction and then inserts nothing, instead of a lookup plus a savepoint.
    """
    inserted: bool = await session.run_sync(
        lambda s: mark_processed_sync(
            Reader.of(s.connection()), processed, consumer=consumer, event_id=event_id
        )
    )
    return inserted


def _split(rows: list[Any], results: list[Any]) -> tuple[list[int], list[int]]:
    """(seqs of the rows JetStream acknowledged, seqs of those it did not), in row order."""
    done = [row.seq for row, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)]
    failed = [row.seq for row, res in zip(rows, results, strict=True) if isinstance(res, BaseException)]
    return done, failed


# SQLite relay: rows JetStream acknowledged are marked published in one write transaction per
# second (or per this many rows), not one per pass.
MARK_INTERVAL_SECONDS = 1.0
MARK_BATCH = 500


@dataclass(eq=False)  # a relay is one running task, not a value
class OutboxRelay:
    """Publishes committed outbox rows in order, in batches, acknowledged by JetStream.

    On SQLite (one relay per file) the marks are written late: the relay remembers in memory
    the last row JetStream acknowledged in an unbroken run and reads only past it, and writes
    the `published_at` marks of a second's rows in one transaction (at once after a failed
    publish, and at shutdown). Writing them per pass was one more write transaction for every
    commit that carried an event. A crash before the marks are written publishes those rows
    again at start: the stream drops them as duplicates (same `Nats-Msg-Id` within its
    two-minute window) and consumers are idempotent besides.
    """

    database: Database
    outbox: Table
    bus: Bus
    _: KW_ONLY
    batch_size: int = 200
    poll_interval: float = 1.0
    retention_seconds: float = 3600.0
    published: int = field(default=0, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _stopping: bool = field(default=False, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _last_purge: float = field(default=0.0, init=False)
    _published_through: int = field(default=0, init=False)  # SQLite: rows up to this seq were acknowledged
    _unmarked: list[int] = field(default_factory=list, init=False)  # ... of them not yet marked in the table
    _marked_at: float = field(default_factory=time.monotonic, init=False)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        _relays[id(self)] = self
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, flush_timeout: float = 5.0) -> None:
        """Stop waking up, then publish whatever is still pending (graceful shutdown)."""
        _relays.pop(id(self), None)
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, flush_timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        try:
            await asyncio.wait_for(self.flush(), flush_timeout)
        except Exception:
            log.warning("outbox not fully flushed at shutdown; it will be sent on next start")
        try:
            await self._write_marks()
        except Exception:
            log.warning("outbox marks not written at shutdown; those events are sent again on start")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.flush()
                if self._unmarked and time.monotonic() - self._marked_at >= MARK_INTERVAL_SECONDS:
                    await self._write_marks()
                await self._purge()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                await asyncio.sleep(min(self.poll_interval, 0.5))

    async def flush(self) -> int:
        """Publish pending rows until none remain; returns how many were sent."""
        sent = 0
        while True:
            n = await self._publish_batch()
            sent += n
            if n < self.batch_size:
                return sent

    async def _publish_batch(self) -> int:
        ob = self.outbox
        query = (
            select(ob.c.seq, ob.c.event_id, ob.c.subject, ob.c.payload, ob.c.headers)
            .where(ob.c.published_at.is_(None))
            .order_by(ob.c.seq)
            .limit(self.batch_size)
        )
        if self.database.sqlite:
            # One relay per SQLite file (one process), so nothing to claim. Read, publish and
            # mark in separate steps: holding the process's write lock across JetStream's
            # round trips would stall every intake request and consumer behind the network.
            # This runs after every commit that wrote events, so it uses prepared statements.
            rows = await dbsync.read(self.database, self._pending_sync)
            if not rows:
                return 0
            results = await self._publish_rows(rows)
            done, failed = _split(rows, results)
            for row, res in zip(rows, results, strict=True):
                if isinstance(res, BaseException):
                    break  # the next pass reads again from the first row not acknowledged
                self._published_through = row.seq
            self._unmarked.extend(done)
            if (
                failed
                or len(self._unmarked) >= MARK_BATCH
                or time.monotonic() - self._marked_at >= MARK_INTERVAL_SECONDS
            ):
                await self._write_marks(failed)
        else:
            # Replicas share the table: each row goes to exactly one relay at a time.
            async with self.database.transaction() as session:
                rows = list((await session.execute(query.with_for_update(skip_locked=True))).all())
                if not rows:
                    return 0
                results = await self._publish_rows(rows)
                done, failed = await session.run_sync(
                    lambda s: self._mark_sync(Reader.of(s.connection()), rows, results)
                )
        self.published += len(done)
        if failed:
            first = next(r for r in results if isinstance(r, BaseException))
            raise RuntimeError(f"{len(failed)} outbox events not acknowledged: {first!r}")
        return len(rows)

    async def _publish_rows(self, rows: list[Any]) -> list[Any]:
        return await asyncio.gather(
            *(
                self.bus.publish(
                    row.subject, row.payload, headers=orjson.loads(row.headers), msg_id=row.event_id
                )
                for row in rows
            ),
            return_exceptions=True,
        )

    def _pending_sync(self, reader: Reader) -> list[Any]:
        params = {"batch_size": self.batch_size, "after": self._published_through}
        return reader.all(_prepared(self.outbox, _pending_rows), params)

    async def _write_marks(self, failed: Sequence[int] = ()) -> None:
        """SQLite: mark the acknowledged rows published, count an attempt on `failed` ones."""
        marks, self._unmarked = self._unmarked, []
        self._marked_at = time.monotonic()
        if not marks and not failed:
            return
        try:
            await dbsync.write(self.database, self._mark_rows, marks, failed)
        except BaseException:
            self._unmarked = marks + self._unmarked  # still acknowledged: try again next time
            raise

    def _mark_sync(self, reader: Reader, rows: list[Any], results: list[Any]) -> tuple[list[int], list[int]]:
        done, failed = _split(rows, results)
        self._mark_rows(reader, done, failed)
        return done, failed

    def _mark_rows(self, reader: Reader, published: Sequence[int], failed: Sequence[int]) -> None:
        """`published_at` on the acknowledged rows, one more attempt counted on the failed ones."""
        if published:
            now = time.time()
            _prepared(self.outbox, _mark_published).execute_many(
                reader, [{"published_at": now, "row_seq": seq} for seq in published]
            )
        for seq in failed:
            _prepared(self.outbox, _count_attempt).execute(reader, {"row_seq": seq})

    async def _purge(self) -> None:
        now = time.time()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        async with self.database.transaction() as session:
            await session.execute(
                delete(self.outbox).where(self.outbox.c.published_at < now - self.retention_seconds)
            )

    async def backlog(self) -> tuple[int, float | None]:
        """(events not yet published, created_at of the oldest of them or None): what
        `voc_outbox_pending_events` and `voc_outbox_oldest_pending_age_seconds` show."""
        from sqlalchemy import func

        ob = self.outbox
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(func.count(), func.min(ob.c.created_at)).where(
                        ob.c.published_at.is_(None), ob.c.seq > self._published_through
                    )
                )
            ).one()
        return int(row[0] or 0), (float(row[1]) if row[1] is not None else None)

    async def pending(self) -> int:
        from sqlalchemy import func

        async with self.database.session() as session:
            # Rows acknowledged but not yet marked (SQLite, see the class notes) are not pending.
            value: Any = await session.scalar(
                select(func.count())
                .select_from(self.outbox)
                .where(self.outbox.c.published_at.is_(None), self.outbox.c.seq > self._published_through)
            )
            return int(value or 0)
