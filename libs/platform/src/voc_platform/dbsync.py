"""The hot paths' database access: few hops, little machinery per statement.

Every awaited statement on an AsyncSession or AsyncConnection is a greenlet switch, and opening
and closing an AsyncConnection are two more (plus a task for the shielded close); each Core
statement then goes through the compiled-statement cache, an execution context and result
processing, and each transaction through begin/rollback events. For a context call (a few
indexed lookups) that bookkeeping cost several times the statements themselves.

- `read` runs a function on a pooled connection inside one greenlet: SQLite statements run on
  the loop as before, PostgreSQL statements still suspend on asyncpg (the greenlet hands each
  await to the loop), so nothing blocks. Writers use `session.run_sync` with `Reader.of`, in
  the transaction of `Database.transaction()` (write lock, commit hooks).
- `Prepared` is a Core statement compiled once per dialect by SQLAlchemy and run on the DBAPI
  cursor with positional parameters; rows are named tuples, with SQLAlchemy's result types
  applied for the two that differ between the drivers (Boolean, JSON), and JSON parameters are
  serialized. Only for statements whose other parameters need no conversion (strings, numbers,
  booleans) and have no expanding IN.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson
from sqlalchemy import JSON, Boolean, ClauseElement, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util.concurrency import greenlet_spawn

from voc_platform.batching import ArrivalRate, fail_waiting
from voc_platform.db import Database

P = ParamSpec("P")
T = TypeVar("T")


_IGNORING: dict[tuple[str, str], Insert] = {}


def insert_ignore(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING (rowcount 0 when the key was there): one statement
    instead of a check, a savepoint and an insert. `dialect`: `connection.dialect.name`."""
    key = (dialect, table.name)
    stmt = _IGNORING.get(key)
    if stmt is None:
        builder: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = _IGNORING[key] = builder(table).on_conflict_do_nothing()
    return stmt


def _json(value: Any) -> Any:
    # SQLite hands back the stored text; asyncpg's codec (set up by SQLAlchemy) decodes it.
    return orjson.loads(value) if isinstance(value, str) else value


def _json_text(value: Any) -> str:
    # orjson: several times faster than json.dumps on the alert's plan and context documents.
    # Non-string keys become strings, as json.dumps makes them.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)  # SQLite stores 0/1


class _Compiled:
    __slots__ = ("binders", "defaults", "positions", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, keys: list[str] | None) -> None:
        compiled: Any = stmt.compile(dialect=dialect, column_keys=keys)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: a positional paramstyle is needed")
        self.sql: str = compiled.string
        self.positions: tuple[str, ...] = tuple(compiled.positiontup)
        binds = compiled.binds
        self.defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        # JSON is the one parameter type the drivers take as text, serialized (SQLite stores the
        # text, SQLAlchemy's asyncpg codec sends it as is).
        self.binders = [_json_text if isinstance(binds[name].type, JSON) else None for name in self.positions]

    def parameters(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[k] if k in params else self.defaults[k] for k in self.positions]
        for i, bind in enumerate(self.binders):
            if bind is not None and values[i] is not None:
                values[i] = bind(values[i])
        return values


