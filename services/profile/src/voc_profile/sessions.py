"""Running a prepared-statement function (`fn(reader, ...)`, see `voc_platform.dbsync`) inside an
ORM session's transaction: how the rare paths that also need the ORM (merges, undo, erasure, the
bulk import) reuse the one implementation of a write instead of a copy of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.dbsync import Reader

P = ParamSpec("P")
T = TypeVar("T")


async def in_session(
    session: AsyncSession, fn: Callable[Concatenate[Reader, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`fn(reader, ...)` on the session's connection, in its transaction, in one greenlet hop.
    The session's pending ORM changes must be flushed first when `fn` reads what they touch."""
    return await session.run_sync(lambda s: fn(Reader.of(s.connection()), *args, **kwargs))
