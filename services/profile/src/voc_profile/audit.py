"""The read side of the audit log: who looked at personal data.

Changes are audited in their own transaction (service.audit). Reads are many (every alert reads
a context) and must not turn a lookup into a write: they are buffered in memory and written in
one transaction per second, and on shutdown. A crash loses at most that second of read entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import insert

from voc_platform.db import Database
from voc_profile.models import AuditEntry

log = logging.getLogger(__name__)


class AuditTrail:
    def __init__(self, database: Database, *, flush_seconds: float = 1.0) -> None:
        self.database = database
        self.flush_seconds = flush_seconds
        self._pending: list[dict[str, Any]] = []

    def read(
        self, *, actor: str, action: str, customer_id: str | None, detail: dict[str, Any] | None = None
    ) -> None:
        self._pending.append(
            {
                "at": time.time(),
                "actor": actor[:100],
                "action": action,
                "customer_id": customer_id,
                "detail": detail or {},
            }
        )

    async def flush(self) -> int:
        rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            async with self.database.transaction() as session:
                await session.execute(insert(AuditEntry), rows)
        except Exception:
            self._pending = rows + self._pending  # keep them for the next pass
            raise
        return len(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("audit flush failed; retrying")
