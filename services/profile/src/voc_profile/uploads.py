"""Reading an uploaded CSV or JSON Lines file for the bulk import: nothing is half-imported.

The upload is spooled (memory up to 1 MiB, then a temporary file) while its size is checked and
its bytes are checked as UTF-8, so an oversized file or one that is not text is refused before a
single row is written. A structural pass over the spooled file (the C csv reader, or one bounded
read per JSON line) then finds what makes the whole file unreadable — an unclosed quote, a field
over the csv limit, a JSON line over `MAX_LINE_CHARS` — and refuses it, naming the line, still
before any write. Only then are the rows read one by one (`rows_of`), in batches: memory stays
flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, Literal, cast

import orjson

from voc_platform.csvfile import CsvProblem, csv_records

Format = Literal["csv", "jsonl"]
# The longest JSON line read (a customer is well under 2,000 characters); a CSV field is bounded
# by the csv module's limit (`csv.field_size_limit()`, 131,072 characters).
MAX_LINE_CHARS = 128 * 1024
# A row as read: its fields by column (a CSV row, a JSON object), or why it cannot be read at all.
Row = tuple[int, dict[str, Any] | str]


class ImportRejected(ValueError):
    """The file as a whole is unusable (too large, wrong header, not text, not parseable):
    nothing written. `line` is the line it went wrong on, when there is one."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.line = line


def _unreadable(line: int, message: str) -> ImportRejected:
    return ImportRejected(
        400,
        f"Line {line}: {message}; nothing was imported.",
        [{"line": line, "field": None, "message": message}],
        line=line,
    )


async def spool(chunks: AsyncIterator[bytes], *, max_bytes: int) -> IO[bytes]:
    """The upload in a spooled temporary file; ImportRejected past `max_bytes` (413) or at the
    first byte that is not UTF-8 (400, naming its line), before anything is imported."""
    spooled = cast(IO[bytes], tempfile.SpooledTemporaryFile(max_size=1024 * 1024))  # noqa: SIM115
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = newlines = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise ImportRejected(413, f"The file exceeds {max_bytes} bytes; nothing was imported.")
            _check_utf8(decoder, chunk, newlines=newlines, offset=size - len(chunk))
            newlines += chunk.count(b"\n")
            spooled.write(chunk)
        _check_utf8(decoder, b"", newlines=newlines, offset=size, final=True)
        if size == 0:
            raise ImportRejected(422, "The file is empty.")
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled


def _check_utf8(
    decoder: codecs.IncrementalDecoder, chunk: bytes, *, newlines: int, offset: int, final: bool = False
) -> None:
    """Feed `chunk` (which starts at byte `offset` after `newlines` line ends) to the decoder."""
    pending = decoder.getstate()[0]  # an incomplete character from the last chunk
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        data = pending + chunk
        line = newlines + data.count(b"\n", 0, exc.start) + 1
        at = offset - len(pending) + exc.start
        raise _unreadable(line, f"not UTF-8 text (byte {at} of the file: {exc.reason})") from None


def _not_text(exc: UnicodeDecodeError) -> ImportRejected:
    return ImportRejected(400, f"The file is not UTF-8 text ({exc.reason}); nothing was imported.")


def check_structure(spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]) -> None:
    """Read the whole spooled file as `rows_of` will, without validating or writing a row:
    ImportRejected for anything that makes the file as a whole unreadable (header, encoding, an
    unclosed quote, an oversized field or line). Leaves the file at its start."""
    text = io.TextIOWrapper(spooled, encoding="utf-8-sig", errors="strict", newline="")
    try:
        if fmt == "csv":
            records = _csv_records(text)
            _csv_header(next(records, None), columns)
            for _ in records:
                pass
        else:
            for _ in _json_lines(text):
                pass
    except UnicodeDecodeError as exc:  # spool() checks the bytes; this is for other callers
        raise _not_text(exc) from exc
    finally:
        text.detach()
        spooled.seek(0)


def _csv_records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its fields); ImportRejected where the csv reader cannot go on
    (`voc_platform.csvfile`: strict, an unclosed quote or an oversized field names its line)."""
    try:
        yield from csv_records(text)
    except CsvProblem as problem:
        raise _unreadable(problem.line, problem.message) from None


def _csv_header(first: tuple[int, list[str]] | None, columns: frozenset[str]) -> list[str]:
    if first is None:
        raise ImportRejected(422, "The file is empty.")
    header = [h.strip() for h in first[1]]
    unknown = [h for h in header if h not in columns]
    if unknown or not header or len(set(header)) != len(header):
        raise ImportRejected(
            422,
            "The CSV header has unknown or repeated columns; nothing was imported.",
            [{"field": h, "message": f"unknown column; expected some of {sorted(columns)}"} for h in unknown]
            or [{"field": "header", "message": "repeated column"}],
        )
    return header


def _json_lines(text: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines, each read with a bound: a line longer than
    MAX_LINE_CHARS is ImportRejected without being held in memory."""
    number = 0
    # Two more than the limit: a line of exactly the limit and its CR LF is read whole.
    while line := text.readline(MAX_LINE_CHARS + 2):
        number += 1
        if len(line) > MAX_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise _unreadable(number, f"the line is longer than {MAX_LINE_CHARS} characters")
        if line.strip():
            yield number, line


def rows_of(spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]) -> Iterator[Row]:
    """(line number, row) pairs; a row that cannot be read at all is its error message. A CSV
    row's line is the line it starts on (a quoted field may span lines)."""
    text = io.TextIOWrapper(spooled, encoding="utf-8-sig", errors="strict", newline="")
    try:
        if fmt == "csv":
            records = _csv_records(text)
            header = _csv_header(next(records, None), columns)
            for line, values in records:
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    yield line, f"expected {len(header)} fields, found {len(values)}"
                    continue
                yield line, {h: v.strip() for h, v in zip(header, values, strict=True) if v.strip()}
        else:
            for number, json_line in _json_lines(text):
                try:
                    value = orjson.loads(json_line)
                except orjson.JSONDecodeError as exc:
                    yield number, f"not valid JSON: {exc}"
                    continue
                if not isinstance(value, dict):
                    yield number, "each line must be a JSON object"
                    continue
                yield number, value
    except UnicodeDecodeError as exc:
        raise _not_text(exc) from exc
    finally:
        text.detach()


async def checked_rows(spooled: IO[bytes], *, fmt: Format, columns: frozenset[str]) -> Iterator[Row]:
    """`rows_of`, once the structural pass found the whole file readable. The pass runs in a
    thread: a large file is read at C speed without holding up the event loop."""
    await asyncio.to_thread(check_structure, spooled, fmt=fmt, columns=columns)
    return rows_of(spooled, fmt=fmt, columns=columns)


def batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    """The rows, `size` at a time."""
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
