"""One database per service: SQLAlchemy 2 async engine, SQLite (WAL) or PostgreSQL by URL.

The outbox relay is woken when a session that added events commits, so events leave within
milliseconds instead of a polling interval; polling remains as the safety net.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from voc_platform import sqlite_onloop

COMMIT_HOOKS_KEY = "voc_after_commit"
#: The connection execution option that makes `_sqlite_begin` issue BEGIN IMMEDIATE.
SQLITE_IMMEDIATE = "voc_sqlite_immediate"
#: SQLite group commit: how long a flush waits for more writes under load (`dbsync.write`).
GROUP_LINGER_SECONDS = 0.003


def async_url(url: str) -> str:
    """Map a plain URL to the async driver we ship.

    sqlite -> statements on the event loop (`sqlite_onloop`), postgresql -> asyncpg. An explicit
    `sqlite+aiosqlite://` URL keeps the thread-per-connection driver.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername=f"sqlite+{sqlite_onloop.DRIVER}")
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class VocSession(Session):
    """Session class whose after_commit runs callbacks registered during the transaction."""


@event.listens_for(VocSession, "after_commit")
def _run_commit_hooks(session: Session) -> None:
    hooks: list[Callable[[], None]] = session.info.pop(COMMIT_HOOKS_KEY, [])
    for hook in hooks:
        hook()


@event.listens_for(VocSession, "after_rollback")
def _drop_commit_hooks(session: Session) -> None:
    session.info.pop(COMMIT_HOOKS_KEY, None)


def on_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` once this session's transaction commits (never on rollback)."""
    hooks: list[Callable[[], None]] = session.sync_session.info.setdefault(COMMIT_HOOKS_KEY, [])
    if hook not in hooks:
        hooks.append(hook)


class Database:
    def __init__(
        self, url: str, *, pool_size: int = 10, echo: bool = False, group_linger: float = GROUP_LINGER_SECONDS
    ) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        # A failed statement's parameters (customer texts, phones, e-mails) stay out of the
        # exception text, so out of logs, traces and dead-letter headers.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.sqlite:
            path = make_url(url).database
            kwargs["connect_args"] = {"timeout": 30}
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Keep a connection for every session a busy service holds at once (32 consumer
                # tasks, workers, requests): past the pool, each overflow connection was opened
                # (WAL pragmas) and closed again, losing sqlite3's per-connection statement
                # cache. Opened lazily, they cost little memory; statements run one at a time.
                # (An in-memory database gets SQLAlchemy's single-connection pool instead.)
                kwargs.update(pool_size=max(pool_size, 48), max_overflow=pool_size)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # The sqlite3 module's implicit transactions defeat SAVEPOINT and transactional DDL;
            # SQLAlchemy's recipe: turn them off and emit BEGIN ourselves.
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, sync_session_class=VocSession)
        self.write_lock = asyncio.Lock() if self.sqlite else None
        #: SQLite: `dbsync.GroupCommit`, the queue of `dbsync.write` (made on first use), and
        #: how long its flush waits for more writes under load (0: never).
        self.group_commit: Any = None
        self.group_linger = group_linger

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: commits on success, rolls back on error.

        On SQLite, writers in one process are serialized with an asyncio lock: SQLite allows one
        writer at a time anyway, and queueing here avoids the deferred-transaction upgrade
        deadlock within the process. The transaction also begins IMMEDIATE, taking the file's
        write lock first: a deferred one that had read and then wrote after another process (a
        second replica on the same file, a `voc` command) committed failed at once with "database
        is locked" (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out); now it waits its turn.
        """
        if self.write_lock is not None:
            async with self.write_lock, self.sessions() as session, session.begin():
                await session.connection(execution_options={SQLITE_IMMEDIATE: True})
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 would otherwise manage transactions itself; we issue BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # On the DBAPI cursor: SQLAlchemy's own execute path costs more than BEGIN itself, and this
    # runs for every transaction. Reads begin deferred (they never block a writer in WAL mode).
    cursor = conn.connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE" if conn.get_execution_options().get(SQLITE_IMMEDIATE) else "BEGIN")
    finally:
        cursor.close()
