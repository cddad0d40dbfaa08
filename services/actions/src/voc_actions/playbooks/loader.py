"""Read playbook files: parse the YAML, check the file's keys, put the parts (`sections`) together
into playbooks, and the playbooks into a `Library` (all or nothing), every problem reported with
file, line and field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib.resources import files as resource_files
from pathlib import Path
from typing import Any

import yaml

from voc_actions.playbooks import compose
from voc_actions.playbooks.matcher import Library
from voc_actions.playbooks.model import (
    CATEGORY_OPTIONAL_KINDS,
    DEFAULT_ORDER,
    KINDS,
    NO_LIMIT,
    EscalationStep,
    Playbook,
    PlaybookProblem,
    PlaybookValidationError,
    Sla,
)
from voc_actions.playbooks.sections import (
    Source,
    parse_compensation,
    parse_escalation,
    parse_notify,
    parse_roles,
    parse_sla,
    parse_steps,
    parse_text,
    parse_when,
    unknown_keys,
)
from voc_platform import taxonomy
from voc_platform.taxonomy import PRIORITIES

TOP_KEYS: tuple[str, ...] = (
    "id", "version", "kind", "title", "description", "when", "priority",
    "notify", "escalate", "sla", "steps", "script", "compensation",
)  # fmt: skip
REQUIRED_KEYS: tuple[str, ...] = ("id", "version", "title", "when", "steps", "script")
#: A modifier's keys: no `steps`/`script` required, `order` and `remove_steps` allowed.
MODIFIER_KEYS: tuple[str, ...] = (
    "id", "version", "kind", "order", "title", "description", "when", "priority", "notify",
    "escalate", "sla", "remove_steps", "steps", "script", "replace_script", "compensation",
)  # fmt: skip
MODIFIER_REQUIRED: tuple[str, ...] = ("id", "version", "title", "when")
#: What a modifier changes: it must change at least one of them.
MODIFIER_CHANGES: tuple[str, ...] = (
    "priority", "notify", "escalate", "sla", "remove_steps", "steps", "script", "compensation",
)  # fmt: skip

CASES_FILES: frozenset[str] = frozenset({"cases.yaml", "cases.yml"})

_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,79}\Z")

#: The C parser when libyaml is available (about 5x faster); nodes carry the same marks.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _AliasRefused(ValueError):
    """An anchor or alias in a playbook, at `line`."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _refuse_aliases(text: str) -> None:
    """Raise `_AliasRefused` at the first anchor (`&x`) or alias (`*x`, `<<: *x`). Playbooks never
    need them, and a few aliased lines stand for billions of nodes once anything walks the
    document (this check, the validation, the duplicate-key check, JSON for storage): refused on
    the parser's event stream, which is as long as the text, before a node is built."""
    for event in yaml.parse(text, Loader=_Loader):
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            continue
        kind = f"alias *{anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{anchor}"
        mark = event.start_mark
        raise _AliasRefused(
            mark.line + 1 if mark is not None else 0,
            f"YAML anchors and aliases are not allowed ({kind}); write the value out in full",
        )


