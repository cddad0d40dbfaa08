"""The Library: versioned playbooks indexed by category, and matching."""

from __future__ import annotations

from collections.abc import Iterable

from voc_actions.playbooks.builtin import builtin_default
from voc_actions.playbooks.model import (
    Facts,
    Match,
    Playbook,
    PlaybookProblem,
    PlaybookValidationError,
)

#: How many runners-up a match reports.
MAX_RUNNERS_UP = 5


class Library:
    """An immutable set of playbooks; each id keeps every published version, the last is active."""

    def __init__(self, playbooks: Iterable[Playbook] = (), *, _versions: dict[str, list[Playbook]]
                 | None = None) -> None:  # fmt: skip
        if _versions is None:
            _versions = {}
            for pb in playbooks:
                _versions.setdefault(pb.id, []).append(pb)
            for chain in _versions.values():
                chain.sort(key=lambda p: p.version)
        self._versions = _versions
        self._active: dict[str, Playbook] = {k: v[-1] for k, v in sorted(_versions.items())}
        index: dict[str, list[Playbook]] = {}
        for pb in self._active.values():
            for cat in pb.categories:
                index.setdefault(cat, []).append(pb)
        for bucket in index.values():
            bucket.sort(key=lambda p: p.sort_key)
        self._index = index
        self._defaults: dict[str, Playbook] = {}
        for cat, bucket in index.items():
            for pb in bucket:
                if pb.is_default:
                    self._defaults[cat] = pb
                    break

    @property
    def playbooks(self) -> list[Playbook]:
        """The active version of each id, sorted by id."""
        return list(self._active.values())

    def __len__(self) -> int:
        return len(self._active)

    def get(self, playbook_id: str) -> Playbook | None:
        return self._active.get(playbook_id)

    def versions(self, playbook_id: str) -> list[Playbook]:
        return list(self._versions.get(playbook_id, ()))

    def default_for(self, category: str) -> Playbook | None:
        """The category's default playbook (conditions only category, maybe sentiment)."""
        return self._defaults.get(category)

    def with_published(self, other: Library) -> Library:
        """A new Library where each playbook of ``other`` becomes the active version of its id.

        Old versions are kept. A version not greater than the current one is rejected (all
        problems are collected and nothing is published).
        """
        problems: list[PlaybookProblem] = []
        versions = {k: list(v) for k, v in self._versions.items()}
        for pb in other.playbooks:
            current = self._active.get(pb.id)
            if current is not None and pb.version <= current.version:
                problems.append(PlaybookProblem(
                    pb.source_file, _line_of(pb, "version"), "version",
                    f"{pb.id} version {pb.version} is not greater than the published "
                    f"version {current.version}; bump it to {current.version + 1}",
                ))  # fmt: skip
                continue
            versions.setdefault(pb.id, []).append(pb)
        if problems:
            raise PlaybookValidationError(problems)
        return Library(_versions=versions)

    def match(self, facts: Facts) -> Match:
        """The most specific playbook whose conditions all hold (ties: priority, then id)."""
        fm = facts.as_map()
        best: Playbook | None = None
        runners: list[tuple[str, int]] = []
        bucket = self._index.get(facts.category, ())
        for pb in bucket:
            for cond in pb.conditions:
                if not cond.holds(fm):
                    break
            else:
                if best is None:
                    best = pb
                else:
                    runners.append((pb.id, pb.specificity))
                    if len(runners) >= MAX_RUNNERS_UP:
                        break
        if best is not None:
            return Match(best, [c.explain(fm) for c in best.conditions], runners, facts)
        return self._fallback(facts, fm)

    def _fallback(self, facts: Facts, fm: dict[str, object]) -> Match:
        pb = self._defaults.get(facts.category)
        if pb is not None:
            why = [f"fallback: no playbook matched every condition; "
                   f"default for category {facts.category}"]  # fmt: skip
        else:
            pb = self._defaults.get("other")
            why = [f"fallback: no playbook for category {facts.category!r}; "
                   "default for category other"]  # fmt: skip
            if pb is None:
                pb = builtin_default()
                why = [f"fallback: no playbook for category {facts.category!r} and no default "
                       "for other; built-in default plan"]  # fmt: skip
        why.extend(c.explain(fm) for c in pb.conditions if c.key != "category")
        return Match(pb, why, [], facts, fallback=True)


def _line_of(pb: Playbook, key: str) -> int | None:
    for i, line in enumerate(pb.source_text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return i
    return None
