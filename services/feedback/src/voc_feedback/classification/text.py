"""Text normalisation, tokenisation and language detection (pure functions, no data files)."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
# Repeated Korean jamo / laughter / punctuation: "ㅠㅠㅠㅠ" -> "ㅠㅠ", "!!!!" -> "!!".
_REPEAT_SYMBOL = re.compile(r"([ㄱ-ㅎㅏ-ㅣ!?~.;^ㅡ])\1{2,}")
# Elongated Latin letters: "soooo" -> "soo" (the scanner also tries the single-letter form).
_REPEAT_LATIN = re.compile(r"([a-z])\1{2,}")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"'})

_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:can't|cant|cannot)\b"), "can not"),
    (re.compile(r"\b(?:won't|wont)\b"), "will not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"\b([a-z]+)n't\b"), r"\1 not"),
    (
        re.compile(r"\b(did|does|do|was|were|is|are|has|have|had|could|would|should|must|need)nt\b"),
        r"\1 not",
    ),
)
_SLANG: dict[str, str] = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "ppl": "people",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "tho": "though",
    "bc": "because",
    "luv": "love",
    "gr8": "great",
}
_TOKEN = re.compile(r"\$?[a-z0-9]+(?:['/\-][a-z0-9]+)*|[.!?,;:…]+")

_EN_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "it",
        "this",
        "that",
        "i",
        "we",
        "you",
        "my",
        "our",
        "your",
        "they",
        "he",
        "she",
        "not",
        "no",
        "very",
        "so",
        "too",
        "have",
        "has",
        "had",
        "do",
        "did",
        "does",
    ]
)
_FOREIGN_STOP = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "que",
        "y",
        "muy",
        "es",
        "est",
        "le",
        "les",
        "et",
        "très",
        "der",
        "die",
        "das",
        "und",
        "nicht",
        "ist",
        "sehr",
        "não",
        "um",
        "uma",
        "il",
        "di",
        "che",
        "molto",
        "yang",
        "dan",
        "tidak",
        "une",
        "des",
        "du",
        "pas",
        "mais",
        "por",
        "para",
        "com",
    ]
)


def normalize(text: str) -> str:
    """NFC, lowercase, unified apostrophes, collapsed repeats, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES).lower()
    text = _REPEAT_SYMBOL.sub(r"\1\1", text)
    text = _REPEAT_LATIN.sub(r"\1\1", text)
    return _WS.sub(" ", text).strip()


def compact(text: str) -> str:
    """The text without any whitespace (Korean spacing variants become identical)."""
    return _WS.sub("", text)


def expand_contractions(text: str) -> str:
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def english_tokens(text: str) -> list[str]:
    """Lowercase word and punctuation tokens of already-normalised text."""
    tokens = _TOKEN.findall(expand_contractions(text))
    return [_SLANG.get(t, t) for t in tokens]


def is_punct(token: str) -> bool:
    return not token[0].isalnum() and token[0] != "$"


_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z]")


def _script_counts(text: str) -> tuple[int, int, int]:
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    other = max(0, sum(map(str.isalpha, text)) - hangul - latin)
    return hangul, latin, other


def detect_language(text: str) -> str:
    """ "ko", "en" or "other", from script ratios (and a stop-word check for Latin text)."""
    hangul, latin, other = _script_counts(text)
    letters = hangul + latin + other
    if letters == 0:
        return "other"
    if hangul / letters >= 0.3:
        return "ko"
    if other > latin:
        return "other"
    words = re.findall(r"[^\W\d_]+", text.lower())
    foreign = sum(w in _FOREIGN_STOP for w in words)
    english = sum(w in _EN_STOP for w in words)
    if foreign >= 2 and foreign > english:
        return "other"
    return "en"


def language_hint(hint: str | None) -> str | None:
    """Map a client hint ("ko", "ko-KR", "en_US", "ja") to "ko" / "en" / "other"; None if absent."""
    if hint is None or not hint.strip():
        return None
    base = re.split(r"[-_]", hint.strip().lower(), maxsplit=1)[0]
    return base if base in ("ko", "en") else "other"


_DURATION = re.compile(
    r"(\d+(?:\.\d+)?|(?<![가-힣])(?:한|두|세|네|반)|\b(?:half an|an|one|two|three|four))\s*"
    r"(분|시간|mins?\b|minutes?\b|hours?\b|hrs?\b)"
)
_NUMBER_WORDS = {
    "한": 1.0,
    "두": 2.0,
    "세": 3.0,
    "네": 4.0,
    "반": 0.5,
    "an": 1.0,
    "one": 1.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "half an": 0.5,
}


def durations_minutes(text: str) -> list[tuple[str, float]]:
    """Durations mentioned in the text, as (surface, minutes)."""
    found: list[tuple[str, float]] = []
    for m in _DURATION.finditer(text):
        number = m.group(1)
        value = _NUMBER_WORDS[number] if number in _NUMBER_WORDS else float(number)
        unit = m.group(2)
        minutes = value * 60 if unit in ("시간",) or unit.startswith("h") else value
        found.append((m.group(0), minutes))
    return found
