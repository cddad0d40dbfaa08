"""The shared taxonomy: roles, channels and severities (fixed, from taxonomy.yaml) and the
categories, which are data (#20 §3): versioned and published by actions, served live in every
service through the one holder here (`current()`, `serve()`); taxonomy.yaml is version 1."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from voc_platform.errors import FieldError, Invalid


@cache
def _data() -> dict[str, Any]:
    text = files("voc_platform").joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def roles() -> dict[str, dict[str, Any]]:
    """Role id -> {"ko", "en", "level"}; a higher level is further up the escalation ladder."""
    return dict(_data()["roles"])


#: The classifier's label space and the seed's categories, in order (version 1). What is
#: published later may add and retire categories: validate against `current()`, not this.
CATEGORIES: tuple[str, ...] = tuple(_data()["categories"])
ROLES: tuple[str, ...] = tuple(roles())
SEVERITIES: tuple[str, ...] = tuple(_data()["severities"])
SENTIMENTS: tuple[str, ...] = tuple(_data()["sentiments"])


def is_complaint(sentiment: str, reopens_id: str | None) -> bool:
    """What counts as a complaint of its own (profile's repeat issue, complaint count and chronic
    rank; feedback's recurring issues): a negative item, except a follow-up survey's unhappy
    answer, which reopens an earlier case (`reopens_id`): one incident is one complaint. The
    answer still counts by its scores, and it is one of the customer's contacts."""
    return sentiment == "negative" and not reopens_id


CHANNELS: tuple[str, ...] = tuple(_data()["channels"])
PRIORITIES: tuple[str, ...] = tuple(_data()["priorities"])
#: A plan of this priority (praise) is FYI: told to the team, nothing to put right. Its alert is
#: no open case (feedback's `cases.OPEN_CASE`) and its resolve SLA pages nobody (notify).
FYI_PRIORITY = "info"

FALLBACK = "other"  # the category every other one falls back to; it can never be retired
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
_KEYS = frozenset({"ko", "en", "parent", "severity", "department", "retired"})


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    ko: str
    en: str
    parent: str | None = None
    severity: str = "medium"  # the default severity of feedback in it
    department: str | None = None  # the department told about it (notify copies the alert)
    retired: bool = False  # kept for history (labels of old feedback), refused for new use

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "ko": self.ko, "en": self.en, "parent": self.parent,
            "severity": self.severity, "department": self.department, "retired": self.retired,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    ko: str
    en: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ko": self.ko, "en": self.en}


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """One published taxonomy version: every category ever published (retired ones flagged)."""

    version: int
    categories: tuple[Category, ...]
    departments: tuple[Department, ...] = ()

    def get(self, category: str) -> Category | None:
        return next((c for c in self.categories if c.id == category), None)

    @property
    def active(self) -> tuple[str, ...]:
        """The ids accepted for new feedback, corrections and playbooks, in order."""
        return tuple(c.id for c in self.categories if not c.retired)

    @property
    def known(self) -> tuple[str, ...]:
        """Every id, retired ones too (history)."""
        return tuple(c.id for c in self.categories)

    def accepts(self, category: str) -> bool:
        found = self.get(category)
        return found is not None and not found.retired

    def label(self, category: str, language: str) -> str:
        """The category's label (a retired one keeps its label); `other`'s for an unknown id."""
        entry = self.get(category) or self.get(FALLBACK)
        if entry is None:
            return category
        return entry.ko if language == "ko" else entry.en

    def map_category(self, category: str) -> str:
        """The published category for a predicted one: itself when active, else its nearest
        active ancestor, else `other` (a retired or unknown prediction of the classifier)."""
        seen: set[str] = set()
        entry = self.get(category)
        while entry is not None and entry.id not in seen:
            if not entry.retired:
                return entry.id
            seen.add(entry.id)
            entry = self.get(entry.parent) if entry.parent else None
        return FALLBACK

    def owned_by(self, department: str) -> tuple[str, ...]:
        """The categories `department` owns, retired ones too (their alerts are history)."""
        return tuple(c.id for c in self.categories if c.department == department)

    def department_of(self, category: str) -> str | None:
        entry = self.get(category)
        return entry.department if entry is not None and not entry.retired else None

    def with_version(self, version: int) -> Taxonomy:
        return replace(self, version=version)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (as stored and as `parse_taxonomy` reads it back)."""
        return {
            "version": self.version,
            "departments": {d.id: {"ko": d.ko, "en": d.en} for d in self.departments},
            "categories": {
                c.id: {k: v for k, v in c.to_dict().items() if k != "id"} for c in self.categories
            },
        }


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_taxonomy(data: Any, *, version: int = 0, previous: Taxonomy | None = None) -> Taxonomy:
    """A taxonomy document ({departments: {id: {ko, en}}, categories: {id: {ko, en, parent?,
    severity?, department?, retired?}}}) checked whole: `Invalid` (422) naming every bad field.

    A category of `previous` that the document leaves out is kept, retired (never deleted).
    One function (~80 lines): the checks run in the document's order and collect every error,
    so one answer names all bad fields."""
    errors: list[FieldError] = []
    if not isinstance(data, Mapping):
        raise Invalid("The taxonomy must be a mapping with 'categories'.", field="categories")
    departments: list[Department] = []
    raw_departments = data.get("departments") or {}
    if not isinstance(raw_departments, Mapping):
        errors.append(FieldError("departments", "a mapping of department id -> {ko, en}"))
        raw_departments = {}
    for did, entry in raw_departments.items():
        where = f"departments.{did}"
        if not isinstance(did, str) or not _ID.match(did):
            errors.append(FieldError(where, "id: lowercase letters, digits and '_', starting with a letter"))
            continue
        entry = entry if isinstance(entry, Mapping) else {}
        ko, en = _text(entry.get("ko")), _text(entry.get("en"))
        for lang, value in (("ko", ko), ("en", en)):
            if value is None:
                errors.append(FieldError(f"{where}.{lang}", "missing label"))
        departments.append(Department(did, ko or "", en or ""))
    dept_ids = {d.id for d in departments}
    raw = data.get("categories")
    if not isinstance(raw, Mapping) or not raw:
        raise Invalid(
            "The taxonomy needs 'categories': a mapping of category id -> {ko, en, ...}.",
            field="categories",
            errors=errors,
        )
    cats: list[Category] = []
    for cid, entry in raw.items():
        where = f"categories.{cid}"
        if not isinstance(cid, str) or not _ID.match(cid):
            errors.append(FieldError(where, "id: lowercase letters, digits and '_', starting with a letter"))
            continue
        if not isinstance(entry, Mapping):
            errors.append(FieldError(where, "expected {ko, en, parent?, severity?, department?, retired?}"))
            continue
        errors += [FieldError(f"{where}.{k}", "unknown field") for k in entry if k not in _KEYS]
        ko, en = _text(entry.get("ko")), _text(entry.get("en"))
        for lang, value in (("ko", ko), ("en", en)):
            if value is None:
                errors.append(FieldError(f"{where}.{lang}", "missing label"))
        severity = entry.get("severity", "medium")
        if severity not in SEVERITIES:
            errors.append(FieldError(f"{where}.severity", f"one of {', '.join(SEVERITIES)}"))
        department = entry.get("department")
        if department is not None and (not isinstance(department, str) or department not in dept_ids):
            errors.append(FieldError(f"{where}.department", f"unknown department {department!r}"))
            department = None
        parent = entry.get("parent")
        if parent is not None and (not isinstance(parent, str) or parent not in raw or parent == cid):
            errors.append(FieldError(f"{where}.parent", f"unknown parent category {parent!r}"))
            parent = None
        retired = entry.get("retired", False)
        if not isinstance(retired, bool):
            errors.append(FieldError(f"{where}.retired", "true or false"))
            retired = False
        cats.append(Category(cid, ko or "", en or "", parent, str(severity), department, retired))
    by_id = {c.id: c for c in cats}
    for c in cats:  # a cycle of parents (a -> b -> a) has no root to fall back to
        seen, node = {c.id}, by_id.get(c.parent or "")
        while node is not None:
            if node.id in seen:
                errors.append(FieldError(f"categories.{c.id}.parent", "the parents form a cycle"))
                break
            seen.add(node.id)
            node = by_id.get(node.parent or "")
    if FALLBACK not in by_id or by_id[FALLBACK].retired:
        errors.append(FieldError(f"categories.{FALLBACK}", f"'{FALLBACK}' must stay, active"))
    if previous is not None:
        for old in previous.categories:
            if old.id not in by_id:  # left out: retired, its label kept for history
                cats.append(replace(old, retired=True))
    if errors:
        raise Invalid(
            f"The taxonomy has {len(errors)} problem{'s' if len(errors) != 1 else ''}.", errors=errors
        )
    return Taxonomy(version, tuple(cats), tuple(departments))


class _DuplicateId(yaml.YAMLError):
    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


class _StrictLoader(yaml.SafeLoader):
    """Refuses a key given twice in one mapping (a category id listed twice), which plain YAML
    and JSON loading would silently resolve to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _DuplicateId(f"{key} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_document(text: str) -> Any:
    """A taxonomy document from JSON or YAML text (YAML is a superset); `Invalid` if unreadable
    or naming an id twice."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateId as exc:
        raise Invalid(f"Duplicate id {exc.where}.", field=f"categories.{exc.where.split()[0]}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise Invalid(f"The taxonomy is not valid YAML or JSON{where}.", field="document") from exc
    except RecursionError:  # "[[[[…" hundreds deep: the parser recurses per level
        raise Invalid("The taxonomy is nested too deeply to be one.", field="document") from None


@cache
def seed() -> Taxonomy:
    """Version 1: the categories and departments of taxonomy.yaml."""
    data = _data()
    return parse_taxonomy(
        {"departments": data.get("departments", {}), "categories": data["categories"]}, version=1
    )


_served: list[Taxonomy] = []
_candidate: ContextVar[Taxonomy | None] = ContextVar("taxonomy_candidate", default=None)


def current() -> Taxonomy:
    """The published taxonomy this process serves (the seed until one is served), or the
    candidate being validated in this context (`candidate()`)."""
    return _candidate.get() or (_served[-1] if _served else seed())


def serve(taxonomy: Taxonomy, *, force: bool = False) -> bool:
    """Serve `taxonomy` from now on unless a newer version is already served (a late reply
    racing an event); `force`: the owner's database says so. True if it changed."""
    if _served and (_served[-1] == taxonomy or (not force and _served[-1].version >= taxonomy.version)):
        return False
    _served[:] = [taxonomy]
    return True


def reset() -> None:
    """Back to the seed (tests that run several services in one process)."""
    _served.clear()


@contextlib.contextmanager
def candidate(taxonomy: Taxonomy) -> Iterator[None]:
    """Within the block, `current()` is `taxonomy` (checking playbooks against a version that
    is not published yet)."""
    token = _candidate.set(taxonomy)
    try:
        yield
    finally:
        _candidate.reset(token)


def categories() -> dict[str, dict[str, str]]:
    """Category id -> {"ko": label, "en": label} of every published category (retired too)."""
    return {c.id: {"ko": c.ko, "en": c.en} for c in current().categories}


def default_severity(category: str) -> str:
    """The published category's default severity (medium for an unknown one)."""
    entry = current().get(category)
    return entry.severity if entry is not None else "medium"


def label(category: str, language: str) -> str:
    return current().label(category, language)
