"""Korean + English feedback classifier: a learned model, with the lexicon as features and baseline.

``classify(text, csat=, nps=, ces=, language=)`` returns a :class:`Classification` with the
language, sentiment (+ score in -1..1), taxonomy category, severity, a calibrated ``confidence``,
the ``model_version`` and an explanation a manager can read (the customer's words that weighed
most, the ratings, the rules that fired). The model (``model.py``, trained by ``make train``) is
two logistic regressions over hashed word / char n-grams plus lexicon features; the hand-written
lexicon still supplies features, the food-safety / critical-term rules and the severity rules, and
``classify_lexicon`` keeps the old rule-only classifier as the evaluation baseline. Pure and
thread-safe; the weights are loaded once per process; nothing touches the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from voc_feedback.classification.engine import (
    TextScore,
    analyse_text,
    choose_category,
    choose_severity,
    combine,
    rating_values,
    sentiment_of,
)
from voc_feedback.classification.features import clean_text, extract, lexicon_category
from voc_feedback.classification.lexicon import Critical, lexicon
from voc_feedback.classification.model import (
    Model,
    explain_label,
    feature_codes,
    load_model,
    predict,
    stack_inputs,
    stacked_category,
)
from voc_feedback.classification.text import detect_language, language_hint
from voc_platform import taxonomy

__all__ = ["UNCERTAIN_BELOW", "Classification", "classify", "classify_lexicon"]

LEXICON_VERSION = "lexicon-1"
UNCERTAIN_BELOW = 0.6  # a confidence under this is shown as "uncertain", never silently trusted


@dataclass(frozen=True, slots=True)
class Classification:
    language: str  # "ko" | "en" | "other"
    sentiment: str  # "positive" | "neutral" | "negative"
    score: float  # -1..1
    category: str  # a taxonomy category id
    severity: str  # "low" | "medium" | "high" | "critical"
    explanation: list[str]
    confidence: float = 1.0  # calibrated probability of the sentiment, 0..1
    category_confidence: float = 1.0  # calibrated probability of the category, 0..1
    model_version: str = LEXICON_VERSION

    @property
    def uncertain(self) -> bool:
        return self.confidence < UNCERTAIN_BELOW

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "uncertain": self.uncertain}


def classify_lexicon(
    text: str | None,
    *,
    csat: int | None = None,
    nps: int | None = None,
    ces: int | None = None,
    language: str | None = None,
) -> Classification:
    """The old rule-only classifier (lexicon.yaml), kept as the evaluation baseline."""
    lex = lexicon()
    body = (text or "").strip()
    lang, language_line = _language(body, language)
    explanation = [language_line]

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
    return _with_severity(
        Classification(lang, sentiment, score, category, "", explanation),
        ratings=ratings,
        critical=critical,
        escalations=analysed.escalations if analysed is not None else [],
    )


def _language(body: str, language: str | None) -> tuple[str, str]:
    """The text's language (the client's hint when it names one we read, else detected) and the
    explanation's first line saying which."""
    hinted = language_hint(language)
    lang = hinted if hinted is not None else (detect_language(body) if body else "other")
    if hinted is None and body:
        return lang, f"language {lang} (detected)"
    return lang, (f"language {lang} (client hint {language!r})" if hinted else "no text")


def _with_severity(
    draft: Classification,
    *,
    ratings: list[float],
    critical: tuple[str, Critical] | None,
    escalations: list[str],
) -> Classification:
    """`draft` with its category mapped onto the published taxonomy (a retired or unknown one to
    its nearest active parent, else `other`), its severity (the same rules for the model and the
    lexicon baseline) and its explanation's lines once each, in order."""
    category = taxonomy.current().map_category(draft.category)
    mapped = [] if category == draft.category else [f"category {draft.category} is retired -> {category}"]
    severity, why = choose_severity(draft.sentiment, draft.score, ratings, category, critical, escalations)
    return replace(
        draft,
        category=category,
        severity=severity,
        explanation=list(dict.fromkeys([*draft.explanation, *mapped, *why])),
    )


def _phrases(phrases: list[tuple[str, float]]) -> str:
    return ", ".join(f"'{w}' ({c:+.1f})" for w, c in phrases) if phrases else "no single phrase"


