"""The browser apps' words (#16): the staff app's (notify `static/i18n/`) and the manager
console's (feedback `dashboard/i18n/`, shared by dashboard.js, cases.js and admin.js) each live in one JSON
file a language. Korean and English have exactly the same keys, nested, the same kind of value
under each (a text, a list as long, a table) and the same `{placeholders}` in each text; and every
key the scripts and the page name literally is there. That the files are served, and kept for
offline use, is checked with the apps (tests/platform/test_security_headers.py,
tests/notify/test_app_install.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAFF = ROOT / "services" / "notify" / "src" / "voc_notify" / "static"
CONSOLE = ROOT / "services" / "feedback" / "src" / "voc_feedback" / "dashboard"
LANGUAGES = ("ko", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(app: Path, lang: str) -> dict[str, Any]:
    value = json.loads((app / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def differences(ko: Any, en: Any, where: str = "") -> list[str]:
    """Where the two trees differ in shape: keys, kinds of value, list lengths, placeholders."""
    if isinstance(ko, dict) and isinstance(en, dict):
        found = [f"{where}.{k}: only in ko" for k in ko.keys() - en.keys()]
        found += [f"{where}.{k}: only in en" for k in en.keys() - ko.keys()]
        for key in ko.keys() & en.keys():
            found += differences(ko[key], en[key], f"{where}.{key}")
        return found
    if isinstance(ko, list) and isinstance(en, list):
        if len(ko) != len(en):
            return [f"{where}: {len(ko)} items in ko, {len(en)} in en"]
        pairs = enumerate(zip(ko, en, strict=True))
        return [d for i, (k, e) in pairs for d in differences(k, e, f"{where}[{i}]")]
    if isinstance(ko, str) and isinstance(en, str):
        if set(PLACEHOLDER.findall(ko)) != set(PLACEHOLDER.findall(en)):
            return [f"{where}: placeholders {PLACEHOLDER.findall(ko)} in ko, {PLACEHOLDER.findall(en)} in en"]
        return []  # an empty text may be meant: English has no counter word after a count ("times")
    return [f"{where}: {type(ko).__name__} in ko, {type(en).__name__} in en"]


@pytest.mark.parametrize("app", [STAFF, CONSOLE], ids=["staff-app", "console"])
def test_both_languages_have_the_same_keys(app: Path) -> None:
    ko, en = (catalogue(app, lang) for lang in LANGUAGES)
    assert len(ko) > 100
    assert differences(ko, en) == []


def test_the_differences_are_found() -> None:
    """The comparison itself: a missing nested key, a shorter list, a lost placeholder."""
    ko = {"a": {"x": "1", "y": "2"}, "days": ["월", "화"], "n": "{n}분", "k": {"z": "3"}}
    en = {"a": {"x": "1"}, "days": ["Mon"], "n": "min", "k": "3"}
    assert sorted(differences(ko, en)) == [
        ".a.y: only in ko",
        ".days: 2 items in ko, 1 in en",
        ".k: dict in ko, str in en",
        ".n: placeholders ['n'] in ko, [] in en",
    ]


def test_every_key_the_staff_app_names_is_there() -> None:
    script = (STAFF / "app.js").read_text(encoding="utf-8")
    named = set(re.findall(r"\bt\('(\w+)'", script)) | set(re.findall(r"\blookup\('(\w+)'", script))
    assert len(named) > 100
    for lang in LANGUAGES:
        assert named - catalogue(STAFF, lang).keys() == set(), lang


def test_every_key_the_console_names_is_there() -> None:
    scripts = "".join(
        (CONSOLE / name).read_text(encoding="utf-8") for name in ("dashboard.js", "admin.js", "cases.js")
    )
    page = (CONSOLE / "index.html").read_text(encoding="utf-8")
    in_scripts = re.findall(r'\b(?:t|button|labelsOf)\("(\w+)"', scripts)
    named = set(in_scripts) | set(re.findall(r'data-i18n(?:-placeholder)?="(\w+)"', page))
    assert len(named) > 100
    for lang in LANGUAGES:
        assert named - catalogue(CONSOLE, lang).keys() == set(), lang
