"""Feature extraction for the learned classifier: hashed word / char n-grams + lexicon features.

Pure and deterministic (CRC32 hashing, no per-process salt), shared by training and inference so
the two can never drift. Every text feature remembers which token it came from, so the model can
explain itself in the customer's own words ("'존맛' +1.4 toward positive").
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

from voc_feedback.classification.engine import TextScore, analyse_text, choose_category, combine, sentiment_of
from voc_feedback.classification.lexicon import Lexicon
from voc_feedback.classification.text import expand_contractions, normalize

MAX_CHARS = 600  # longer feedback is read up to here (features) — the rest adds cost, not signal
MAX_TOKENS = 120
_HTML_TAG = re.compile(r"<[^>]{0,200}>")
_HTML_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{1,6});")
# Zero-width, bidi controls, BOM, variation selectors, soft hyphen: invisible, never meaningful.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufe00-\ufe0f]")
_ANY_REPEAT = re.compile(r"(.)\1{3,}", re.DOTALL)  # any char 4+ times -> 3 (emoji floods, "!!!!!!")
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_EN_NEGATORS = frozenset(["not", "no", "never", "without", "hardly", "nothing", "nobody", "none", "nor"])
_NEG_SCOPE = 3


def clean_text(text: str) -> str:
    """What the model reads: markup, invisible characters and floods removed, length capped."""
    text = unicodedata.normalize("NFC", text[: MAX_CHARS * 4])
    text = _HTML_TAG.sub(" ", text)
    text = _HTML_ENTITY.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    text = _ANY_REPEAT.sub(r"\1\1\1", text)
    return normalize(text)[:MAX_CHARS]


def hash_feature(name: str, dim: int) -> int:
    return zlib.crc32(name.encode("utf-8")) & (dim - 1)


@dataclass(frozen=True, slots=True)
class Features:
    """Hashed feature names with weights and, for text features, the token they came from."""

    names: list[str]
    values: list[float]
    tokens: list[int]  # index into `words`, -1 for features that come from no single token
    words: list[str]
    lexicon: TextScore | None
    letters: int  # Hangul + Latin letters: how much readable text there was


def extract(text: str, lang: str, lex: Lexicon) -> Features:
    """Features of already-cleaned text (`clean_text`): one pass over the tokens (~85 lines, so
    training and inference cannot drift apart: both call exactly this)."""
    names: list[str] = []
    tokens: list[int] = []
    body = expand_contractions(text) if lang != "ko" else text
    words = _TOKEN.findall(body)[:MAX_TOKENS]
    neg_left = 0
    prev = "<s>"
    for i, w in enumerate(words):
        if not w[0].isalnum():
            neg_left = 0
        # English negation scope: the words after "not" / "never" are different features
        # ("not bad" -> n:bad, never w:bad), so the model learns their flipped weight.
        mark = "n" if neg_left > 0 else ""
        if neg_left > 0:
            neg_left -= 1
        names.append(mark + "w:" + w)
        tokens.append(i)
        names.append("b:" + prev + " " + w)
        tokens.append(i)
        if w in _EN_NEGATORS:
            neg_left = _NEG_SCOPE
        if w.isascii() and len(w) >= 4 and w.isalpha():
            # English char 4-grams: typos and elongations ("delicous", "soo good") keep evidence.
            padded = "<" + w + ">"
            for j in range(len(padded) - 3):
                names.append(mark + "e:" + padded[j : j + 4])
                tokens.append(i)
        if not w.isascii():
            # Korean (and emoji / emoticon) tokens: char 2..3-grams inside the token with word
            # boundary marks, so 존맛 / 존맛탱 / 맛있 / 안맛있 share evidence whatever the spacing.
            padded = "<" + w + ">"
            for n in (2, 3):
                for j in range(len(padded) - n + 1):
                    names.append("c:" + padded[j : j + n])
                    tokens.append(i)
        prev = w
    if words:
        names.append("b:" + prev + " </s>")
        tokens.append(len(words) - 1)
    if len(words) > 1 and any(not w.isascii() for w in words):
        # Cross-token char 3-grams of the whitespace-free text: "안 맛있" == "안맛있".
        compact = "".join(words)
        for j in range(len(compact) - 2):
            names.append("k:" + compact[j : j + 3])
            tokens.append(-1)
    norm = (1.0 / len(names)) ** 0.5 if names else 0.0
    values = [norm] * len(names)

    letters = len(_HANGUL.findall(text)) + sum(1 for ch in text if "a" <= ch <= "z")
    analysed = analyse_text(text, lex) if text else None
    names.append("bias")
    values.append(1.0)
    tokens.append(-1)
    names.append("lang:" + lang)
    values.append(1.0)
    tokens.append(-1)
    if analysed is not None and analysed.has_polarity:
        s = analysed.score
        names.append("lex:pos" if s > 0 else "lex:neg")
        values.append(abs(s))
        tokens.append(-1)
        # The lexicon's own verdict as an indicator, so the model can learn when to trust it.
        names.append("lexsent:pos" if s >= 0.2 else "lexsent:neg" if s <= -0.2 else "lexsent:weak")
        values.append(1.0)
        tokens.append(-1)
    else:
        names.append("lexsent:none")
        values.append(1.0)
        tokens.append(-1)
    if analysed is not None:
        for cat, weight in analysed.categories.items():
            names.append("lexcat:" + cat)
            values.append(min(weight, 2.0) / 2.0)
            tokens.append(-1)
        if analysed.criticals:
            names.append("lex:critical")
            values.append(1.0)
            tokens.append(-1)
        if any(line.startswith("sarcasm cue") for line in analysed.explanation):
            names.append("lex:sarcasm")
            values.append(1.0)
            tokens.append(-1)
    if letters < 2:
        names.append("few_letters")
        values.append(1.0)
        tokens.append(-1)
    return Features(names=names, values=values, tokens=tokens, words=words, lexicon=analysed, letters=letters)


def lexicon_category(analysed: TextScore | None, lex: Lexicon) -> str:
    """The old lexicon classifier's category for this text alone (its own sentiment, no ratings):
    an input of the stacked category layer (``model.stack_inputs``)."""
    score, _ = combine(analysed, [])
    category, _, _ = choose_category(analysed, sentiment_of(max(-1.0, min(1.0, round(score, 3)))), lex)
    return category


def hashed(features: Features, dim: int) -> tuple[list[int], list[float]]:
    return [hash_feature(n, dim) for n in features.names], features.values