def _load_yaml(text: str) -> tuple[yaml.Node, Any]:
    _refuse_aliases(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    if node is None:
        raise ValueError("empty file")
    return node, data


def _yaml_problem(file: str, exc: yaml.YAMLError) -> PlaybookProblem:
    line = None
    msg = str(exc)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or msg
    return PlaybookProblem(file, line, "(yaml)", f"invalid YAML: {msg}")


def _parse_one(file: str, text: str, problems: list[PlaybookProblem]) -> Playbook | None:
    """One file as a playbook; None with its problems added to `problems`."""
    try:
        root, data = _load_yaml(text)
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(file, exc))
        return None
    except _AliasRefused as exc:
        problems.append(PlaybookProblem(file, exc.line, "(yaml)", str(exc)))
        return None
    except ValueError as exc:
        problems.append(PlaybookProblem(file, None, "(file)", str(exc)))
        return None
    except RecursionError:  # "[[[[…" hundreds deep: the parser recurses per level
        problems.append(PlaybookProblem(file, None, "(yaml)", "nested too deeply to be a playbook"))
        return None
    before = len(problems)
    src = Source(file, root, problems)
    try:
        src.check_duplicate_keys(root)
    except RecursionError:
        problems.append(PlaybookProblem(file, None, "(yaml)", "nested too deeply to be a playbook"))
        return None
    if not isinstance(data, dict):
        src.add((), "a playbook is a mapping with " + ", ".join(REQUIRED_KEYS))
        return None
    kind = data.get("kind", "plan")
    if kind not in KINDS:
        src.add(("kind",), f"unknown kind {kind!r}; use {', '.join(KINDS)} (default plan)")
        return None
    if kind == "modifier":
        return _parse_modifier(src, data, text)
    _check_header(src, data)
    pid, version = data.get("id"), data.get("version")
    title = parse_text(src, data["title"], ("title",)) if "title" in data else None
    script = parse_text(src, data["script"], ("script",)) if "script" in data else None
    when = (
        parse_when(
            src,
            data["when"],
            need_category=kind not in CATEGORY_OPTIONAL_KINDS,
            allow_empty=kind in CATEGORY_OPTIONAL_KINDS,
        )
        if "when" in data
        else None
    )
    if when is not None and not when[1]:
        # A pattern or heads-up playbook naming none: every (active) category.
        when = (when[0], taxonomy.current().active)
    priority = data.get("priority", "normal")
    if priority not in PRIORITIES:
        src.add(("priority",), f"unknown priority {priority!r}; use {', '.join(PRIORITIES)}")
        priority = "normal"
    notify = parse_notify(src, data, priority)
    escalation: tuple[EscalationStep, ...] | None = ()
    if "escalate" in data:
        escalation = parse_escalation(src, data["escalate"])
    sla = parse_sla(src, data.get("sla"), priority)
    compensation = None
    if data.get("compensation") is not None:
        compensation = parse_compensation(src, data["compensation"])
    steps = parse_steps(src, data["steps"]) if "steps" in data else ()
    description = data.get("description", "")
    if not isinstance(description, str):
        src.add(("description",), "expected text")
    if len(problems) > before:
        return None
    assert isinstance(pid, str) and isinstance(version, int)
    assert title is not None and script is not None and when is not None
    assert escalation is not None and sla is not None
    return Playbook(
        id=pid, version=version, title=title, conditions=when[0], categories=when[1],
        priority=priority, notify_roles=notify, escalation=escalation, sla=sla,
        steps=steps, script=script, compensation=compensation,
        description=description, source_file=file, raw=data, source_text=text, kind=kind,
    )  # fmt: skip


def _parse_modifier(src: Source, data: dict[Any, Any], text: str) -> Playbook | None:
    """A `kind: modifier` file: conditions on any facts (no category needed) and the changes it
    makes to the plan that matched (`compose`); only what it gives changes."""
    before = len(src.problems)
    _check_header(src, data, MODIFIER_KEYS, MODIFIER_REQUIRED)
    if not any(key in data for key in MODIFIER_CHANGES):
        src.add((), "a modifier changes something: give at least one of " + ", ".join(MODIFIER_CHANGES))
    order = data.get("order", DEFAULT_ORDER)
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= 10_000:
        src.add(("order",), f"order must be a whole number from 0 to 10000, got {order!r}")
    title = parse_text(src, data["title"], ("title",)) if "title" in data else None
    when = parse_when(src, data["when"], need_category=False) if "when" in data else None
    priority = data.get("priority", "")
    if "priority" in data and priority not in PRIORITIES:
        src.add(("priority",), f"unknown priority {priority!r}; use {', '.join(PRIORITIES)}")
    notify: tuple[str, ...] = ()
    if "notify" in data:
        notify = parse_notify(src, data, "normal")
    escalation = parse_escalation(src, data["escalate"]) if "escalate" in data else ()
    sla: Sla | None = Sla(0, 0)  # no change
    if "sla" in data:
        sla = parse_sla(src, data["sla"], "normal")
        if sla is not None and isinstance(data["sla"], dict):  # a part not given changes nothing
            sla = Sla(
                sla.ack_seconds if "ack" in data["sla"] else NO_LIMIT,
                sla.resolve_seconds if "resolve" in data["sla"] else NO_LIMIT,
            )
    compensation = None
    if data.get("compensation") is not None:
        compensation = parse_compensation(src, data["compensation"])
    steps = parse_steps(src, data["steps"], modifier=True) if "steps" in data else ()
    script = parse_text(src, data["script"], ("script",)) if "script" in data else None
    replace_script = data.get("replace_script", False)
    if not isinstance(replace_script, bool):
        src.add(("replace_script",), f"expected true or false, got {replace_script!r}")
    elif replace_script and "script" not in data:
        src.add(("replace_script",), "replace_script needs a script: the text that takes the plan's place")
    remove: tuple[str, ...] | None = ()
    if "remove_steps" in data:
        remove = _remove_roles(src, data["remove_steps"])
    description = data.get("description", "")
    if not isinstance(description, str):
        src.add(("description",), "expected text")
    if len(src.problems) > before:
        return None
    assert title is not None and when is not None and escalation is not None and sla is not None
    assert remove is not None and isinstance(order, int)
    # `script` is the plan's text and a modifier has none: its `script` is the line it adds.
    return Playbook(
        id=data["id"], version=data["version"], title=title, conditions=when[0], categories=when[1],
        priority=priority, notify_roles=notify, escalation=escalation, sla=sla, steps=steps,
        script=title, compensation=compensation, description=description, source_file=src.file,
        raw=data, source_text=text, kind="modifier", order=order, script_line=script,
        replaces_script=replace_script is True, remove_roles=remove,
    )  # fmt: skip


