"""Deterministic, explainable Korean + English feedback classifier.

``classify(text, csat=, nps=, ces=, language=)`` returns a :class:`Classification` with the
language, sentiment (+ score in -1..1), taxonomy category, severity and the list of terms and
rules that fired. Pure and thread-safe: the lexicon (``lexicon.yaml``) is loaded once per process,
nothing touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from voc_feedback.classification.engine import (
    analyse_text,
    choose_category,
    choose_severity,
    combine,
    rating_values,
    sentiment_of,
)
from voc_feedback.classification.lexicon import lexicon
from voc_feedback.classification.text import detect_language, language_hint

__all__ = ["Classification", "classify"]


@dataclass(frozen=True, slots=True)
class Classification:
    language: str  # "ko" | "en" | "other"
    sentiment: str  # "positive" | "neutral" | "negative"
    score: float  # -1..1
    category: str  # a taxonomy category id
    severity: str  # "low" | "medium" | "high" | "critical"
    explanation: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "language": self.language,
            "sentiment": self.sentiment,
            "score": self.score,
            "category": self.category,
            "severity": self.severity,
            "explanation": list(self.explanation),
        }


def classify(
    text: str | None,
    *,
    csat: int | None = None,
    nps: int | None = None,
    ces: int | None = None,
    language: str | None = None,
) -> Classification:
    """Classify one piece of feedback (free text and/or ratings)."""
    lex = lexicon()
    body = (text or "").strip()
    hinted = language_hint(language)
    lang = hinted if hinted is not None else (detect_language(body) if body else "other")
    explanation: list[str] = []
    if hinted is None and body:
        explanation.append(f"language {lang} (detected)")
    else:
        explanation.append(f"language {lang} (client hint {language!r})" if hinted else "no text")

    analysed = analyse_text(body, lex) if body else None
    if analysed is not None:
        explanation.extend(analysed.explanation)
    ratings, rating_expl = rating_values(csat, nps, ces)
    explanation.extend(rating_expl)
    score, combine_expl = combine(analysed, ratings)
    explanation.extend(combine_expl)
    score = max(-1.0, min(1.0, round(score, 3)))
    sentiment = sentiment_of(score)
    explanation.append(f"sentiment {sentiment} (score {score:+.2f})")

    category, cat_expl, critical = choose_category(analysed, sentiment, lex)
    explanation.extend(cat_expl)
    severity, sev_expl = choose_severity(
        sentiment,
        score,
        ratings,
        category,
        critical,
        analysed.escalations if analysed is not None else [],
    )
    explanation.extend(sev_expl)
    return Classification(
        language=lang,
        sentiment=sentiment,
        score=score,
        category=category,
        severity=severity,
        explanation=list(dict.fromkeys(explanation)),
    )
