"""Per-API-key token buckets, in process (each replica limits on its own; the documented limit is
per replica, which keeps intake free of a shared store on the hot path)."""

from __future__ import annotations

from voc_platform.errors import RateLimited
from voc_platform.ratelimit import TokenBuckets


class RateLimiter(TokenBuckets):
    def admit(self, key: str) -> None:
        """Take one token for `key`, or refuse with `RateLimited` (429 and its Retry-After)."""
        wait = self.take(key)
        if wait > 0:
            raise RateLimited(
                f"Rate limit of {self.rate:g}/s (burst {self.burst}) exceeded for this API key.",
                retry_after=wait,
            )
