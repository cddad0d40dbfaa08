"""What notify remembers of an erasure: the keys of the erased customer (`customer:<id>`) and of
the feedback items it named (`feedback:<id>`), for as long as the bus may still deliver an event
about them. notify's consumers read the bus in no set order among themselves, and one far behind
(notify stopped for a while) may read the erasure before an item's own event or a visit's
arrival: those then make no copy of the customer (`events`, `follow_ups.schedule`,
`delivery_reports`).

On PostgreSQL an erasure writes its names holding one advisory lock alone (`hold_alone`), and
each check holds it shared: an erasure under way has committed its names before a check reads
them, or waits for the writer that checked, whose copy it then finds and redacts. (SQLite's
writers are serialized, which does the same.)"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from voc_notify.models import ErasureTombstone
from voc_platform.bus import DEAD_LETTERS_MAX_AGE_SECONDS, EVENTS_MAX_AGE_SECONDS
from voc_platform.dbsync import Prepared, Reader

#: As long as an event may still reach notify: the stream's age, a dead letter's, and the stream's
#: again (a replayed dead letter is published anew), and a day.
TOMBSTONE_SECONDS = 2 * EVENTS_MAX_AGE_SECONDS + DEAD_LETTERS_MAX_AGE_SECONDS + 86400
_LOCK_KEY = "notify:erasure"
_LOCK_ID = func.hashtextextended(_LOCK_KEY, 0)
_SHARED_LOCK = select(func.pg_advisory_xact_lock_shared(_LOCK_ID))
_SHARED = Prepared(lambda dialect: _SHARED_LOCK)
_ERASED = Prepared(select(ErasureTombstone.key).where(ErasureTombstone.key == bindparam("key")))
_PRUNE = Prepared(delete(ErasureTombstone).where(ErasureTombstone.erased_at < bindparam("before")))


def feedback_key(feedback_id: str) -> str:
    return f"feedback:{feedback_id}"


def customer_key(customer_id: str) -> str:
    return f"customer:{customer_id}"


async def remember(
    session: AsyncSession, *, customer_id: str, feedback_ids: Sequence[str], now: float
) -> None:
    """Write the erasure's names, holding the lock alone (`hold_alone` first, in this session's
    transaction, which the caller commits before it redacts)."""
    keys = [customer_key(customer_id)] if customer_id else []
    keys += [feedback_key(feedback_id) for feedback_id in feedback_ids]
    if not keys:
        return
    dialect = (await session.connection()).dialect.name
    if dialect == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_ID)))
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [{"key": key[:64], "erased_at": now} for key in dict.fromkeys(keys)]
    await session.execute(insert(ErasureTombstone).on_conflict_do_nothing(index_elements=["key"]), rows)


def erased_sync(reader: Reader, key: str) -> bool:
    """Whether an erasure named `key`, inside a write hop (one indexed read; the shared lock
    first on PostgreSQL)."""
    if reader.dialect.name == "postgresql":
        reader.all(_SHARED, {})
    return reader.scalar(_ERASED, {"key": key}) is not None


async def erased(session: AsyncSession, key: str) -> bool:
    """`erased_sync` in a session's transaction."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(_SHARED_LOCK)
    return await session.get(ErasureTombstone, key) is not None


def prune_sync(reader: Reader, *, now: float) -> int:
    """Forget the names no event can carry any more; how many."""
    return reader.execute(_PRUNE, {"before": now - TOMBSTONE_SECONDS})
