"""SQLite for asyncio without a driver thread: statements run on the event loop itself.

aiosqlite hands every statement to a worker thread and the result back to the loop. On a busy
2-core machine that hop costs more than the statement: a WAL-mode SQLite write or indexed read
takes tens of microseconds, while the hop costs a thread wake-up, GIL hand-over and a loop
callback each way. Under load the benchmark showed the aiosqlite thread alone at about a third
of notify's samples.

This dialect is SQLAlchemy's plain pysqlite dialect marked async, so `create_async_engine` and
`AsyncSession` work unchanged: SQLAlchemy runs the synchronous driver calls inside its greenlet,
and they complete without ever suspending. Why that is safe here:

- each service process owns its database file (replicas run on PostgreSQL), and writers in one
  process are already serialized by `Database.write_lock`, so a statement never waits on
  `busy_timeout` in practice (a second process on the file, as the classifier registry's test
  runs two replicas, makes a write transaction wait at its `BEGIN IMMEDIATE`, loop and all);
- WAL readers never block on the writer, and `synchronous=NORMAL` means commit does not fsync;
- service transactions are short and indexed; bulk imports commit in batches and await the
  request stream between them, so the loop keeps serving.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

DRIVER = "voc_onloop"


class OnLoopCursor(sqlite3.Cursor):
    """A sqlite3 cursor that also answers the one coroutine AsyncResult calls on its cursor."""

    async def _async_soft_close(self) -> None:
        return None


class OnLoopConnection(sqlite3.Connection):
    def cursor(self, factory: Any = OnLoopCursor) -> Any:
        return super().cursor(factory)


async def _completed() -> None:
    return None


def _touch_loop() -> None:
    # AsyncConnection.execute insists that a statement awaited something (a guard against sync
    # drivers used by mistake). One already-completed await satisfies it for ~2 microseconds.
    if in_greenlet():
        await_(_completed())


class SQLiteDialectOnLoop(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        _touch_loop()
        cursor.execute(statement, parameters)

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        _touch_loop()
        cursor.execute(statement)

    def do_executemany(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        _touch_loop()
        cursor.executemany(statement, parameters)

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        kwargs["factory"] = OnLoopConnection
        # Connections are created and used on the event-loop thread; engine disposal at
        # shutdown can run elsewhere, which the default same-thread check would refuse.
        kwargs["check_same_thread"] = False
        return args, kwargs


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialectOnLoop")
