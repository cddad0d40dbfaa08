"""The rule engine: scan the text for lexicon terms, score sentiment, pick category and severity.

One module (~560 lines): the scanner, the rating blend and the category/severity rules share
its data types and are read together; since the learned model (#17) it serves as the model's
features, the safety rules and the evaluation baseline."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from voc_feedback.classification.lexicon import Critical, Layer, Lexicon, Term
from voc_feedback.classification.text import (
    compact,
    durations_minutes,
    english_tokens,
    is_punct,
    normalize,
)
from voc_platform import taxonomy

POSITIVE_AT = 0.2  # final score >= this -> positive; <= -this -> negative
TEXT_SCALE = 1.2  # text score = tanh(sum / TEXT_SCALE)
CONTRAST_EARLIER = 0.5  # weight of the clause before "but" / "지만" / "는데"
NEG_FLIP_POSITIVE = 0.8  # "not good": +1 -> -0.8
NEG_FLIP_NEGATIVE = 0.6  # "not bad": -1 -> +0.6
SARCASM_FLIP = 0.8
TEXT_WINS_AT = 0.55  # |text score| from which the text overrides disagreeing ratings
INQUIRY_DAMP = 0.3  # questions and requests rarely carry sentiment
VERDICT_DAMP = 0.4  # "보통", "average", "nothing special": the writer says it was neither
CATEGORY_EARLIER = 0.35  # category weight of the clause before a contrast
BARE_NEGATION = -0.4  # "안 열려 있었어요", "tracking hasn't updated": a negated unknown verb
RHETORICAL_KO = ("왜", "ㅡㅡ", "-_-")
RHETORICAL_EN = ("why", "how come", "what more could")
_KO_BARE_NEG = re.compile(
    r"(?<![가-힣])(?:안|못)\s?(?![내전녕경쪽에으심정과주방부개건])(?=[가-힣])|지\s?(?:않|못)"
)
FOOD_CATEGORIES = ("food_quality", "food_safety")
STAFF_CATEGORIES = ("staff_attitude", "praise")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(slots=True)
class Hit:
    term: Term
    surface: str
    lang: str  # "ko" (char scanner) | "en" (word scanner)
    layer: str  # "sentiment" | "topic"
    weight: float = 1.0  # clause weight
    mult: float = 1.0  # intensifier / diminisher
    mult_word: str = ""
    negated_by: str = ""
    neutralised: bool = False  # NPI adverb before a negator


@dataclass(slots=True)
class Analysis:
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sarcasm: str = ""
    inquiry: bool = False
    rhetorical: bool = False
    bare_negation: str = ""
    extra_categories: dict[str, float] = field(default_factory=dict)
    extra_polarity: list[tuple[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- Korean / emoji scan


def _match_chars(c: str, layer: Layer) -> tuple[list[tuple[int, int, Term]], bytearray]:
    """Longest-first, non-overlapping substring matches ("불친절" beats "친절")."""
    n = len(c)
    found: list[tuple[int, int, Term]] = []
    for i, ch in enumerate(c):
        lengths = layer.char_lengths.get(ch)
        if lengths is None:
            continue
        for length in lengths:
            if i + length <= n:
                term = layer.chars.get(c[i : i + length])
                if term is not None:
                    found.append((i, i + length, term))
    taken = bytearray(n)
    if not found:
        return [], taken
    found.sort(key=lambda f: (f[0] - f[1], f[0]))
    kept: list[tuple[int, int, Term]] = []
    for s, e, term in found:
        if 1 in taken[s:e]:
            continue
        taken[s:e] = b"\x01" * (e - s)
        kept.append((s, e, term))
    kept.sort(key=lambda f: f[0])
    return kept, taken


def _scan_chars(text: str, lex: Lexicon, out: Analysis) -> None:
    c = compact(text)
    contrast_at = -1
    contrast_word = ""
    for m in lex.ko_contrast.finditer(c):
        contrast_at, contrast_word = m.start(), m.group(0)
    earlier = False

    topic, _ = _match_chars(c, lex.topic)
    for _, e, term in topic:
        hit = Hit(term=term, surface=term.text, lang="ko", layer="topic")
        if contrast_at >= 0 and e <= contrast_at:
            hit.weight = CONTRAST_EARLIER
            earlier = True
        out.hits.append(hit)

    kept, taken = _match_chars(c, lex.sentiment)
    modifier_end: dict[int, tuple[float, str]] = {}
    polar_starts: set[int] = set()
    for s, e, term in kept:
        if term.polarity is None:
            modifier_end[e] = (term.intensity or 1.0, term.text)
        elif term.polarity:
            polar_starts.add(s)
    used_negators = 0
    for s, e, term in kept:
        if term.polarity is None:
            continue
        hit = Hit(term=term, surface=term.text, lang="ko", layer="sentiment")
        if contrast_at >= 0 and e <= contrast_at:
            hit.weight = CONTRAST_EARLIER
            earlier = True
        if term.polarity:
            after = c[e : e + 12]
            pre = (
                s >= 1
                and c[s - 1] in lex.ko_pre_negators
                and not taken[s - 1]
                and not (s >= 2 and c[s - 2] in lex.ko_pre_blockers)
            )
            post = None
            for pattern in lex.ko_post_negation:
                post = pattern.match(after)
                if post is not None:
                    break
            if term.npi and (post is not None or after[:1] in lex.ko_pre_negators):
                hit.neutralised = True
                used_negators += 1
            else:
                flips: list[str] = []
                if pre:
                    flips.append(c[s - 1])
                if post is not None:
                    flips.append(post.group(0))
                # "오래 안 기다렸어요": an adverb right before 안/못 + predicate is negated too.
                if post is None and after[:1] in lex.ko_pre_negators and (e + 1) in polar_starts:
                    flips.append(after[:1])
                used_negators += len(flips)
                if len(flips) % 2 == 1:
                    hit.negated_by = "+".join(flips)
            mod = modifier_end.get(s) or modifier_end.get(s - 1)
            if mod is None and pre:
                mod = modifier_end.get(s - 2)
            if mod is not None:
                hit.mult, hit.mult_word = mod
        out.hits.append(hit)
    if earlier:
        out.notes.append(f"contrast '{contrast_word}': earlier clause weighted x{CONTRAST_EARLIER}")

    for marker in lex.ko_sarcasm:
        if marker in c:
            out.sarcasm = marker
            break
    if any(q in c for q in lex.ko_inquiry):
        out.inquiry = True
    if any(r in c for r in RHETORICAL_KO):
        out.rhetorical = True
    bare = _KO_BARE_NEG.findall(text)
    if len(bare) > used_negators:
        out.bare_negation = bare[0].strip()


# --------------------------------------------------------------------------- English scan


def _lookup_word(token: str, lex: Lexicon, layer: Layer) -> tuple[Term, str] | None:
    """Single-token fallback: plural, elongation, one-edit typo."""
    words = layer.words
    if token.endswith("s") and len(token) > 3 and token[:-1] in words:
        return words[token[:-1]], ""
    dedup = "".join(ch for i, ch in enumerate(token) if i == 0 or ch != token[i - 1])
    if dedup != token and dedup in words:
        return words[dedup], ""
    if len(token) < 5 or not token.isalpha() or token in lex.words or token in lex.fuzzy_exclude:
        return None
    fixed = lex.fuzzy_deletes.get(token)  # a letter missing: "delicous"
    if fixed is None:
        for i in range(len(token)):
            variant = token[:i] + token[i + 1 :]
            if len(token) >= 6 and variant in lex.word_singles:  # one letter too many
                fixed = variant
                break
            via = lex.fuzzy_deletes.get(variant)  # swapped / substituted letter: "recieved"
            if len(token) >= 7 and via is not None and via[0] == token[0]:
                fixed = via
                break
    if fixed is not None and fixed in words:
        return words[fixed], fixed
    return None


def _scan_words(tokens: list[str], lex: Lexicon, layer: Layer, out: Analysis) -> list[str]:
    """Scan tokens against one layer; returns the negators that were seen (sentiment layer).
    (~80 lines: the per-token loop of the scanner, kept in one piece because it is its hot loop.)"""
    sentiment = layer is lex.sentiment
    n = len(tokens)
    first_hit = len(out.hits)
    neg_left = 0
    neg_word = ""
    mult = 1.0
    mult_word = ""
    mult_left = 0
    though = False
    negators: list[str] = []
    but_at = -1
    but_word = ""
    next_punct = [n] * (n + 1)
    for j in range(n - 1, -1, -1):
        next_punct[j] = j if is_punct(tokens[j]) else next_punct[j + 1]
    i = 0
    while i < n:
        tok = tokens[i]
        if next_punct[i] == i:
            neg_left = mult_left = 0
            though = False
            i += 1
            continue
        if tok in lex.en_but:
            but_at, but_word = len(out.hits), tok
            neg_left = 0
            i += 1
            continue
        if tok in lex.en_though or (tok == "even" and i + 1 < n and tokens[i + 1] == "though"):
            though = True
            i += 2 if tok == "even" else 1
            continue
        match: tuple[Term, int, str] | None = None
        longest = min(layer.phrase_len.get(tok, 0), next_punct[i] - i)
        for size in range(longest, 0, -1):
            key = " ".join(tokens[i : i + size]) if size > 1 else tok
            term = layer.words.get(key)
            if term is not None:
                match = (term, size, key)
                break
        if match is None and sentiment and tok in lex.en_negators:
            neg_left, neg_word = lex.en_scope, tok
            negators.append(tok)
            i += 1
            continue
        if match is None:
            fb = _lookup_word(tok, lex, layer)
            if fb is not None:
                term, fixed = fb
                if fixed:
                    out.notes.append(f"typo '{tok}' read as '{fixed}'")
                match = (term, 1, tok)
        if match is None:
            neg_left = max(0, neg_left - 1)
            mult_left = max(0, mult_left - 1)
            i += 1
            continue
        term, size, key = match
        i += size
        if sentiment and term.polarity is None:  # a pure modifier
            mult, mult_word, mult_left = term.intensity or 1.0, key, 2
            continue
        hit = Hit(term=term, surface=key, lang="en", layer="sentiment" if sentiment else "topic")
        if though:
            hit.weight = CONTRAST_EARLIER
        if sentiment and term.polarity:
            if neg_left > 0:
                hit.negated_by = neg_word
            if mult_left > 0:
                hit.mult, hit.mult_word = mult, mult_word
        out.hits.append(hit)
        neg_left = max(0, neg_left - size)
        mult_left = max(0, mult_left - size)
        if sentiment and term.intensity is not None:
            mult, mult_word, mult_left = term.intensity, key, 2
    if but_at > first_hit:
        for h in out.hits[first_hit:but_at]:
            h.weight = CONTRAST_EARLIER
        out.notes.append(f"contrast '{but_word}': earlier clause weighted x{CONTRAST_EARLIER}")
    return negators


def _scan_english(text: str, lex: Lexicon, out: Analysis) -> None:
    tokens = english_tokens(text)
    if not tokens:
        return
    _scan_words(tokens, lex, lex.topic, out)
    first = len(out.hits)
    negators = _scan_words(tokens, lex, lex.sentiment, out)
    negated = sum(1 for h in out.hits[first:] if h.negated_by)
    if len(negators) > negated and not out.bare_negation:
        out.bare_negation = negators[0]
    joined = " ".join(tokens)
    if any(r in joined for r in RHETORICAL_EN):
        out.rhetorical = True
    if not out.sarcasm:
        for pattern in lex.en_sarcasm:
            m = pattern.search(text)
            if m is not None:
                out.sarcasm = m.group(0)
                break
    starts = tokens[0] in lex.en_inquiry_starts and not (len(tokens) > 1 and tokens[1] == "not")
    if starts or text.rstrip().endswith("?") or any(p in joined for p in lex.en_inquiry_phrases):
        out.inquiry = True


# --------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class TextScore:
    score: float  # -1..1
    has_polarity: bool
    categories: dict[str, float]
    criticals: list[tuple[str, Critical]]
    escalations: list[str]
    explanation: list[str]


def _fmt(value: float) -> str:
    return f"{value:+.1f}"


def analyse_text(text: str, lex: Lexicon) -> TextScore:
    """The lexicon's reading of a text: hits, negation, intensity, sarcasm cues, categories and
    critical terms (~100 lines: the scanner's passes in order; the learned model reads its result
    as features)."""
    norm = normalize(text)
    out = Analysis()
    if any(not ch.isascii() for ch in norm):
        _scan_chars(norm, lex, out)
    _scan_english(norm, lex, out)

    expl: list[str] = []
    categories: dict[str, float] = {}
    criticals: list[tuple[str, Critical]] = []
    escalations: list[str] = []
    total = 0.0
    has_polarity = False
    verdict = ""

    # Durations: "40분", "45 minutes", "2.5 hours" are wait-time evidence; long ones are negative.
    long_wait = ""
    for surface, minutes in durations_minutes(norm):
        categories["wait_time"] = categories.get("wait_time", 0.0) + 0.7
        if minutes >= 30:
            total -= 0.5
            has_polarity = True
            long_wait = surface
            expl.append(f"duration '{surface}' ({minutes:g} min) -> wait_time, long (-0.5)")
        else:
            expl.append(f"duration '{surface}' ({minutes:g} min) -> wait_time")
    if "$" in norm and any(ch.isdigit() for ch in norm):
        categories["price_value"] = categories.get("price_value", 0.0) + 0.5

    sarcasm = out.sarcasm
    if not sarcasm and long_wait:
        # "배달 진짜 빠르네요 두 시간 걸림", "super fast delivery, only took 2 hours"
        speedy = [
            h
            for h in out.hits
            if (h.term.polarity or 0) > 0
            and any(c in ("wait_time", "delivery") for c, _ in h.term.categories)
        ]
        if speedy:
            sarcasm = f"'{speedy[0].surface}' with '{long_wait}'"
    if sarcasm:
        expl.append(f"sarcasm cue {sarcasm!r}: positive terms read as negative")

    labels: dict[tuple[str, str], list[str]] = {}
    for h in out.hits:
        term = h.term
        slot = labels.setdefault((h.lang, h.surface), ["", ""])
        if h.layer == "topic":
            cats = term.categories
            if cats:
                slot[1] = " -> " + "/".join(c for c, _ in sorted(cats, key=lambda cw: -cw[1]))
                cat_weight = CATEGORY_EARLIER if h.weight < 1.0 else 1.0
                for cat, cw in cats:
                    categories[cat] = categories.get(cat, 0.0) + cw * cat_weight
            if term.critical is not None:
                criticals.append((h.surface, term.critical))
            if term.escalation:
                escalations.append(h.surface)
            continue
        pol = term.polarity or 0.0
        if h.neutralised:
            expl.append(f"'{h.surface}' before a negator means 'not very' -> no polarity")
            continue
        if pol == 0.0:
            if not term.blocker:
                verdict = verdict or h.surface
            continue
        value = pol * h.mult
        if h.negated_by:
            value = -value * (NEG_FLIP_POSITIVE if value > 0 else NEG_FLIP_NEGATIVE)
            sign_from, sign_to = ("+", "-") if pol > 0 else ("-", "+")
            expl.append(f"negation '{h.negated_by}' flips '{h.surface}' ({sign_from}) -> ({sign_to})")
        if sarcasm and value > 0:
            value = -value * SARCASM_FLIP
        if h.mult != 1.0:
            kind = "intensifier" if h.mult > 1 else "diminisher"
            expl.append(f"{kind} '{h.mult_word}' x{h.mult:g} on '{h.surface}'")
        total += value * h.weight
        has_polarity = True
        slot[0] = f" ({_fmt(pol)})"
    for (lang, surface), (pol_text, cat_text) in labels.items():
        if pol_text or cat_text:
            expl.append(f"{lang} term '{surface}'{pol_text}{cat_text}")
    expl.extend(out.notes)
    if out.bare_negation:
        total += BARE_NEGATION
        has_polarity = True
        expl.append(f"bare negation '{out.bare_negation}' -> weak negative ({BARE_NEGATION:+.1f})")
    if verdict and has_polarity:
        total *= VERDICT_DAMP
        expl.append(f"neutral verdict '{verdict}' -> text polarity x{VERDICT_DAMP}")
    if out.inquiry and has_polarity and not (out.rhetorical or sarcasm):
        total *= INQUIRY_DAMP
        expl.append(f"question/request -> text polarity x{INQUIRY_DAMP}")
    score = math.tanh(total / TEXT_SCALE) if has_polarity else 0.0
    return TextScore(
        score=score,
        has_polarity=has_polarity and abs(total) > 1e-9,
        categories=categories,
        criticals=criticals,
        escalations=escalations,
        explanation=expl,
    )


# --------------------------------------------------------------------------- ratings


def rating_values(csat: int | None, nps: int | None, ces: int | None) -> tuple[list[float], list[str]]:
    values: list[float] = []
    expl: list[str] = []

    def add(name: str, raw: int, value: float) -> None:
        values.append(value)
        kind = "positive" if value > 0.05 else "negative" if value < -0.05 else "neutral"
        expl.append(f"{name}={raw} -> {kind} weight ({value:+.2f})")

    if csat is not None:
        c = min(5, max(1, int(csat)))
        add("csat", csat, {1: -1.0, 2: -0.6, 3: 0.0, 4: 0.5, 5: 1.0}[c])
    if nps is not None:
        p = min(10, max(0, int(nps)))
        table = {0: -1.0, 1: -1.0, 2: -1.0, 3: -0.7, 4: -0.7, 5: -0.4, 6: -0.4, 7: 0.1, 8: 0.3}
        add("nps", nps, table.get(p, 0.8 if p == 9 else 1.0))
    if ces is not None:
        e = min(7, max(1, int(ces)))
        add("ces", ces, {1: 0.7, 2: 0.5, 3: 0.2, 4: 0.0, 5: -0.4, 6: -0.7, 7: -1.0}[e])
    return values, expl


def combine(text: TextScore | None, ratings: list[float]) -> tuple[float, list[str]]:
    """Blend text polarity with the ratings; say which one won when they disagree."""
    r = sum(ratings) / len(ratings) if ratings else 0.0
    if text is None or not text.has_polarity:
        if not ratings:
            return 0.0, ["no sentiment terms and no ratings -> neutral"]
        if text is None:
            return r, ["ratings only -> sentiment from ratings"]
        return r, ["no sentiment terms in text -> ratings decide"]
    t = text.score
    if not ratings:
        return t, []
    if t * r < 0 and abs(r) > 0.05:
        # Explicit wording beats a rating (often a mis-tap on the scale); faint wording does not.
        if abs(t) >= TEXT_WINS_AT:
            final = t * (1.0 - 0.3 * abs(r))
            return final, [f"text ({t:+.2f}) and ratings ({r:+.2f}) disagree -> text wins"]
        final = r * (1.0 - 0.5 * abs(t))
        return final, [f"text ({t:+.2f}) and ratings ({r:+.2f}) disagree -> ratings win"]
    w_t = 0.5 + abs(t)
    w_r = 0.6 + 0.2 * (len(ratings) - 1)
    final = (w_t * t + w_r * r) / (w_t + w_r)
    return final, [f"text ({t:+.2f}) and ratings ({r:+.2f}) combined"]


def sentiment_of(score: float) -> str:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= -POSITIVE_AT:
        return "negative"
    return "neutral"


# --------------------------------------------------------------------------- category, severity


def choose_category(
    text: TextScore | None, sentiment: str, lex: Lexicon
) -> tuple[str, list[str], tuple[str, Critical] | None]:
    if text is None:
        return "other", ["no text -> other"], None
    rank = {c: i for i, c in enumerate(lex.priority)}
    scores = text.categories
    # The most severe critical term decides, unless the feedback is positive.
    critical = None
    if text.criticals and sentiment != "positive":
        critical = min(text.criticals, key=lambda sc: -SEVERITY_RANK.get(sc[1].severity, 0))
        surface, crit = critical
        cat = crit.category
        if cat == "auto":
            food = any(scores.get(c, 0.0) > 0 for c in FOOD_CATEGORIES)
            cat = "food_safety" if food else "facility"
        return cat, [f"critical term '{surface}' forces category {cat}"], critical
    ranked = sorted(
        ((s, c) for c, s in scores.items() if s > 0),
        key=lambda sc: (-round(sc[0], 6), rank.get(sc[1], 99)),
    )
    if not ranked:
        if sentiment == "positive":
            return "praise", ["positive feedback with no specific topic -> praise"], None
        return "other", ["no category terms fired -> other"], None
    best_score, best = ranked[0]
    if sentiment == "positive":
        people = sum(scores.get(c, 0.0) for c in STAFF_CATEGORIES)
        if best in STAFF_CATEGORIES or people > best_score:
            return "praise", ["positive feedback about staff/service -> praise"], None
        return best, [f"category {best} (score {best_score:.2f})"], None
    if best == "praise":
        rest = [c for _, c in ranked if c != "praise"]
        if rest:
            return rest[0], [f"category {rest[0]} (praise terms ignored: not positive)"], None
        return "other", ["praise terms in non-positive feedback -> other"], None
    return best, [f"category {best} (score {best_score:.2f})"], None


def choose_severity(
    sentiment: str,
    score: float,
    ratings: list[float],
    category: str,
    critical: tuple[str, Critical] | None,
    escalations: list[str],
) -> tuple[str, list[str]]:
    worst_rating = min(ratings) if ratings else 0.0
    if sentiment == "negative":
        sev = "high" if score <= -0.8 or worst_rating <= -0.9 else "medium"
        why = f"negative (score {score:+.2f}) -> severity {sev}"
        # The category's default severity (taxonomy data, #20 §3) is the floor of a complaint's:
        # food_safety's `high` in the seed.
        floor = taxonomy.default_severity(category)
        if SEVERITY_RANK.get(floor, 0) > SEVERITY_RANK[sev]:
            sev, why = floor, f"negative {category} feedback -> severity {floor} (the category's default)"
    elif sentiment == "neutral":
        sev = "medium" if worst_rating <= -0.6 else "low"
        why = f"neutral -> severity {sev}"
    else:
        sev, why = "low", "positive -> severity low"
    expl = [why]
    if critical is not None:
        surface, crit = critical
        target = crit.severity if sentiment == "negative" else "medium"
        if SEVERITY_RANK[target] > SEVERITY_RANK[sev]:
            sev = target
        expl.append(f"critical term '{surface}' -> severity {sev}")
    if escalations and sentiment != "positive" and SEVERITY_RANK[sev] < SEVERITY_RANK["high"]:
        sev = "high"
        expl.append(f"escalation term '{escalations[0]}' -> severity high")
    return sev, expl
