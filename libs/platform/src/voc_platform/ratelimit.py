"""Token buckets per key, in process: each replica limits on its own, which keeps the hot paths
free of a shared store (feedback's intake and profile's check-ins per API key, notify's login per
client address)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from voc_platform.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`burst` tokens per key, refilled at `rate_per_second`; at most `max_keys` keys kept."""

    def __init__(self, *, rate_per_second: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; a reset only ever lets a key through
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def take(self, key: str, *, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        bucket = self._bucket(key, time.monotonic() if now is None else now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def give_back(self, key: str, *, now: float | None = None) -> None:
        """Return a token taken for something that turned out not to count."""
        bucket = self._bucket(key, time.monotonic() if now is None else now)
        bucket.tokens = min(self.burst, bucket.tokens + 1.0)


class RateLimiter(TokenBuckets):
    """Token buckets per API key, refusing with 429 (the documented limit is per replica)."""

    def admit(self, key: str) -> None:
        """Take one token for `key`, or refuse with `RateLimited` (429 and its Retry-After)."""
        wait = self.take(key)
        if wait > 0:
            raise RateLimited(
                f"Rate limit of {self.rate:g}/s (burst {self.burst}) exceeded for this API key.",
                retry_after=wait,
            )
