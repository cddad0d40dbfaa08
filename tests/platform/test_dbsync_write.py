"""`dbsync.write`: one committed transaction per call as seen by its caller. On SQLite the writes
asked for on the same turn of the loop share one transaction (group commit), each inside its
own savepoint; on PostgreSQL each call is its own transaction."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import make_url

from tests.conftest import DatabaseFactory
from voc_platform import batching, dbsync, telemetry
from voc_platform.db import Database

metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
rows = Table(
    "rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    # Checked at COMMIT on SQLite: a way to make the shared transaction itself fail.
    Column(
        "parent_id",
        Integer,
        ForeignKey("parents.id", deferrable=True, initially="DEFERRED"),
        nullable=True,
    ),
)
_INSERT = dbsync.Prepared(insert(rows))
_NAMES = dbsync.Prepared(select(rows.c.name).order_by(rows.c.id))


@pytest.fixture
async def database(databases: DatabaseFactory) -> AsyncIterator[Database]:
    db = Database(databases.url("dbsync"))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


def add(reader: dbsync.Reader, name: str, *, parent_id: int | None = None) -> int:
    """Insert a row and answer how many rows this transaction sees (its own included)."""
    _INSERT.execute(reader, {"name": name, "parent_id": parent_id})
    return len(reader.all(_NAMES, {}))


def fail_after_insert(reader: dbsync.Reader, name: str) -> None:
    _INSERT.execute(reader, {"name": name, "parent_id": None})
    raise LookupError(f"{name} changed its mind")


async def names(database: Database) -> list[str]:
    return [row.name for row in await dbsync.read(database, _NAMES.rows, {})]


async def test_concurrent_writes_commit_each_and_one_failure_stays_its_own(database: Database) -> None:
    calls = [dbsync.write(database, add, f"row-{i}") for i in range(12)]
    calls.insert(5, dbsync.write(database, fail_after_insert, "bad"))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    failed = outcomes.pop(5)
    assert isinstance(failed, LookupError) and str(failed) == "bad changed its mind"
    # Every other caller got its own function's answer, and the failed one's row is gone.
    assert all(isinstance(n, int) for n in outcomes)
    assert sorted(await names(database)) == sorted(f"row-{i}" for i in range(12))
    if database.sqlite:
        # Grouped: each later function saw the rows of those before it, as if they had
        # committed, and the thirteen calls took far fewer than thirteen commits.
        assert outcomes == list(range(1, 13))
        group = database.group_commit
        assert group is not None and group.writes == 13 and group.transactions < 13


async def test_a_constraint_error_rolls_back_only_that_write(database: Database) -> None:
    await dbsync.write(database, add, "taken")
    outcomes = await asyncio.gather(
        dbsync.write(database, add, "first"),
        dbsync.write(database, add, "taken"),  # unique violation
        dbsync.write(database, add, "last"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], Exception) and "unique" in str(outcomes[1]).lower()
    assert sorted(await names(database)) == ["first", "last", "taken"]


async def test_a_failed_commit_fails_every_write_it_carried_and_writes_nothing(database: Database) -> None:
    if not database.sqlite:
        pytest.skip("SQLite only: on PostgreSQL each write is its own transaction")
    outcomes = await asyncio.gather(
        dbsync.write(database, add, "innocent-1"),
        dbsync.write(database, add, "orphan", parent_id=999),  # fails at COMMIT, not at INSERT
        dbsync.write(database, add, "innocent-2"),
        return_exceptions=True,
    )
    assert all(isinstance(o, Exception) and "FOREIGN KEY" in str(o) for o in outcomes)
    assert await names(database) == []
    # The queue is usable again afterwards.
    assert await dbsync.write(database, add, "after") == 1
    assert await names(database) == ["after"]


async def test_a_caller_cancelled_before_the_flush_writes_nothing(database: Database) -> None:
    if not database.sqlite:
        pytest.skip("SQLite only: the group queue")
    kept = asyncio.ensure_future(dbsync.write(database, add, "kept"))
    dropped = asyncio.ensure_future(dbsync.write(database, add, "dropped"))
    await asyncio.sleep(0)  # both are queued; the flush runs on a later turn
    dropped.cancel()
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await names(database) == ["kept"]


async def test_writes_wait_for_an_orm_transaction_holding_the_write_lock(database: Database) -> None:
    if not database.sqlite:
        pytest.skip("SQLite only: PostgreSQL has no process write lock")
    async with database.transaction() as session:
        await session.execute(insert(rows).values(name="orm"))
        pending = asyncio.ensure_future(dbsync.write(database, add, "grouped"))
        await asyncio.sleep(0.05)
        assert not pending.done()  # one writer at a time, as before
    assert await pending == 2
    assert await names(database) == ["orm", "grouped"]


class OtherProcess:
    """A writer on the same SQLite file from outside this process's write lock (a second replica,
    a `voc` command): a plain sqlite3 connection in a thread that inserts one row and commits."""

    def __init__(self, database: Database) -> None:
        self.path = make_url(database.url).database
        self.thread = threading.Thread(target=self._write)
        self.failure: BaseException | None = None

    def _write(self) -> None:
        try:
            with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as connection:
                connection.execute("INSERT INTO rows (name) VALUES ('other')")
        except BaseException as exc:  # reported by `finished`
            self.failure = exc

    def start_and_see_it_wait(self) -> None:
        """Start it; it must still be waiting for this transaction's write lock a moment later."""
        self.thread.start()
        self.thread.join(0.3)
        assert self.thread.is_alive(), "the other writer committed inside this transaction"

    def finished(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive() and self.failure is None, self.failure


async def test_a_transaction_that_reads_then_writes_waits_out_another_process(database: Database) -> None:
    """A deferred transaction that read, then wrote after another process committed, failed at once
    with "database is locked" (SQLITE_BUSY_SNAPSHOT: no busy timeout waits it out); CI met it as a
    500 with two feedback replicas on one file. Transactions now take the write lock at BEGIN."""
    if not database.sqlite:
        pytest.skip("SQLite only: PostgreSQL locks rows")
    other = OtherProcess(database)
    async with database.transaction() as session:
        assert (await session.scalars(select(rows.c.name))).all() == []
        other.start_and_see_it_wait()
        await session.execute(insert(rows).values(name="orm"))
    other.finished()
    assert await names(database) == ["orm", "other"]


async def test_a_grouped_write_that_reads_then_writes_waits_out_another_process(database: Database) -> None:
    if not database.sqlite:
        pytest.skip("SQLite only: PostgreSQL locks rows")
    other = OtherProcess(database)

    def read_then_add(reader: dbsync.Reader) -> int:
        seen = len(reader.all(_NAMES, {}))
        other.start_and_see_it_wait()
        return seen + add(reader, "grouped")

    assert await dbsync.write(database, read_then_add) == 1
    other.finished()
    assert await names(database) == ["grouped", "other"]


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


def add_as_caller(reader: dbsync.Reader) -> tuple[str, str | None]:
    """Insert a row named after the caller; answer (caller, trace id) as seen inside the write."""
    _INSERT.execute(reader, {"name": CALLER.get(), "parent_id": None})
    return CALLER.get(), telemetry.current_trace_id()


async def test_each_write_runs_in_its_callers_context(database: Database) -> None:
    """An outbox row written inside a grouped write carries its own caller's trace context, not
    that of the caller whose write started the group."""
    telemetry.setup("voc-tests")  # the SDK provider, as services run: spans with real trace ids

    async def caller(name: str) -> tuple[tuple[str, str | None], str | None]:
        CALLER.set(name)
        with telemetry.span(f"caller {name}"):
            return await dbsync.write(database, add_as_caller), telemetry.current_trace_id()

    answers = await asyncio.gather(*(caller(f"c{i}") for i in range(6)))
    assert [seen for (seen, _), _ in answers] == [f"c{i}" for i in range(6)]
    assert all(inside == outside and inside is not None for (_, inside), outside in answers)
    assert len({outside for _, outside in answers}) == 6
    assert sorted(await names(database)) == [f"c{i}" for i in range(6)]


# --- lingering under load (SQLite group commit) ---------------------------------------------


@pytest.fixture
def slow_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrivals counted over 5 s buckets: a burst still counts after a stall of a busy CI box."""
    monkeypatch.setattr(batching, "BUCKET_SECONDS", 5.0)


async def _loaded_group(database: Database, *, linger: float) -> dbsync.GroupCommit:
    """The group queue right after a burst of concurrent writers (40 writes on one turn of the
    loop, as under load), with `linger` from now on."""
    if not database.sqlite:
        pytest.skip("SQLite only: the group queue")
    database.group_linger = 0.0
    await asyncio.gather(*(dbsync.write(database, add, f"load-{i}") for i in range(40)))
    group = dbsync._group(database)
    group.linger = linger
    return group


async def test_under_load_a_flush_waits_for_writes_asked_for_on_later_turns(
    database: Database, slow_buckets: None
) -> None:
    group = await _loaded_group(database, linger=0.5)
    transactions, lingered = group.transactions, group.lingered

    first = asyncio.ensure_future(dbsync.write(database, add, "first"))
    await asyncio.sleep(0.01)  # later turns of the loop, inside the linger
    second = asyncio.ensure_future(dbsync.write(database, add, "second"))
    await asyncio.sleep(0.01)
    third = asyncio.ensure_future(dbsync.write(database, add, "third"))

    # One transaction for the three, each seeing those before it as committed.
    assert await asyncio.gather(first, second, third) == [41, 42, 43]
    assert group.transactions == transactions + 1
    assert group.lingered == lingered + 1


async def test_a_lone_writer_awaiting_each_write_never_waits(database: Database) -> None:
    if not database.sqlite:
        pytest.skip("SQLite only: the group queue")
    database.group_linger = 0.05
    group = dbsync._group(database)
    for i in range(60):  # far more than one per linger, but never two at once
        assert await dbsync.write(database, add, f"row-{i}") == i + 1
    assert group.lingered == 0 and group.transactions == 60


async def test_after_a_pause_a_write_goes_without_waiting(database: Database) -> None:
    group = await _loaded_group(database, linger=0.05)
    lingered = group.lingered
    await asyncio.sleep(0.25)  # two counting buckets without writes
    assert await dbsync.write(database, add, "alone") == 41
    assert group.lingered == lingered


async def test_a_transactions_worth_of_writes_ends_the_wait(database: Database, slow_buckets: None) -> None:
    group = await _loaded_group(database, linger=30.0)
    transactions = group.transactions

    first = asyncio.ensure_future(dbsync.write(database, add, "first"))
    await asyncio.sleep(0.01)  # the flush is lingering now
    rest = [dbsync.write(database, add, f"more-{i}") for i in range(dbsync.GROUP_LIMIT - 1)]
    # Done long before the 30 s linger: the full queue let the flush go.
    seen = await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5)
    assert seen == list(range(41, 41 + dbsync.GROUP_LIMIT))
    assert group.transactions == transactions + 1


async def test_a_linger_of_zero_never_waits(database: Database) -> None:
    group = await _loaded_group(database, linger=0.0)
    await asyncio.gather(dbsync.write(database, add, "a"), dbsync.write(database, add, "b"))
    assert group.lingered == 0


async def test_the_linger_timer_coming_due_after_a_full_queue_ended_the_wait_is_harmless() -> None:
    # Both on one turn: the full queue resolved the wait first, then the timer fires.
    ended = asyncio.get_running_loop().create_future()
    ended.set_result(None)
    dbsync._resolve(ended)  # no InvalidStateError ("Exception in callback ..." in the log)
    assert ended.done() and ended.result() is None


async def test_a_write_behind_commits_after_the_writes_queued_with_it_in_its_own_transaction(
    database: Database,
) -> None:
    """Webhook bookkeeping (`write_behind`) never shares a page's transaction: asked for first on
    the same turn, it still runs after the `write`s and apart from them."""
    behind = asyncio.ensure_future(dbsync.write_behind(database, add, "behind"))
    urgent = [asyncio.ensure_future(dbsync.write(database, add, f"urgent-{i}")) for i in range(3)]
    seen = await asyncio.gather(*urgent, behind)
    if not database.sqlite:  # PostgreSQL: each its own transaction, as `write`
        assert sorted(await names(database)) == ["behind", "urgent-0", "urgent-1", "urgent-2"]
        return
    assert seen == [1, 2, 3, 4]
    assert await names(database) == ["urgent-0", "urgent-1", "urgent-2", "behind"]
    group = database.group_commit
    assert group is not None and group.writes == 4 and group.transactions == 2


async def test_a_write_behind_is_not_starved_by_a_steady_stream_of_writes(database: Database) -> None:
    """Writes queued on every turn would always go first; the write behind gets its turn once it
    has waited `BEHIND_MAX_WAIT`, long before the stream ends."""
    if not database.sqlite:
        pytest.skip("SQLite only: the group queue")
    database.group_linger = 0.0
    stop = asyncio.Event()

    async def stream(writer: int) -> int:
        # A new write on every turn of the loop, so one is queued whenever the flush looks.
        asked: list[asyncio.Future[int]] = []
        while not stop.is_set():
            asked.append(asyncio.ensure_future(dbsync.write(database, add, f"w{writer}-{len(asked)}")))
            await asyncio.sleep(0)
        await asyncio.gather(*asked)
        return len(asked)

    writers = [asyncio.ensure_future(stream(w)) for w in range(3)]
    await asyncio.sleep(0.02)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(dbsync.write_behind(database, add, "behind"), timeout=5)
    waited = asyncio.get_running_loop().time() - started
    stop.set()
    assert sum(await asyncio.gather(*writers)) > 0
    # BEHIND_MAX_WAIT and the transaction it then alternates with, with slack for a busy CI box.
    assert waited < dbsync.BEHIND_MAX_WAIT + 0.5, waited


async def test_the_callers_of_a_committed_write_run_before_a_transaction_behind(database: Database) -> None:
    """A page's code after its write (sending the push) goes before the webhook bookkeeping's
    transaction holds the loop."""
    if not database.sqlite:
        pytest.skip("SQLite only: the group queue")
    order: list[str] = []

    def behind(reader: dbsync.Reader) -> int:
        order.append("behind")
        return add(reader, "behind")

    async def page() -> None:
        await dbsync.write(database, add, "page")
        order.append("page resumed")

    await asyncio.gather(page(), dbsync.write_behind(database, behind))
    assert order == ["page resumed", "behind"]


async def test_writes_behind_make_no_flush_linger(database: Database, slow_buckets: None) -> None:
    """Webhook bookkeeping at any rate is not load: a lone page's write never waits for more."""
    group = await _loaded_group(database, linger=0.5)
    await asyncio.sleep(0.25)  # the burst's buckets have gone by (5 s buckets: still counted)
    group._arrivals, group._overlapping = batching.ArrivalRate(), batching.ArrivalRate()
    lingered = group.lingered
    for i in range(30):  # bookkeeping, and a page's write now and then among it
        behind = [dbsync.write_behind(database, add, f"behind-{i}-{j}") for j in range(5)]
        await asyncio.gather(*behind, dbsync.write(database, add, f"page-{i}"))
    assert group.lingered == lingered


async def test_a_failing_write_behind_fails_alone(database: Database) -> None:
    outcomes = await asyncio.gather(
        dbsync.write_behind(database, add, "first"),
        dbsync.write_behind(database, fail_after_insert, "bad"),
        dbsync.write(database, add, "page"),
        dbsync.write_behind(database, add, "last"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], LookupError)
    assert sorted(await names(database)) == ["first", "last", "page"]
