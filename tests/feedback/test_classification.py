"""Behaviour checks for the learned classifier the service uses (#17).

The model is the committed artefact (`make train` rebuilds it byte for byte), so every assertion
here is deterministic. Where the model is known to be wrong (sarcasm), the test pins what it does
and says so, so a retrained model that changes the behaviour is noticed."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tests.feedback.classification_cases import CATEGORY_EXAMPLES, SAMPLES
from voc_feedback.classification import UNCERTAIN_BELOW, Classification, classify
from voc_feedback.classification.evaluate import (
    TARGET_CATEGORY_MACRO_F1,
    TARGET_SENTIMENT_ACCURACY,
    evaluate,
)
from voc_feedback.classification.features import clean_text, extract
from voc_feedback.classification.lexicon import lexicon
from voc_feedback.classification.model import (
    explain_label,
    load_model,
    predict,
    stack_inputs,
    stack_width,
    stacked_category,
)
from voc_feedback.classification.text import detect_language
from voc_platform.taxonomy import CATEGORIES, SENTIMENTS, SEVERITIES

PER_ITEM_SECONDS = 0.25  # generous for a loaded CI box; the model's mean is well under 1 ms


def explained(c: Classification, needle: str) -> bool:
    return any(needle in line for line in c.explanation)


def timed(text: str | None, **kwargs: int) -> Classification:
    classify("warm up: lexicon and weights load once per process")
    start = time.perf_counter()
    c = classify(text, **kwargs)  # type: ignore[arg-type]
    assert time.perf_counter() - start < PER_ITEM_SECONDS, text
    return c


# --------------------------------------------------------------------------- output contract


@pytest.mark.parametrize("text", SAMPLES)
def test_output_ranges_and_json(text: str) -> None:
    for kwargs in ({}, {"csat": 1, "nps": 10, "ces": 7}, {"csat": 99, "nps": -5}):
        c = timed(text, **kwargs)
        assert c.language in ("ko", "en", "other")
        assert c.sentiment in SENTIMENTS
        assert -1.0 <= c.score <= 1.0
        assert 0.0 <= c.confidence <= 1.0 and 0.0 <= c.category_confidence <= 1.0
        assert c.category in CATEGORIES
        assert c.severity in SEVERITIES
        assert c.model_version == load_model().version and c.model_version.startswith("hashlr-")
        assert c.explanation and all(isinstance(x, str) for x in c.explanation)
        d = c.to_dict()
        assert d["uncertain"] == (c.confidence < UNCERTAIN_BELOW)
        json.dumps(d, ensure_ascii=False)


def test_frozen_deterministic_and_thread_safe() -> None:
    c = classify("good")
    with pytest.raises(AttributeError):
        c.sentiment = "negative"  # type: ignore[misc]
    texts = [*SAMPLES[:5], "The app keeps crashing", "주차 공간이 너무 부족해요"]
    expected = [classify(t, csat=3).to_dict() for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(lambda t: classify(t, csat=3).to_dict(), texts)) == expected


def test_explanation_names_the_customers_words_and_the_model() -> None:
    c = classify("존맛탱 또 올게요")
    assert c.sentiment == "positive"
    assert explained(c, f"model {c.model_version}: positive")
    assert explained(c, "'존맛탱'")
    c = classify("The cashier was rude and the floor was filthy", csat=1)
    assert explained(c, "'rude'") or explained(c, "'filthy'")
    assert explained(c, "csat=1 -> negative weight")


# --------------------------------------------------------------------------- bad input


def test_empty_or_whitespace_text_classifies_from_the_rating() -> None:
    for text in (None, "", "   \n\t "):
        low = timed(text, csat=1)
        assert (low.sentiment, low.category, low.severity) == ("negative", "other", "high")
        assert explained(low, "no text -> sentiment from ratings")
        high = timed(text, csat=5, nps=10)
        assert high.sentiment == "positive" and high.confidence >= UNCERTAIN_BELOW
    assert timed(None, ces=7).sentiment == "negative"  # high effort is bad
    assert timed("  ", nps=7, csat=3).sentiment == "neutral"
    nothing = timed(None)
    assert nothing.sentiment == "neutral" and nothing.uncertain


JUNK = [
    "😂" * 4000,
    "👍" * 4000,
    "\u200b" * 4000,
    "\u200b\u200c\u200d\ufeff" * 1000,
    "\u202e\u202b\u200f" * 1300,
    "...!!!???" * 400,
    "<div><img src=x onerror=alert(1)></div>" * 100,
    "美味しかったです。また来ます",
    "La comida estaba muy fría y el servicio es lento",
    "Обслуживание было ужасным",
    "الخدمة كانت سيئة جدا",
]


@pytest.mark.parametrize("text", JUNK)
def test_junk_and_third_languages_get_a_valid_low_confidence_answer_in_time(text: str) -> None:
    c = timed(text)
    assert c.sentiment in SENTIMENTS and c.category in CATEGORIES
    assert c.uncertain and c.confidence < UNCERTAIN_BELOW, c.explanation
    assert c.category_confidence < UNCERTAIN_BELOW
    assert explained(c, "uncertain")


def test_markup_and_invisible_characters_do_not_change_the_reading() -> None:
    plain = classify("음식이 다 식어서 나왔어요")
    for noisy in (
        "<p>음식이 다 <b>식어서</b> 나왔어요</p>",
        "음식이\u200b 다 식어서\u200d 나왔어요\u202e",
        "음식이 다 식어서 나왔어요" + "\u200b" * 3000,
    ):
        c = timed(noisy)
        assert (c.sentiment, c.category) == (plain.sentiment, plain.category) == ("negative", "food_quality")


def test_a_long_complaint_is_read_and_bounded() -> None:
    text = "직원이 불친절하고 음식이 식어서 나왔어요. " * 150
    c = timed(text)
    assert c.sentiment == "negative"


# --------------------------------------------------------------------------- slang, emoticons


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("존맛", "positive"),
        ("존맛탱 ㅋㅋ", "positive"),
        ("ㄹㅇ 존맛 또 올게요", "positive"),
        ("여기 국밥 ㄹㅇ 맛있음", "positive"),
        ("최고", "positive"),
        ("개별로", "negative"),
        ("노맛", "negative"),
        ("최악", "negative"),
        ("주문한지 한시간째 ㅠㅠ", "negative"),
        ("Best pho in town!!! 😋😋", "positive"),
        ("soooo rude", "negative"),
        ("delicous!!", "positive"),
        ("meh", "negative"),
    ],
)
def test_slang_emoticons_and_korean_internet_spelling(text: str, sentiment: str) -> None:
    c = classify(text)
    assert c.sentiment == sentiment, c.explanation


@pytest.mark.parametrize(
    ("text", "sentiment", "category"),
    [
        ("앱 login이 안 돼요", "negative", "app_digital"),
        ("staff가 너무 rude했어요", "negative", "staff_attitude"),
        ("delivery 완전 늦음 ㅡㅡ", "negative", "delivery"),
        ("coffee 존맛 ㄹㅇ", "positive", "food_quality"),
        ("kiosk 결제 error 계속 나요", "negative", "app_digital"),
        ("The 떡볶이 was amazing", "positive", "food_quality"),
        ("매장 wifi가 너무 느려요", "negative", "facility"),
    ],
)
def test_code_switched_korean_and_english(text: str, sentiment: str, category: str) -> None:
    c = classify(text)
    assert (c.sentiment, c.category) == (sentiment, category), c.explanation


def test_korean_spacing_and_repeated_jamo_variants_agree() -> None:
    variants = [
        "너무 오래 기다렸어요",
        "너무오래 기다렸어요",
        "너무오래기다렸습니다",
        "너무 오래 기다렸어요ㅠㅠㅠㅠ",
    ]
    assert {(classify(v).sentiment, classify(v).category) for v in variants} == {("negative", "wait_time")}


# --------------------------------------------------------------------------- negation


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("The food was not bad at all", "positive"),
        ("not bad", "positive"),
        ("The staff was not friendly", "negative"),
        ("Staff wasn't helpful at all", "negative"),
        ("안 맛있다", "negative"),
        ("음식이 안 맛있어요", "negative"),
        ("직원분이 친절하지 않았어요", "negative"),
        ("맛이 나쁘지 않았어요", "positive"),
    ],
)
def test_negation(text: str, sentiment: str) -> None:
    assert classify(text).sentiment == sentiment, classify(text).explanation


# --------------------------------------------------------------------------- mixed and sarcasm


def test_mixed_reviews_follow_the_complaint() -> None:
    c = classify("The staff were lovely but the pasta was bland and cold.")
    assert (c.sentiment, c.category) == ("negative", "food_quality")
    c = classify("직원분들은 친절했는데 음식이 다 식어서 왔어요")
    assert (c.sentiment, c.category) == ("negative", "food_quality")
    c = classify("A bit pricey but the food is excellent.")
    assert c.sentiment == "positive"


def test_sarcasm_what_the_model_does() -> None:
    # Caught: a long wait named next to praise words, and the "ㅡㅡ" glare.
    c = classify("Great, another 40 minute wait just to pick up a phone.")
    assert (c.sentiment, c.category) == ("negative", "wait_time")
    assert classify("아주 친절하시네요 ㅡㅡ").sentiment == "negative"
    assert classify("배달 진짜 빠르네요 두 시간 걸림").sentiment == "negative"
    # Caught, but uncertain: the complaint words outweigh "wonderful" / "love" only just.
    c = classify("Oh wonderful, my order is wrong again. Love it.")
    assert c.sentiment == "negative" and c.uncertain
    # Missed (known weakness, docs/CLASSIFIER.md): dry sarcasm with no cue reads as praise, and
    # confidently so. Pinned so a model that learns it is noticed.
    assert classify("Thanks for the cold fries, really made my day.").sentiment == "positive"
    assert classify("참 잘하는 짓이네요").sentiment == "positive"


# --------------------------------------------------------------------------- ratings and rules


def test_text_and_ratings_combine() -> None:
    c = classify("The guy at the counter was incredibly rude.", csat=5)
    assert c.sentiment == "negative" and explained(c, "disagree -> text wins")
    c = classify("직원분들 정말 친절하세요 최고!", csat=1)
    assert c.sentiment == "positive" and explained(c, "disagree -> text wins")
    c = classify("주문한 거 받았어요", csat=1)
    assert c.sentiment == "negative"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("먹고 나서 식중독 증상이 있어서 병원에 갔습니다", "food_safety"),
        ("샐러드에 벌레가 있었어요", "food_safety"),
        ("Got food poisoning after the chicken wrap.", "food_safety"),
        ("매장 바닥이 미끄러워서 넘어져 다쳤어요", "facility"),
        ("I slipped on the wet floor and got injured.", "facility"),
    ],
)
def test_critical_terms_still_force_category_and_severity(text: str, category: str) -> None:
    c = classify(text, csat=4)
    assert c.severity == "critical", c.explanation
    assert c.category == category and explained(c, "critical term")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        *CATEGORY_EXAMPLES,
        ("The staff were super rude.", "staff_attitude"),
    ],
)
def test_categories(text: str, category: str) -> None:
    assert classify(text).category == category, classify(text).explanation


# --------------------------------------------------------------------------- evaluation


def test_project_test_split_meets_targets() -> None:
    results = evaluate(splits=("test",))
    assert {r.language for r in results} == {"ko", "en"}
    for r in results:
        assert r.n >= 200
        assert r.sentiment_accuracy >= TARGET_SENTIMENT_ACCURACY, r
        assert r.category_macro_f1 >= TARGET_CATEGORY_MACRO_F1, r


# --------------------------------------------------------------------------- artefact and data


REPO = Path(__file__).resolve().parents[2]


def test_committed_weights_are_the_version_model_json_names() -> None:
    base = files("voc_feedback.classification") / "model"
    with (base / "model.npz").open("rb") as handle, np.load(handle) as arrays:
        digest = hashlib.sha256(
            arrays["sentiment"].tobytes() + arrays["category"].tobytes() + arrays["category_stack"].tobytes()
        ).hexdigest()
    assert load_model().version == f"hashlr-2-{digest[:10]}"


def test_category_stacked_layer_matches_its_inputs() -> None:
    model = load_model()
    n = len(model.category.labels)
    assert model.category_stack.shape == (stack_width(n), n)
    x = stack_inputs(np.zeros(n, np.float32), {"wait_time": 4.0}, "wait_time", "en", model.category.labels)
    assert x.shape == (stack_width(n),) and x[n] == 1.0 and x[2 * n] == 1.0  # capped evidence, one-hot
    probs = stacked_category(model, x)
    assert max(probs, key=lambda c: probs[c]) == "wait_time" and abs(sum(probs.values()) - 1.0) < 1e-5


def test_held_out_rows_never_appear_in_training_rows() -> None:
    train: set[str] = set()
    held: set[str] = set()
    for path in sorted((REPO / "data" / "classifier").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                (train if row["split"] == "train" else held).add(row["text"].strip().lower())
    project_test = {
        json.loads(line)["text"].strip().lower()
        for lang in ("ko", "en")
        for line in (files("voc_feedback.classification") / "data" / f"{lang}.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip() and json.loads(line)["split"] == "test"
    }
    assert len(train) > 40_000 and len(held) > 5_000
    assert not train & held
    assert not train & project_test


def test_intake_metrics_observe_the_confidence() -> None:
    from voc_feedback import metrics

    # The histogram is process-global: compare its count before and after one observation.
    samples = {s.name: s.value for m in metrics.CLASSIFICATION_CONFIDENCE.collect() for s in m.samples}
    before = samples.get("voc_classification_confidence_count", 0.0)
    metrics.observe_classification(0.0002, classify("직원이 너무 불친절해요"))
    samples = {s.name: s.value for m in metrics.CLASSIFICATION_CONFIDENCE.collect() for s in m.samples}
    assert samples["voc_classification_confidence_count"] == before + 1


def test_the_category_explanation_names_the_words_behind_the_chosen_category() -> None:
    """When the stacked layer picks another category than the hashed head's own winner, the
    explanation's words are those that pushed toward the category given, not the head's."""
    model = load_model()
    overruled = 0
    for lang in ("ko", "en"):
        for line in (
            (files("voc_feedback.classification") / "data" / f"{lang}.jsonl").read_text().splitlines()
        ):
            text = json.loads(line)["text"]
            result = classify(text)
            body = clean_text(text)
            feats = extract(body, detect_language(body), lexicon())
            head = predict(model.category, feats)
            line_of = [e for e in result.explanation if e.startswith(f"category {result.category} (p=")]
            if result.category == head.label or not line_of:
                continue  # the head's own choice, or a rule's (critical term, no text)
            overruled += 1
            words = explain_label(model.category, feats, result.category)
            assert all(f"'{w}'" in line_of[0] for w, _ in words), (text, line_of, words)
            assert words != head.phrases or not words, text
    assert overruled >= 10  # the layer does overrule the head on the project set
