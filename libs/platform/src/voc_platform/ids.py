"""Time-ordered identifiers (UUIDv7 layout): sortable, so cursors can page by id.

Within a process ids are strictly increasing, even within one millisecond or when the wall
clock steps back (RFC 9562 §6.2, method 1: the 12 `rand_a` bits are a counter seeded at random
each new millisecond). "Oldest customer survives a merge" relies on this order.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_last_seq = 0


def uuid7() -> str:
    global _last_ms, _last_seq
    rand = int.from_bytes(os.urandom(10), "big")
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms > _last_ms:
            # A fresh millisecond: the counter starts in its lower half, leaving room to count.
            seq = (rand >> 62) & 0x7FF
        else:
            ms, seq = _last_ms, _last_seq + 1
            if seq > 0xFFF:
                ms, seq = ms + 1, 0
        _last_ms, _last_seq = ms, seq
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= seq << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
