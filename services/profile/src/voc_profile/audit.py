"""The audit log of personal data: who changed or read which customer (ids and counts, never the data).

Changes are recorded in the transaction that makes them (`record`). Reads are many (every alert
reads a context) and must not turn a lookup into a write: `AuditTrail` buffers them in memory
and writes them in one transaction per second, and on shutdown. A crash loses at most that
second of read entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc_platform.db import Database
from voc_platform.dbsync import Prepared
from voc_profile.models import AuditEntry, audit_table
from voc_profile.sessions import in_session

log = logging.getLogger(__name__)
CHUNK = 100
_INSERT = Prepared(insert(audit_table))


def _entry(actor: str, action: str, customer_id: str | None, detail: dict[str, Any] | None) -> dict[str, Any]:
    """An audit_log row (ids and counts only, never the data)."""
    return {
        "at": time.time(),
        "actor": actor[:100],
        "action": action,
        "customer_id": customer_id,
        "detail": detail or {},
    }


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    customer_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction."""
    entry = _entry(actor, action, customer_id, detail)
    await in_session(session, _INSERT.execute_many, [entry])


async def entries(session: AsyncSession, *, customer_id: str | None, limit: int) -> list[AuditEntry]:
    """The latest entries, newest first (one customer's, or everyone's)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if customer_id:
        query = query.where(AuditEntry.customer_id == customer_id)
    return list(await session.scalars(query))


class AuditTrail:
    """The buffer of read entries (see the module notes)."""

    def __init__(self, database: Database, *, flush_seconds: float = 1.0) -> None:
        self.database = database
        self.flush_seconds = flush_seconds
        self._pending: list[dict[str, Any]] = []

    def read(
        self, *, actor: str, action: str, customer_id: str | None, detail: dict[str, Any] | None = None
    ) -> None:
        self._pending.append(_entry(actor, action, customer_id, detail))

    async def flush(self) -> int:
        """Write the buffered entries, `CHUNK` per transaction: on SQLite a statement holds the
        event loop while it runs, so one big insert would stall every call for its duration."""
        written = 0
        while self._pending:
            rows, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            try:
                async with self.database.transaction() as session:
                    await in_session(session, _INSERT.execute_many, rows)  # DBAPI executemany
            except Exception:
                self._pending = rows + self._pending  # keep them for the next pass
                raise
            written += len(rows)
            await asyncio.sleep(0)  # let waiting calls run between chunks
        return written

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("audit flush failed; retrying")
