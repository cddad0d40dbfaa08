"""The Library: versioned playbooks indexed by category, and matching."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from voc_actions.playbooks import compose
from voc_actions.playbooks.builtin import builtin_default
from voc_actions.playbooks.model import (
    PLAYBOOK_KINDS,
    Condition,
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
                 | None = None, _kind: str = "plan") -> None:  # fmt: skip
        if _versions is None:
            _versions = {}
            for pb in playbooks:
                _versions.setdefault(pb.id, []).append(pb)
            for chain in _versions.values():
                chain.sort(key=lambda p: p.version)
        self._versions = _versions
        self._active: dict[str, Playbook] = {k: v[-1] for k, v in sorted(_versions.items())}
        self._kind = _kind
        #: The modifiers in the order they apply: by order, then id. They apply to feedback
        #: plans only (a sub-library of another kind has none).
        self.modifiers: tuple[Playbook, ...] = tuple(
            sorted((p for p in self._active.values() if p.is_modifier), key=lambda p: (p.order, p.id))
        )
        #: The playbooks of the other kinds (pattern, heads_up), each matched on its own (#18).
        self._kinds: dict[str, Library] = {}
        if _kind == "plan":
            for other in PLAYBOOK_KINDS[1:]:
                chains = {k: v for k, v in _versions.items() if v[-1].kind == other}
                self._kinds[other] = Library(_versions=chains, _kind=other)
        index: dict[str, list[Playbook]] = {}
        for pb in self._active.values():
            if pb.kind != _kind:
                continue
            for cat in pb.categories:
                index.setdefault(cat, []).append(pb)
        for bucket in index.values():
            bucket.sort(key=lambda p: p.sort_key)
        self._index = index
        self._buckets = {cat: _Bucket(bucket) for cat, bucket in index.items()}
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
        merged = Library(_versions=versions)
        # A modifier published now may empty a plan published before, or the other way round.
        problems = compose.step_problems(merged.modifiers, merged.playbooks)
        if problems:
            raise PlaybookValidationError(problems)
        return merged

    def match(self, facts: Facts, kind: str = "plan") -> Match:
        """The most specific playbook of `kind` whose conditions all hold (ties: priority, then
        id); a feedback item's plan unless `kind` says pattern or heads_up. A plan gets the
        modifiers whose conditions hold applied on top (`compose`)."""
        if kind != self._kind:
            sub = self._kinds.get(kind)
            if sub is None:
                raise ValueError(f"unknown playbook kind {kind!r}; use {', '.join(PLAYBOOK_KINDS)}")
            return sub.match(facts, kind)
        fm = facts.as_map()
        found = self._match(facts, fm)
        if self.modifiers:
            applied = compose.applicable(self.modifiers, fm)
            if applied:
                found.playbook = compose.composed(found.playbook, applied)
                found.matched_because.extend(compose.because(m, fm) for m in applied)
                found.modifiers = tuple(m.id for m in applied)
                found.applied = applied
        return found

    def _match(self, facts: Facts, fm: dict[str, Any]) -> Match:
        bucket = self._buckets.get(facts.category)
        if bucket is not None:
            found = bucket.candidates(fm)
            if found:
                pbs = bucket.playbooks
                low = found & -found
                index = low.bit_length() - 1
                best = pbs[index]
                found ^= low
                ranked = bucket.ranked
                runners: list[tuple[str, int]] = []
                while found and len(runners) < MAX_RUNNERS_UP:
                    low = found & -found
                    runners.append(ranked[low.bit_length() - 1])
                    found ^= low
                return Match(best, bucket.because(index, fm), runners, facts)
        return self._fallback(facts, fm)

    def _fallback(self, facts: Facts, fm: dict[str, Any]) -> Match:
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


class _Bucket:
    """One category's playbooks in match order, with their conditions compiled to bitsets.

    Bit ``i`` stands for ``playbooks[i]``. For each condition key the bucket keeps, per fact
    value, the set of playbooks that value satisfies (a playbook without a condition on the key
    is satisfied by anything), so a match is one dictionary lookup and one ``&`` per key instead
    of evaluating every condition of every playbook. Semantics are exactly ``Condition.holds``:
    a missing fact fails the condition, sets compare by membership, flags by truthiness; time
    windows and weekdays are evaluated with ``holds`` itself, once per value seen.
    """

    __slots__ = ("everyone", "explained", "flags", "others", "playbooks", "ranked", "sets")

    def __init__(self, playbooks: list[Playbook]) -> None:
        self.playbooks = playbooks
        self.ranked = [(pb.id, pb.specificity) for pb in playbooks]
        self.everyone = (1 << len(playbooks)) - 1
        #: (playbook index, the facts its conditions look at) -> why it matched
        self.explained: dict[tuple[Any, ...], tuple[str, ...]] = {}
        by_key: dict[str, list[tuple[int, Condition]]] = {}
        for i, pb in enumerate(playbooks):
            for cond in pb.conditions:
                by_key.setdefault(cond.key, []).append((1 << i, cond))
        #: (key, playbooks without a condition on key, fact value -> playbooks it satisfies)
        self.sets: list[tuple[str, int, dict[Any, int]]] = []
        #: (key, playbooks without a condition on key, satisfied by a truthy / a falsy value)
        self.flags: list[tuple[str, int, int, int]] = []
        #: (key, playbooks without a condition on key, the conditions to evaluate, fact value
        #: -> playbooks it satisfies, filled as values are seen)
        self.others: list[tuple[str, int, tuple[tuple[int, Condition], ...], dict[Any, int]]] = []
        for key, entries in by_key.items():
            free = self.everyone
            for bit, _ in entries:
                free &= ~bit
            kinds = {cond.kind for _, cond in entries}
            if kinds == {"set"}:
                table: dict[Any, int] = {}
                for bit, cond in entries:
                    for value in cond.allowed:
                        table[value] = table.get(value, free) | bit
                self.sets.append((key, free, table))
            elif kinds == {"bool"}:
                truthy = falsy = free
                for bit, cond in entries:
                    if cond.flag:
                        truthy |= bit
                    else:
                        falsy |= bit
                self.flags.append((key, free, truthy, falsy))
            else:
                self.others.append((key, free, tuple(entries), {}))

    def candidates(self, fm: dict[str, Any]) -> int:
        """The playbooks whose every condition holds for the facts ``fm``, as a bitset."""
        found = self.everyone
        for key, free, table in self.sets:
            value = fm.get(key)
            found &= free if value is None else table.get(value, free)
        for key, free, truthy, falsy in self.flags:
            value = fm.get(key)
            found &= free if value is None else (truthy if value else falsy)
        for key, free, entries, seen in self.others:
            value = fm.get(key)
            holding = seen.get(value)
            if holding is None:
                holding = free
                for bit, cond in entries:
                    if cond.holds({key: value}):
                        holding |= bit
                if len(seen) >= _SEEN_MAX:
                    seen.clear()
                seen[value] = holding
            found &= holding
        return found

    def because(self, index: int, fm: dict[str, Any]) -> list[str]:
        """Why ``playbooks[index]`` matched ``fm``: each condition explained. An explanation
        depends only on the facts the playbook's conditions look at, so it is kept per those
        values (a bounded cache: the formatting costs more than the match itself)."""
        conditions = self.playbooks[index].conditions
        key = (index, *[fm.get(c.key) for c in conditions])
        why = self.explained.get(key)
        if why is None:
            if len(self.explained) >= _EXPLAINED_MAX:
                self.explained.clear()
            why = self.explained[key] = tuple(c.explain(fm) for c in conditions)
        return list(why)


#: Explanations kept per category bucket.
_EXPLAINED_MAX = 4096
#: Time-of-day and weekday values kept per condition key and bucket (a day has 1,440 minutes).
_SEEN_MAX = 2048


def _line_of(pb: Playbook, key: str) -> int | None:
    for i, line in enumerate(pb.source_text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return i
    return None
