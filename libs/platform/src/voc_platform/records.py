"""A record as the JSON object an API answers: its named fields, listed once beside the answer.

Used where an answer is a row's (or a value's) own fields under their own names, so the list
of what is answered is one tuple that can be read, reused and extended (`("id", *FIELDS)`)
rather than a dict literal repeating each name twice. Not for hot paths: a literal is faster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def fields_of(record: object, names: Iterable[str]) -> dict[str, Any]:
    """`{name: record.name}` for each of `names`, in that order."""
    return {name: getattr(record, name) for name in names}
