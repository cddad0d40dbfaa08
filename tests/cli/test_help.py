"""Every `voc` command and subcommand explains itself with an example in its --help (#22 §2)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from voc_cli.__main__ import build_parser


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def test_every_command_has_an_example_in_its_help() -> None:
    found = dict(commands(build_parser()))
    assert {("up",), ("status",), ("dlq", "replay"), ("dlq", "discard"), ("api-keys", "rotate")} <= set(found)
    missing = [
        " ".join(path) for path, parser in found.items() if "example:\n  voc " not in parser.format_help()
    ]
    assert missing == []


def test_help_runs_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "dlq", "replay", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert (
        "--dry-run" in done.stdout
        and "--yes" in done.stdout
        and "voc dlq replay 17 18 --dry-run" in done.stdout
    )


def complete(shell: str, *words: str) -> list[str]:
    """What the generated completion offers after `voc <words>` (the last word being typed)."""
    script = subprocess.run(
        [sys.executable, "-m", "voc_cli", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    line = " ".join(f"'{w}'" for w in ("voc", *words))
    program = (
        f'{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _voc; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_offers_the_commands_that_exist() -> None:
    assert complete("bash", "dl") == ["dlq"]
    assert complete("bash", "dlq", "re") == ["replay"]
    assert set(complete("bash", "dlq", "replay", "--")) == {"--help", "--all", "--yes", "--dry-run"}
    assert set(complete("bash", "--data-dir", "var", "api-keys", "")) == {
        "--help",
        "create",
        "list",
        "rotate",
        "revoke",
    }
    assert complete("bash", "api-keys", "rotate", "--g") == ["--grace"]
    assert (
        "bashcompinit"
        in subprocess.run(
            [sys.executable, "-m", "voc_cli", "completion", "zsh"], capture_output=True, text=True, timeout=60
        ).stdout
    )