def _remove_roles(src: Source, value: Any) -> tuple[str, ...] | None:
    """`remove_steps: {roles: [...]}`: the roles whose steps the modifier takes out."""
    if not isinstance(value, dict) or "roles" not in value:
        src.add(("remove_steps",), "expected {roles: [staff, ...]}: the plan's steps for these roles go")
        return None
    if not unknown_keys(src, value, ("remove_steps",), ("roles",), "remove_steps takes roles"):
        return None
    return parse_roles(src, value["roles"], ("remove_steps", "roles"))


def _check_header(
    src: Source,
    data: dict[Any, Any],
    allowed: tuple[str, ...] = TOP_KEYS,
    required: tuple[str, ...] = REQUIRED_KEYS,
) -> None:
    """The file's keys (known, the required ones present), its id and its version."""
    unknown_keys(src, data, (), allowed, f"allowed: {', '.join(allowed)}")
    for key in required:
        if key not in data:
            src.add((key,), "missing required field")
    pid = data.get("id")
    if "id" in data and (not isinstance(pid, str) or not _ID.match(pid)):
        src.add(("id",), f"bad id {pid!r}: lowercase letters, digits, '-', '_' or '.'")
    version = data.get("version")
    if "version" in data and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        src.add(("version",), f"version must be a positive integer (1, 2, 3, ...), got {version!r}")


def missing_defaults(
    playbooks: Iterable[Playbook], categories: Iterable[str] | None = None
) -> list[PlaybookProblem]:
    """One problem per category (the published taxonomy's active ones) without a default playbook."""
    covered = {c for p in playbooks if p.is_default and p.kind == "plan" for c in p.categories}
    return [
        PlaybookProblem("(library)", None, "when.category",
                        f"no default playbook for category {cat!r}: add one whose only "
                        "conditions are category (and optionally sentiment)")
        for cat in (taxonomy.current().active if categories is None else categories) if cat not in covered
    ]  # fmt: skip


def parse_playbooks(files: Iterable[tuple[str, str]], *, require_defaults: bool = False) -> Library:
    """Validate a set of playbook files (name, YAML text) into a Library; all or nothing."""
    problems: list[PlaybookProblem] = []
    playbooks: list[Playbook] = []
    seen: dict[str, str] = {}
    order: dict[str, int] = {}
    for file, text in files:
        order.setdefault(file, len(order))
        pb = _parse_one(file, text, problems)
        if pb is None:
            continue
        if pb.id in seen:
            problems.append(PlaybookProblem(
                file, _id_line(text), "id", f"duplicate id {pb.id!r}: already used in {seen[pb.id]}"
            ))  # fmt: skip
            continue
        seen[pb.id] = file
        playbooks.append(pb)
    if not problems:
        problems.extend(compose.step_problems([p for p in playbooks if p.is_modifier], playbooks))
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line or 0))
    if require_defaults and not problems:
        problems.extend(missing_defaults(playbooks))
    if problems:
        raise PlaybookValidationError(problems)
    return Library(playbooks)


def _id_line(text: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("id:"):
            return i
    return None


def read_directory(path: str | Path) -> list[tuple[str, str]]:
    """(file name, text) of every ``*.yaml``/``*.yml`` in ``path`` except cases.yaml."""
    directory = Path(path)
    if not directory.is_dir():
        raise PlaybookValidationError(
            [PlaybookProblem(str(directory), None, "(directory)", "not a directory")]
        )
    out: list[tuple[str, str]] = []
    problems: list[PlaybookProblem] = []
    for p in sorted(directory.iterdir()):
        if p.suffix not in (".yaml", ".yml") or p.name in CASES_FILES or not p.is_file():
            continue
        try:
            out.append((p.name, p.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError) as exc:
            problems.append(PlaybookProblem(p.name, None, "(file)", f"cannot read: {exc}"))
    if problems:
        raise PlaybookValidationError(problems)
    return out


def load_directory(path: str | Path, *, require_defaults: bool = False) -> Library:
    """Parse every playbook file in a directory (cases.yaml excluded)."""
    return parse_playbooks(read_directory(path), require_defaults=require_defaults)


def library_path() -> Path:
    """The directory of the shipped playbook library (package data)."""
    return Path(str(resource_files("voc_actions").joinpath("library")))


@cache
def default_library() -> Library:
    """The shipped library, validated with require_defaults=True (cached)."""
    return load_directory(library_path(), require_defaults=True)
