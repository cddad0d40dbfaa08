"""When to wait for more work before a batch goes out: only when more is expected in the wait.

Group commit (`dbsync.write`) batches the writes asked for on the same turn of the event loop.
Under load that is a few; waiting a few milliseconds gathers several times more, and a
transaction costs much the same whatever it carries (the COMMIT, the WAL frames of the same
index pages). Waiting at low load would only add latency, so a batch waits only while items
have lately arrived at least once per wait. (Tried on the coalesced gRPC lookups too: no gain,
their batches already grow with the group commits that resume their callers together.)
Also what both batchers do when a batch fails as a whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

#: Arrivals are counted in buckets of this many seconds (the last full one and the current).
BUCKET_SECONDS = 0.1


class ArrivalRate:
    """Items per second lately: the busier of the last full bucket and the current one, so a
    burst turns waiting on at once, and a whole bucket without items (100-200 ms of quiet)
    turns it off."""

    __slots__ = ("_bucket", "_count", "_last_count")

    def __init__(self) -> None:
        self._bucket = 0
        self._count = 0
        self._last_count = 0

    def _roll(self, now: float) -> None:
        bucket = int(now / BUCKET_SECONDS)
        if bucket != self._bucket:
            self._last_count = self._count if bucket == self._bucket + 1 else 0
            self._bucket, self._count = bucket, 0

    def add(self, now: float) -> None:
        self._roll(now)
        self._count += 1

    def per_second(self, now: float) -> float:
        self._roll(now)
        return max(self._count, self._last_count) / BUCKET_SECONDS

    def expects_more_within(self, wait: float, now: float) -> bool:
        """At least one more arrival is expected within `wait` seconds at the recent rate."""
        return wait > 0 and self.per_second(now) * wait >= 1


def fail_waiting(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """A batch failed as a whole: each caller still waiting gets its error (one that gave up,
    cancelled, is done already)."""
    for future in futures:
        if not future.done():
            future.set_exception(exc)
