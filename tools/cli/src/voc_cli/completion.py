"""`voc completion bash|zsh`: a shell completion script made from the command's own parser, so
it completes exactly the commands, subcommands and options that exist."""

from __future__ import annotations

import argparse

SCRIPT = """# voc shell completion (bash; zsh through bashcompinit).
#   bash: source <(voc completion bash)    or put it in ~/.local/share/bash-completion/completions/voc
#   zsh:  source <(voc completion zsh)
_voc() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" word words i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    [[ "$word" == -* ]] && continue
    case "$path/$word" in
{paths}) path="$path/$word" ;;
    esac
  done
  case "$path" in
{words}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _voc voc
"""


def tree(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """Each command path ("" for `voc`, "/dlq/replay", ...) and the words that may follow it."""
    words: list[str] = []
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                found.update(tree(child, f"{path}/{name}"))
        elif action.help != argparse.SUPPRESS:
            words += [s for s in action.option_strings if s.startswith("--")]
            if action.choices is not None and not action.option_strings:
                words += [str(c) for c in action.choices]
    found[path] = words
    return found


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    paths = tree(parser)
    known = "|".join(f'"{p}"' for p in sorted(paths) if p)
    cases = "\n".join(f'    "{p}") words="{" ".join(w)}" ;;' for p, w in sorted(paths.items()))
    text = SCRIPT.format(paths=f"      {known}", words=cases)
    if shell == "zsh":
        text = "autoload -U +X bashcompinit && bashcompinit\n" + text
    return text
