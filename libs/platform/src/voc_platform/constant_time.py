"""The one way a secret is compared: in constant time, so an answer's timing never tells a
caller how much of a guessed token, key or signature was right."""

from __future__ import annotations

import hmac


def same_secret(given: str | bytes, expected: str | bytes) -> bool:
    """Whether `given` equals `expected`, taking the same time wherever they differ (text is
    compared as UTF-8; an empty `expected` never matches, so an unset secret opens nothing)."""
    if not expected:
        return False
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)
