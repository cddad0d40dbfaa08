"""Reading an uploaded CSV file strictly, one record at a time: one home for what profile's
imports and notify's staff import say about a file the csv module cannot read."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator


class CsvProblem(Exception):
    """A file the reader cannot go on with, at `line` (where the record starts)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def csv_records(text: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its cells). Strict: an unclosed quote is a CsvProblem, not
    the rest of the file read as one cell, and so is a cell over the csv module's limit (a
    `csv.Error` that became a 500 where it was not caught)."""
    reader = csv.reader(text, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if message == "unexpected end of data":
                message = "a quoted field starts on this line and is never closed"
            elif message.startswith("field larger than field limit"):
                message = f"a field is longer than {csv.field_size_limit()} characters"
            else:
                message = f"not readable as CSV ({message})"
            raise CsvProblem(start, message) from None
        yield start, values
