"""A record as the JSON object an API answers: its named fields, listed once beside the answer.

Used where an answer is a row's (or a value's) own fields under their own names, so the list
of what is answered is one tuple that can be read, reused and extended (`("id", *FIELDS)`)
rather than a dict literal repeating each name twice. Not for hot paths: a literal is faster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


def fields_of(record: object, names: Iterable[str]) -> dict[str, Any]:
    """`{name: record.name}` for each of `names`, in that order."""
    return {name: getattr(record, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        elif issubclass(cls, BaseModel):
            names = tuple(cls.model_fields)
        else:
            raise TypeError(f"{cls.__name__} is neither a dataclass nor a pydantic model")
        _FIELD_NAMES[cls] = names
    return names


def copy_fields(cls: type[T], source: object, /, *, source_prefix: str = "", **given: Any) -> T:
    """A `cls` (a dataclass or pydantic model) whose fields are `source`'s attributes of the
    same names (after `source_prefix`: settings' `nats_user` for a field `user`), except those
    `given`, which win.

    For the many "a row as its answer / event / value" mappings where every name is the same on
    both sides: the field list is the class's own, so it is written once. Not for hot paths (about
    a microsecond per field); a field `source` lacks must be `given`."""
    values = {name: getattr(source, source_prefix + name) for name in _field_names(cls) if name not in given}
    return cls(**values, **given)
