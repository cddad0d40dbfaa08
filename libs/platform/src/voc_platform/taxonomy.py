"""The shared taxonomy (categories, roles, channels), loaded once from taxonomy.yaml."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml


@cache
def _data() -> dict[str, Any]:
    text = files("voc_platform").joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def categories() -> dict[str, dict[str, str]]:
    """Category id -> {"ko": label, "en": label}, in taxonomy order."""
    return dict(_data()["categories"])


def roles() -> dict[str, dict[str, Any]]:
    """Role id -> {"ko", "en", "level"}; a higher level is further up the escalation ladder."""
    return dict(_data()["roles"])


CATEGORIES: tuple[str, ...] = tuple(categories())
ROLES: tuple[str, ...] = tuple(roles())
SEVERITIES: tuple[str, ...] = tuple(_data()["severities"])
SENTIMENTS: tuple[str, ...] = tuple(_data()["sentiments"])
CHANNELS: tuple[str, ...] = tuple(_data()["channels"])
PRIORITIES: tuple[str, ...] = tuple(_data()["priorities"])


def label(category: str, language: str) -> str:
    entry = categories().get(category) or categories()["other"]
    return entry.get(language) or entry["en"]
