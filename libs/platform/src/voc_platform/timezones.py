"""IANA time zones read from what callers send: one home for "is this a zone?".

`ZoneInfo` takes a name as a path under the tz database, so besides `ZoneInfoNotFoundError`
it raises `IsADirectoryError` for an area ("America"), `OSError` for a name too long for the
file system and `ValueError` for a malformed one; every caller wants "unknown zone" for all of
them, never a 500 or a gRPC UNKNOWN that names the server's files.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Longer than any IANA name (the longest is 32 characters); longer input is not looked up.
MAX_ZONE_NAME = 64


def known_zone(name: str) -> ZoneInfo | None:
    """The zone `name` names, or None when it names none (an area, a file, garbage)."""
    if not name or len(name) > MAX_ZONE_NAME or "\x00" in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