class Prepared:
    """A Core statement compiled once per dialect (and, for INSERT and UPDATE, per set of
    columns given), run on the DBAPI cursor (see the module notes). `stmt` may be a function of
    the dialect name, for dialect-specific statements (`insert_ignore`)."""

    def __init__(self, stmt: ClauseElement | Callable[[str], ClauseElement]) -> None:
        self.stmt = stmt
        self.row: Any = None
        self.converters: list[Callable[[Any], Any] | None] = []
        self._convert = False
        if isinstance(stmt, Select):
            self._describe(stmt)
        self._compiled: dict[tuple[str, str, tuple[str, ...] | None], _Compiled] = {}

    def _describe(self, stmt: Select[Any]) -> None:
        """The row type and result converters of a SELECT (the same for every dialect)."""
        columns = list(stmt.selected_columns)
        names = [c.key or f"column_{i}" for i, c in enumerate(columns)]
        self.row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        self.converters = [
            _json if isinstance(c.type, JSON) else _bool if isinstance(c.type, Boolean) else None
            for c in columns
        ]
        self._convert = any(self.converters)

    def compiled(self, dialect: Dialect, keys: tuple[str, ...] | None = None) -> _Compiled:
        found = self._compiled.get((dialect.name, dialect.driver, keys))
        if found is None:
            stmt = self.stmt if isinstance(self.stmt, ClauseElement) else self.stmt(dialect.name)
            if self.row is None and isinstance(stmt, Select):
                self._describe(stmt)
            found = self._compiled[(dialect.name, dialect.driver, keys)] = _Compiled(
                stmt, dialect, list(keys) if keys is not None else None
            )
        return found

    def rows(self, reader: Reader, params: Mapping[str, Any]) -> list[Any]:
        compiled = self.compiled(reader.dialect)
        cursor = reader.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        make = self.row._make
        if not self._convert:
            return [make(r) for r in fetched]
        converters = self.converters
        return [make([f(v) if f else v for f, v in zip(converters, r, strict=True)]) for r in fetched]

    def execute(self, reader: Reader, params: Mapping[str, Any]) -> int:
        """An INSERT, UPDATE or DELETE; the columns set are the keys of `params` that name one.
        Returns the row count."""
        compiled = self.compiled(reader.dialect, tuple(params))
        cursor = reader.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def execute_many(self, reader: Reader, rows: Sequence[Mapping[str, Any]]) -> None:
        """An INSERT or UPDATE of several rows with the same keys (DBAPI executemany)."""
        compiled = self.compiled(reader.dialect, tuple(rows[0]))
        cursor = reader.connection.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        finally:
            cursor.close()


class Reader:
    """Runs `Prepared` statements on one pooled connection (in its transaction, if any)."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection  # a pool connection (DBAPI-like: .cursor())
        self.dialect = dialect

    @classmethod
    def of(cls, conn: Connection) -> Reader:
        return cls(conn.connection, conn.dialect)

    def all(self, prepared: Prepared, params: Mapping[str, Any]) -> list[Any]:
        return prepared.rows(self, params)

    def first(self, prepared: Prepared, params: Mapping[str, Any]) -> Any:
        rows = prepared.rows(self, params)
        return rows[0] if rows else None

    def scalar(self, prepared: Prepared, params: Mapping[str, Any]) -> Any:
        rows = prepared.rows(self, params)
        return rows[0][0] if rows else None

    def execute(self, prepared: Prepared, params: Mapping[str, Any]) -> int:
        return prepared.execute(self, params)


async def read(
    database: Database, fn: Callable[Concatenate[Reader, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(reader, ...)` on a pooled connection, in one greenlet, without SQLAlchemy's
    Connection: no begin/rollback events (SQLite: each statement reads the committed state;
    the statements follow each other without yielding, so nothing commits in between.
    PostgreSQL: one transaction, rolled back when the connection goes back to the pool)."""
    engine = database.engine.sync_engine

    def body() -> T:
        connection = engine.raw_connection()
        try:
            return fn(Reader(connection, engine.dialect), *args, **kwargs)
        finally:
            connection.close()

    return await greenlet_spawn(body)


