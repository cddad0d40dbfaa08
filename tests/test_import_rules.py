"""The layering, checked on the AST of every module (imports inside functions included):
services never import each other, the `voc` tool or the benchmarks; libs/ import no service;
and the tools at the top (tools/cli, bench/) import only the workspace packages they declare."""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Member:
    """One workspace package: its folder, its distribution name, its import name, what it declares."""

    path: Path
    dist: str
    module: str
    declares: frozenset[str]

    @property
    def kind(self) -> str:
        return self.path.relative_to(ROOT).parts[0]  # libs, services, tools or bench


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def workspace() -> dict[str, Member]:
    """The workspace members of the root pyproject, by import name."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Member] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for path in sorted(ROOT.glob(pattern)):
            if not (path / "pyproject.toml").is_file():
                continue
            meta = tomllib.loads((path / "pyproject.toml").read_text())
            (package,) = meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
            module = Path(package).name
            members[module] = Member(
                path=path,
                dist=meta["project"]["name"],
                module=module,
                declares=frozenset(_dist_name(r) for r in meta["project"].get("dependencies", [])),
            )
    return members


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    """The top-level names of every absolute import in `source`, at any depth of the tree."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(member: Member, imported: set[str], members: dict[str, Member]) -> list[str]:
    """What `member` may not import, among the workspace packages in `imported`."""
    found = []
    for name in sorted(imported & members.keys() - {member.module}):
        other = members[name]
        if member.kind == "libs" and other.kind != "libs":
            found.append(f"{member.module} (a library) imports {name} ({other.kind})")
        elif member.kind == "services" and other.kind != "libs":
            found.append(f"{member.module} (a service) imports {name} ({other.kind})")
        elif member.kind == "tools" and other.kind == "bench":
            found.append(f"{member.module} imports {name}: the benchmarks import the tools, not the reverse")
        elif member.kind in ("tools", "bench") and other.dist not in member.declares:
            found.append(f"{member.module} imports {name} without declaring {other.dist} in its pyproject")
    return found


MEMBERS = workspace()
GENERATED = ("libs/contracts/src/voc/",)


def modules_of(member: Member) -> list[Path]:
    return [
        path
        for path in sorted((member.path / "src").rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(GENERATED)
    ]


def test_the_workspace_is_what_the_rules_expect() -> None:
    kinds = {m.module: m.kind for m in MEMBERS.values()}
    assert kinds == {
        "voc": "libs",
        "voc_platform": "libs",
        "voc_feedback": "services",
        "voc_profile": "services",
        "voc_actions": "services",
        "voc_notify": "services",
        "voc_cli": "tools",
        "voc_bench": "bench",
    }


@pytest.mark.parametrize("member", list(MEMBERS.values()), ids=lambda m: m.module)
def test_imports_follow_the_layering(member: Member) -> None:
    problems = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in modules_of(member)
        for problem in violations(member, imported_modules(path.read_text(), str(path)), MEMBERS)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("importer", "source", "expected"),
    [
        ("voc_notify", "from voc_profile import service", "voc_notify (a service) imports voc_profile"),
        ("voc_feedback", "def f():\n    import voc_cli.demo", "voc_feedback (a service) imports voc_cli"),
        ("voc_actions", "from voc_bench.playbook_workload import synthesize", "imports voc_bench"),
        ("voc_platform", "import voc_feedback.models", "voc_platform (a library) imports voc_feedback"),
        ("voc_cli", "from voc_bench import loadgen", "the benchmarks import the tools"),
        ("voc_bench", "from voc_notify import routing", "without declaring voc-notify"),
    ],
)
def test_a_bad_import_is_caught(importer: str, source: str, expected: str) -> None:
    member = MEMBERS[importer]
    if importer == "voc_bench":  # the bench declares every service now: a copy that does not
        member = dataclasses.replace(member, declares=member.declares - {"voc-notify"})
    (problem,) = violations(member, imported_modules(source), MEMBERS)
    assert expected in problem


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        ("voc_notify", "from voc_platform import grpc\nfrom voc.actions.v1 import actions_pb2"),
        ("voc_notify", "from . import models\nfrom .routing import route"),
        ("voc_cli", "def f():\n    from voc_actions.playbooks import load_directory"),
        ("voc_bench", "from voc_cli.supervisor import System\nfrom voc_profile import summary"),
    ],
)
def test_an_allowed_import_passes(importer: str, source: str) -> None:
    assert violations(MEMBERS[importer], imported_modules(source), MEMBERS) == []
