"""Notify's own refusals: the platform's domain errors with the extra members its answers carry
(`acknowledged_by`, the CSV's per-row errors), answered by the platform's handler like any other;
a gRPC caller sees the status of the base class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voc_platform.errors import BadRequest, Conflict, Invalid


class AlreadyAcknowledged(Conflict):
    """409: the alert is no longer open; says who acknowledged it."""

    def __init__(self, detail: str, *, acknowledged_by: str | None) -> None:
        super().__init__(detail)
        self.acknowledged_by = acknowledged_by

    def problem_members(self) -> dict[str, Any]:
        return {"acknowledged_by": self.acknowledged_by}


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of an imported CSV, by line (the header being 1) and column."""

    row: int
    field: str | None
    message: str


class CsvRejected(Invalid):
    """422: the CSV has problems, listed per row; nothing was imported."""

    def __init__(self, detail: str, *, rows: Sequence[RowError]) -> None:
        super().__init__(detail)
        self.rows = tuple(rows)

    def problem_errors(self) -> list[dict[str, Any]]:
        return [{"row": e.row, "field": e.field, "message": e.message} for e in self.rows]


class CsvUnreadable(BadRequest):
    """400: the CSV cannot be read on from a line (an unclosed quote, a cell over the csv limit);
    nothing was imported. Worded as profile's importer words the same refusal."""

    def __init__(self, *, line: int, message: str) -> None:
        super().__init__(f"Line {line}: {message}; nothing was imported.")
        self.rows = (RowError(line, None, message),)

    def problem_errors(self) -> list[dict[str, Any]]:
        return [{"row": e.row, "field": e.field, "message": e.message} for e in self.rows]
