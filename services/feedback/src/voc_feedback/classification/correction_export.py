"""Staff corrections as the feedback service exports them (`GET /v1/classifier/corrections`,
`application/x-ndjson`): read, checked and deduplicated for `make eval` and `voc classifier train`.

One JSON object a line: `feedback_id`, `text`, `language`, `sentiment`, `category`,
`corrected_at`, `corrected_by`, `model_version`. An item corrected twice counts once, as its
latest correction says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from voc_platform.taxonomy import CATEGORIES, SENTIMENTS


class CorrectionsInvalid(ValueError):
    """A line of the export that cannot be used, by its line number."""


@dataclass(frozen=True, slots=True)
class Correction:
    feedback_id: str
    text: str
    language: str | None  # the item's language as classified ("ko", "en", "other"), a hint
    sentiment: str  # what staff said it is
    category: str
    corrected_at: datetime
    corrected_by: str
    model_version: str | None  # the version that had classified the item


def _text(raw: dict[str, object], name: str, *, line: int, required: bool = True) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise CorrectionsInvalid(f"line {line}: '{name}' must be a non-empty string")
    return value


def parse_corrections(lines: Iterable[str]) -> list[Correction]:
    """Every correction in `lines` (blank lines skipped); CorrectionsInvalid names the first bad line."""
    out: list[Correction] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorrectionsInvalid(f"line {n}: not JSON ({exc.msg})") from exc
        if not isinstance(raw, dict):
            raise CorrectionsInvalid(f"line {n}: not a JSON object")
        sentiment, category = raw.get("sentiment"), raw.get("category")
        if sentiment not in SENTIMENTS:
            raise CorrectionsInvalid(f"line {n}: sentiment {sentiment!r} is not one of {list(SENTIMENTS)}")
        if category not in CATEGORIES:
            raise CorrectionsInvalid(f"line {n}: category {category!r} is not in the taxonomy")
        stamp = _text(raw, "corrected_at", line=n) or ""
        try:
            corrected_at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError as exc:
            raise CorrectionsInvalid(f"line {n}: corrected_at {stamp!r} is not an ISO 8601 time") from exc
        out.append(
            Correction(
                feedback_id=_text(raw, "feedback_id", line=n) or "",
                text=_text(raw, "text", line=n) or "",
                language=_text(raw, "language", line=n, required=False),
                sentiment=str(sentiment),
                category=str(category),
                corrected_at=corrected_at,
                corrected_by=_text(raw, "corrected_by", line=n, required=False) or "",
                model_version=_text(raw, "model_version", line=n, required=False),
            )
        )
    return latest_per_feedback(out)


def latest_per_feedback(corrections: Iterable[Correction]) -> list[Correction]:
    """One correction per feedback item, its latest, ordered by feedback id (deterministic training)."""
    latest: dict[str, Correction] = {}
    for c in corrections:
        seen = latest.get(c.feedback_id)
        if seen is None or c.corrected_at.timestamp() >= seen.corrected_at.timestamp():
            latest[c.feedback_id] = c
    return [latest[k] for k in sorted(latest)]


def read_corrections(path: Path) -> list[Correction]:
    """The corrections in an ndjson export file (OSError when unreadable, CorrectionsInvalid when wrong)."""
    return parse_corrections(path.read_text(encoding="utf-8").splitlines())
