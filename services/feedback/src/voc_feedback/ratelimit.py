"""Per-API-key token buckets, in process (each replica limits on its own; the documented limit is
per replica, which keeps intake free of a shared store on the hot path)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from voc_platform.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate_per_second: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, *, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; a reset only ever lets a key through
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def admit(self, key: str) -> None:
        """Take one token for `key`, or refuse with `RateLimited` (429 and its Retry-After)."""
        wait = self.take(key)
        if wait > 0:
            raise RateLimited(
                f"Rate limit of {self.rate:g}/s (burst {self.burst}) exceeded for this API key.",
                retry_after=wait,
            )
