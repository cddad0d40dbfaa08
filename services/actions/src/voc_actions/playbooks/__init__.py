"""The playbook engine: parse and validate playbooks, match them to facts, render plans.

A pure library: no I/O besides reading playbook files. See docs/PLAYBOOKS.md.
"""

from voc_actions.playbooks.cases import CaseResult, facts_from_case, run_cases
from voc_actions.playbooks.loader import (
    default_library,
    library_path,
    load_directory,
    parse_playbooks,
    read_directory,
)
from voc_actions.playbooks.matcher import Library
from voc_actions.playbooks.model import (
    Facts,
    Match,
    Plan,
    PlanStep,
    Playbook,
    PlaybookProblem,
    PlaybookValidationError,
)
from voc_actions.playbooks.render import render_plan
from voc_actions.playbooks.sections import parse_duration
from voc_actions.playbooks.template import VARIABLES

__all__ = [
    "VARIABLES",
    "CaseResult",
    "Facts",
    "Library",
    "Match",
    "Plan",
    "PlanStep",
    "Playbook",
    "PlaybookProblem",
    "PlaybookValidationError",
    "default_library",
    "facts_from_case",
    "library_path",
    "load_directory",
    "parse_duration",
    "parse_playbooks",
    "read_directory",
    "render_plan",
    "run_cases",
]
