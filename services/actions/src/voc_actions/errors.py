"""The actions service's own refusal: a publication whose playbooks do not validate.

It is the platform's `Invalid` (422, INVALID_ARGUMENT) carrying every problem found; the platform's
handler answers it as problem+json whose `errors` name the file and line of each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voc_actions.playbooks import PlaybookProblem
from voc_platform.errors import FieldError, Invalid


class PlaybooksRejected(Invalid):
    """422: the published files have problems; nothing was recorded."""

    def __init__(self, problems: Sequence[PlaybookProblem]) -> None:
        n = len(problems)
        super().__init__(
            f"{n} playbook problem{'s' if n != 1 else ''}",
            errors=[FieldError(p.field, p.message) for p in problems],
        )
        self.problems = tuple(problems)

    def problem_errors(self) -> list[dict[str, Any]]:
        """The `errors` of the answer: file, line, field and message of each problem."""
        return [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message} for p in self.problems
        ]