async def write(
    database: Database, fn: Callable[Concatenate[Reader, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(reader, ...)` in one transaction on a pooled connection, committed when it returns
    and rolled back when it raises, in one greenlet hop: for hot write paths made only of
    `Prepared` statements. An AsyncSession transaction (sessionmaker, ORM session, begin and
    commit events, close) cost ~200 us of CPU around a ~50 us write here.

    SQLite: group commit. The writes asked for while the loop was busy run together in one
    transaction, each inside its own SAVEPOINT, under the process's write lock: one that raises
    is rolled back to its savepoint and raises to its caller alone, and every caller resumes only
    after the one COMMIT. SQLite has one writer at a time anyway, so nothing runs less
    concurrently; what is saved is a COMMIT per write (the WAL frames of the same table and index
    pages written once instead of once per write) and, downstream, the acks of the handlers that
    resume together leave in one socket write. Each `fn` sees the writes of those before it, as
    if they had committed just before. PostgreSQL: one transaction per call (grouping unrelated
    writers there would only lengthen lock holds).

    Under load (concurrent writers, writes arriving faster than one per linger,
    `Database.group_linger`, 3 ms by default) a flush first waits that long for more writes:
    batches grow, and so does every batch downstream (acks, relayed events, the other services'
    handlers). Below that rate, and for a lone writer that awaits each write before the next,
    nothing waits.

    Commit hooks are the caller's: call `outbox.wake_relays()` after it returns when `fn` wrote
    outbox rows."""
    if database.write_lock is not None:
        return await _group(database).submit(fn, args, kwargs, background=False)
    engine = database.engine.sync_engine

    def body() -> T:
        connection = engine.raw_connection()
        try:
            result = fn(Reader(connection, engine.dialect), *args, **kwargs)
            connection.commit()
            return result
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    return await greenlet_spawn(body)


async def write_behind(
    database: Database, fn: Callable[Concatenate[Reader, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`write` for work that may lag (webhook bookkeeping): on SQLite it runs in transactions of
    writes behind, never in the `write`s' transactions, so their callers do not wait for it to
    commit. Queued `write`s go first, and their resumed callers get a turn of the loop before a
    transaction behind; once the oldest write behind has waited `BEHIND_MAX_WAIT` the two
    alternate (no starvation under load). Its transactions are not load for the linger.
    PostgreSQL: the same as `write`."""
    if database.write_lock is not None:
        return await _group(database).submit(fn, args, kwargs, background=True)
    return await write(database, fn, *args, **kwargs)


#: At most this many writes share one transaction; the rest go in the next one at once.
GROUP_LIMIT = 128
#: A write behind waits at most about this long for the `write`s queued ahead of it.
BEHIND_MAX_WAIT = 0.05


class _Pending:
    __slots__ = ("args", "context", "fn", "future", "kwargs", "queued_at")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        future: asyncio.Future[Any],
        *,
        queued_at: float,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.future = future
        self.queued_at = queued_at
        # The caller's context: its function runs in it, not in the flush task's (the trace
        # context an outbox row carries, the trace id of a log line).
        self.context = contextvars.copy_context()

    def run(self, reader: Reader) -> Any:
        return self.context.run(self.fn, reader, *self.args, **self.kwargs)


class GroupCommit:
    """The SQLite write queue of one `Database` (see `write`)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.linger: float = database.group_linger
        self._queue: list[_Pending] = []
        self._behind: list[_Pending] = []  # `write_behind`'s, in their own transactions
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Writes lately, and those that found a flush already started (queued behind the first
        # write of a turn, during a linger or during a transaction): without the latter, the
        # writes come from one writer awaiting each before the next, and lingering would only
        # slow it down.
        self._arrivals = ArrivalRate()
        self._overlapping = ArrivalRate()
        self._full: asyncio.Future[None] | None = None  # set while a flush lingers
        self._urgent_running = False  # a transaction of `write`s is under way
        #: Transactions committed, writes they carried, and flushes that waited for more.
        self.transactions = 0
        self.writes = 0
        self.lingered = 0

    async def submit(self, fn: Callable[..., T], args: Any, kwargs: Any, *, background: bool) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        now = loop.time()
        pending = _Pending(fn, args, kwargs, future, queued_at=now)
        if background:
            self._behind.append(pending)
        else:
            self._arrivals.add(now)
            # Overlapping other `write`s (queued, lingering with them, or committing); a
            # transaction of writes behind is not load.
            if self._flushing and (self._queue or self._urgent_running):
                self._overlapping.add(now)
            self._queue.append(pending)
            if self._full is not None and len(self._queue) >= GROUP_LIMIT and not self._full.done():
                self._full.set_result(None)  # a full transaction's worth: stop lingering
        if not self._flushing:
            # The flush starts on the loop's next turn, so every write asked for on this turn
            # (handlers resumed by the same socket read, answers, commits) joins it.
            self._flushing = True
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._flush())
        self._tasks.add(task)  # a reference, so the flush is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def _linger(self) -> None:
        """Wait `linger` for more writes when another is expected within it from a concurrent
        writer, or until a transaction's worth is queued."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if (
            len(self._queue) >= GROUP_LIMIT
            or not self._arrivals.expects_more_within(self.linger, now)
            or not self._overlapping.per_second(now)
        ):
            return
        self.lingered += 1
        full = self._full = loop.create_future()
        timer = loop.call_later(self.linger, _resolve, full)
        try:
            await full
        finally:
            timer.cancel()
            self._full = None

    async def _flush(self) -> None:
        lock = self.database.write_lock
        assert lock is not None
        try:
            if self._queue:
                await self._linger()
            last_behind = False  # the last transaction carried writes behind
            resumed = False  # callers of a committed `write` were resumed, and have not run yet
            while self._queue or self._behind:
                behind = self._behind_next(asyncio.get_running_loop().time(), last_behind=last_behind)
                if behind and resumed:
                    # A turn of the loop first: those callers go on (their pushes leave) before a
                    # transaction of writes behind holds the lock and the loop; then pick again.
                    resumed = False
                    await asyncio.sleep(0)
                    continue
                async with lock:
                    queue = self._behind if behind else self._queue
                    batch = [p for p in queue[:GROUP_LIMIT] if not p.future.done()]
                    del queue[:GROUP_LIMIT]
                    if not batch:
                        continue
                    self._urgent_running = not behind
                    try:
                        outcomes = await greenlet_spawn(self._run, batch)
                    except BaseException as exc:  # the transaction itself failed: nobody committed
                        fail_waiting((p.future for p in batch), exc)
                        if not isinstance(exc, Exception):
                            raise
                        continue
                    finally:
                        self._urgent_running = False
                for p, (value, error) in zip(batch, outcomes, strict=True):
                    if p.future.done():
                        continue
                    if error is not None:
                        p.future.set_exception(error)
                    else:
                        p.future.set_result(value)
                last_behind, resumed = behind, not behind
        finally:
            self._flushing = False
            if self._queue or self._behind:  # arrived while an exception unwound the loop above
                self._flushing = True
                self._start(asyncio.get_running_loop())

    def _behind_next(self, now: float, *, last_behind: bool) -> bool:
        """Whether the next transaction takes writes behind: when no `write` is queued, or when
        the oldest behind has waited `BEHIND_MAX_WAIT` and the last transaction was the queued
        writes' (so under load the two alternate: neither waits for more than one of the other)."""
        if not self._behind:
            return False
        if not self._queue:
            return True
        return not last_behind and now - self._behind[0].queued_at >= BEHIND_MAX_WAIT

    def _run(self, batch: list[_Pending]) -> list[tuple[Any, BaseException | None]]:
        engine = self.database.engine.sync_engine
        connection = engine.raw_connection()
        reader = Reader(connection, engine.dialect)
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            cursor = connection.cursor()  # the driver runs in autocommit mode (db._sqlite_pragmas)
            try:
                # IMMEDIATE: take the file's write lock before the first read (`Database.transaction`).
                cursor.execute("BEGIN IMMEDIATE")
                if len(batch) == 1:  # alone: its failure rolls back the transaction below
                    outcomes.append((batch[0].run(reader), None))
                else:
                    for p in batch:
                        cursor.execute("SAVEPOINT voc_write")
                        try:
                            value = p.run(reader)
                        except Exception as exc:
                            cursor.execute("ROLLBACK TO voc_write")
                            cursor.execute("RELEASE voc_write")
                            outcomes.append((None, exc))
                        else:
                            cursor.execute("RELEASE voc_write")
                            outcomes.append((value, None))
            finally:
                cursor.close()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()
        self.transactions += 1
        self.writes += len(batch)
        return outcomes


def _resolve(future: asyncio.Future[None]) -> None:
    # The timer can come due on the turn a full queue already ended the wait.
    if not future.done():
        future.set_result(None)


def _group(database: Database) -> GroupCommit:
    group: GroupCommit | None = getattr(database, "group_commit", None)
    if group is None:
        group = GroupCommit(database)
        database.group_commit = group
    return group