def classify(
    text: str | None,
    *,
    csat: int | None = None,
    nps: int | None = None,
    ces: int | None = None,
    language: str | None = None,
    model: Model | None = None,
) -> Classification:
    """Classify one piece of feedback (free text and/or ratings) with the learned model (`model`,
    default: the version this process serves — read once, so one item sees one version).

    One function (~130 lines) on purpose: its steps run in the order docs/CLASSIFIER.md gives
    (sentiment, ratings, category conventions, severity, explanation) and each reads what the
    previous ones decided; split, the explanation's order would be spread over helpers."""
    lex = lexicon()
    model = model or load_model()
    body = clean_text(text) if text and text.strip() else ""
    lang, language_line = _language(body, language)
    explanation = [language_line]
    ratings, rating_expl = rating_values(csat, nps, ces)
    r = sum(ratings) / len(ratings) if ratings else 0.0

    analysed = None
    category_probs: dict[str, float] = {}
    category_cap = 1.0
    if body:
        feats = extract(body, lang, lex)
        analysed = feats.lexicon
        codes = feature_codes(feats)
        sp = predict(model.sentiment, feats, codes=codes)
        cp = predict(model.category, feats, codes=codes)
        # The stacked layer weighs the hashed head against the lexicon's category evidence.
        evidence = dict(analysed.categories) if analysed is not None else {}
        category_probs = stacked_category(
            model,
            stack_inputs(cp.logits, evidence, lexicon_category(analysed, lex), lang, model.category.labels),
        )
        t = sp.probs["positive"] - sp.probs["negative"]
        label, confidence = sp.label, sp.confidence
        if analysed is not None and analysed.criticals and label != "positive":
            # A safety term ("식중독", "food poisoning", "벌레") outweighs a kind rating.
            t = min(t, analysed.score, -0.6)
            label, confidence = "negative", max(confidence, 0.8)
            explanation.append(f"critical term '{analysed.criticals[0][0]}' -> text read as negative")
        explanation.append(
            f"model {model.version}: {sp.label} (p={sp.confidence:.2f}) from {_phrases(sp.phrases)}"
        )
        if feats.letters < 2:
            confidence = category_cap = min(confidence, 0.4)
            explanation.append("little readable text -> low confidence")
        elif lang == "other":
            confidence = category_cap = min(confidence, 0.45)
            explanation.append("not Korean or English -> low confidence")
        explanation.extend(rating_expl)
        if ratings:
            text_view = TextScore(
                score=t,
                has_polarity=abs(t) >= 0.2 and confidence >= 0.5,
                categories={},
                criticals=[],
                escalations=[],
                explanation=[],
            )
            score, combine_expl = combine(text_view, ratings)
            explanation.extend(combine_expl)
            sentiment = sentiment_of(score)
            agree = (r > 0.05 and t > 0) or (r < -0.05 and t < 0) or label == "neutral"
            confidence = max(confidence, 0.8) if agree and abs(r) >= 0.5 else confidence * 0.8
        else:
            score, sentiment = t, label
    else:
        explanation.extend(rating_expl)
        if ratings:
            score = r
            sentiment = sentiment_of(score)
            confidence = 0.85 if abs(r) >= 0.5 else 0.6
            explanation.append("no text -> sentiment from ratings")
        else:
            score, sentiment, confidence = 0.0, "neutral", 0.34
            explanation.append("no text and no ratings -> neutral")
    score = max(-1.0, min(1.0, round(score, 3)))
    confidence = round(max(0.0, min(1.0, confidence)), 3)
    explanation.append(f"sentiment {sentiment} (score {score:+.2f}, confidence {confidence:.2f})")
    if confidence < UNCERTAIN_BELOW:
        explanation.append(f"uncertain: confidence {confidence:.2f} < {UNCERTAIN_BELOW} - check the text")

    critical = None
    if analysed is not None and analysed.criticals and sentiment != "positive":
        category, cat_expl, critical = choose_category(analysed, sentiment, lex)
        category_confidence = max(category_probs.get(category, 0.0), 0.9)
        explanation.extend(cat_expl)
    elif category_probs:
        ranked = sorted(category_probs.items(), key=lambda kp: -kp[1])
        category = ranked[0][0]
        if sentiment == "positive" and category in ("staff_attitude", "other"):
            category = "praise"
        elif sentiment != "positive" and category == "praise":
            category = next(c for c, _ in ranked if c != "praise")
        category_confidence = category_probs.get(category, 0.0)
        if category == "praise" and ranked[0][0] != "praise":
            category_confidence = ranked[0][1]
        category_confidence = min(category_confidence, category_cap)
        words = (
            cp.phrases
            if category == cp.label
            else explain_label(model.category, feats, category, codes=codes)
        )
        explanation.append(f"category {category} (p={category_confidence:.2f}) from {_phrases(words)}")
    elif text and text.strip():
        category, category_confidence = "other", 0.34
        explanation.append("no readable text (markup / invisible characters only) -> other")
    else:
        category, category_confidence = "other", 1.0
        explanation.append("no text -> other")
    return _with_severity(
        Classification(
            lang,
            sentiment,
            score,
            category,
            "",
            explanation,
            confidence=confidence,
            category_confidence=round(category_confidence, 3),
            model_version=model.version,
        ),
        ratings=ratings,
        critical=critical,
        escalations=analysed.escalations if analysed is not None else [],
    )
