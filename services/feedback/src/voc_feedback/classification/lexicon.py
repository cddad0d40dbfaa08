"""Loads lexicon.yaml once and compiles it into lookup tables for the scanners.

Two dictionaries come out of the YAML:

* ``chars``: terms matched as substrings of the whitespace-free text (Korean, emoji, emoticons);
* ``words``: terms matched as token sequences of the normalised English text.

Each entry is a :class:`Term` that merges every role the surface form plays (sentiment polarity,
category evidence, intensity modifier, critical / escalation flag).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from voc_feedback.classification.text import compact, english_tokens
from voc_platform.taxonomy import CATEGORIES

SENTIMENT_BASE: dict[str, float] = {
    "strong_positive": 1.5,
    "positive": 1.0,
    "weak_positive": 0.2,
    "neutral": 0.0,
    "blocker": 0.0,
    "weak_negative": -0.5,
    "negative": -1.0,
    "strong_negative": -1.5,
}

# Implicit polarity of critical / high-severity terms that have none of their own.
CRITICAL_POLARITY: dict[str, float] = {"critical": -1.2, "high": -1.0}

_ASCII_WORD = re.compile(r"[a-z0-9]")


@dataclass(frozen=True, slots=True)
class Critical:
    severity: str  # "critical" | "high"
    category: str  # a taxonomy id, or "auto" (food_safety with food context, else facility)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    polarity: float | None  # None: no sentiment role; 0.0: neutral (blocks shorter terms)
    categories: tuple[tuple[str, float], ...]
    intensity: float | None  # multiplier for the next polarity term (modifier), or None
    critical: Critical | None
    escalation: bool
    npi: bool  # Korean adverb that is neutral before a negator ("별로 안 ...")
    blocker: bool = False  # polarity 0 that only hides shorter terms (not a "neutral verdict")


@dataclass(slots=True)
class _Draft:
    polarity: float | None = None
    categories: dict[str, float] | None = None
    intensity: float | None = None
    critical: Critical | None = None
    escalation: bool = False
    npi: bool = False
    blocker: bool = False


@dataclass(frozen=True, slots=True)
class Layer:
    """One scanning layer: sentiment terms, or topic (category / critical / escalation) terms."""

    chars: dict[str, Term]
    char_lengths: dict[str, tuple[int, ...]]  # first char -> candidate term lengths, longest first
    words: dict[str, Term]
    word_max: int  # longest phrase, in tokens
    phrase_len: dict[str, int]  # first token -> longest phrase (in tokens) starting with it


@dataclass(frozen=True, slots=True)
class Lexicon:
    sentiment: Layer
    topic: Layer
    words: dict[str, Term]  # every word term (both layers)
    fuzzy_deletes: dict[str, str]  # single-deletion variant of a word term -> the term
    word_singles: frozenset[str]
    fuzzy_exclude: frozenset[str]
    priority: tuple[str, ...]
    ko_pre_negators: frozenset[str]
    ko_pre_blockers: frozenset[str]
    ko_post_negation: tuple[re.Pattern[str], ...]
    en_negators: frozenset[str]
    en_scope: int
    ko_contrast: re.Pattern[str]
    en_but: frozenset[str]
    en_though: frozenset[str]
    ko_sarcasm: tuple[str, ...]
    en_sarcasm: tuple[re.Pattern[str], ...]
    ko_inquiry: tuple[str, ...]
    en_inquiry_starts: frozenset[str]
    en_inquiry_phrases: tuple[str, ...]


def _split_weight(raw: object) -> tuple[str, float]:
    text = str(raw)
    if "@" in text:
        head, _, tail = text.rpartition("@")
        try:
            return head, float(tail)
        except ValueError:
            return text, 1.0
    return text, 1.0


def _is_word_term(text: str) -> bool:
    return bool(_ASCII_WORD.search(text.lower())) and text.isascii()


def _key(text: str) -> tuple[str, str]:
    """("words" | "chars", lookup key) for a lexicon surface form."""
    if _is_word_term(text):
        return "words", " ".join(english_tokens(text.lower()))
    return "chars", compact(text)


def build(data: dict[str, Any]) -> Lexicon:
    """The lexicon from lexicon.yaml's data (one function, ~130 lines: the YAML's sections in
    their order, each term drafted once whatever sections name it)."""
    drafts: dict[tuple[str, str], _Draft] = {}

    def draft(text: str) -> _Draft | None:
        key = _key(text)
        if not key[1]:
            return None
        return drafts.setdefault(key, _Draft())

    for category, langs in data["categories"].items():
        if category not in CATEGORIES:
            raise ValueError(f"lexicon category {category!r} is not in the taxonomy")
        for terms in langs.values():
            for raw in terms:
                text, weight = _split_weight(raw)
                d = draft(text)
                if d is None:
                    continue
                if d.categories is None:
                    d.categories = {}
                d.categories[category] = max(d.categories.get(category, 0.0), weight)

    for lists in data["sentiment"].values():
        for level, terms in lists.items():
            base = SENTIMENT_BASE[level]
            for raw in terms:
                text, weight = _split_weight(raw)
                d = draft(text)
                if d is None:
                    continue
                value = base * weight
                if d.polarity is None or abs(value) > abs(d.polarity):
                    d.polarity = value
                if level == "blocker":
                    d.blocker = True

    for lang_mods in data["modifiers"].values():
        for group in ("intensifiers", "diminishers"):
            for text, factor in lang_mods[group].items():
                d = draft(str(text))
                if d is not None:
                    d.intensity = float(factor)

    for group in data["critical"]:
        crit = Critical(severity=str(group["severity"]), category=str(group["category"]))
        for lang in ("ko", "en"):
            for raw in group.get(lang, []):
                d = draft(str(raw))
                if d is None:
                    continue
                d.critical = crit
                if d.polarity is None:
                    d.polarity = CRITICAL_POLARITY[crit.severity]

    for terms in data["escalation"].values():
        for raw in terms:
            d = draft(str(raw))
            if d is not None:
                d.escalation = True

    for raw in data["negation"]["ko"].get("npi", []):
        d = draft(str(raw))
        if d is not None:
            d.npi = True

    chars: dict[str, Term] = {}
    words: dict[str, Term] = {}
    for (kind, key), d in drafts.items():
        term = Term(
            text=key,
            polarity=d.polarity,
            categories=tuple(sorted((d.categories or {}).items())),
            intensity=d.intensity,
            critical=d.critical,
            escalation=d.escalation,
            npi=d.npi,
            blocker=d.blocker,
        )
        (chars if kind == "chars" else words)[key] = term

    def is_sentiment(t: Term) -> bool:
        return t.polarity is not None or t.intensity is not None

    def is_topic(t: Term) -> bool:
        return bool(t.categories) or t.critical is not None or t.escalation

    sentiment = _layer(
        {k: t for k, t in chars.items() if is_sentiment(t)},
        {k: t for k, t in words.items() if is_sentiment(t)},
    )
    topic = _layer(
        {k: t for k, t in chars.items() if is_topic(t)},
        {k: t for k, t in words.items() if is_topic(t)},
    )

    singles = frozenset(k for k in words if " " not in k and k.isalpha())
    deletes: dict[str, str] = {}
    for word in sorted(singles):
        if len(word) < 5:
            continue
        for i in range(len(word)):
            variant = word[:i] + word[i + 1 :]
            if variant not in words:
                deletes.setdefault(variant, word)

    neg = data["negation"]
    contrast = data["contrast"]
    markers = sorted((compact(str(m)) for m in contrast["ko"]), key=len, reverse=True)
    inquiry = data["inquiry"]
    return Lexicon(
        sentiment=sentiment,
        topic=topic,
        words=words,
        fuzzy_deletes=deletes,
        word_singles=singles,
        fuzzy_exclude=frozenset(str(w) for w in data.get("fuzzy_exclude", [])),
        priority=tuple(data["priority"]),
        ko_pre_negators=frozenset(str(x) for x in neg["ko"]["pre"]),
        ko_pre_blockers=frozenset(str(x) for x in neg["ko"]["pre_blockers"]),
        ko_post_negation=tuple(re.compile(p) for p in neg["ko"]["post"]),
        en_negators=frozenset(str(x) for x in neg["en"]["tokens"]),
        en_scope=int(neg["en"]["scope"]),
        ko_contrast=re.compile("|".join(re.escape(m) for m in markers)),
        en_but=frozenset(str(x) for x in contrast["en_but"]),
        en_though=frozenset(str(x) for x in contrast["en_though"]),
        ko_sarcasm=tuple(compact(str(x)) for x in data["sarcasm"]["ko_markers"]),
        en_sarcasm=tuple(re.compile(p) for p in data["sarcasm"]["en_patterns"]),
        ko_inquiry=tuple(compact(str(x)) for x in inquiry["ko"]),
        en_inquiry_starts=frozenset(str(x) for x in inquiry["en_starts"]),
        en_inquiry_phrases=tuple(str(x) for x in inquiry["en_phrases"]),
    )


def _layer(chars: dict[str, Term], words: dict[str, Term]) -> Layer:
    lengths: dict[str, set[int]] = {}
    for key in chars:
        lengths.setdefault(key[0], set()).add(len(key))
    phrase_len: dict[str, int] = {}
    for key in words:
        toks = key.split(" ")
        phrase_len[toks[0]] = max(phrase_len.get(toks[0], 1), len(toks))
    return Layer(
        chars=chars,
        char_lengths={ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()},
        words=words,
        word_max=max((len(k.split(" ")) for k in words), default=1),
        phrase_len=phrase_len,
    )


_LOCK = threading.Lock()
_CACHE: list[Lexicon] = []


def lexicon() -> Lexicon:
    """The compiled lexicon, loaded from the packaged YAML on first use (thread-safe)."""
    if _CACHE:
        return _CACHE[0]
    with _LOCK:
        if not _CACHE:
            text = files("voc_feedback.classification").joinpath("lexicon.yaml").read_text("utf-8")
            _CACHE.append(build(yaml.safe_load(text)))
    return _CACHE[0]
