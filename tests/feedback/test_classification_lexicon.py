"""Behaviour checks for the rule-only lexicon classifier (`classify_lexicon`).

Since #17 the service classifies with the learned model (tests in test_classification.py); the
lexicon stays as the model's features, the critical-term / severity rules and the evaluation
baseline, so its behaviour is still pinned here."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.feedback.classification_cases import CATEGORY_EXAMPLES, SAMPLES
from voc_feedback.classification import Classification
from voc_feedback.classification import classify_lexicon as classify
from voc_feedback.classification.evaluate import (
    TARGET_CATEGORY_MACRO_F1,
    TARGET_SENTIMENT_ACCURACY,
    evaluate,
)
from voc_platform.taxonomy import CATEGORIES, SENTIMENTS, SEVERITIES


def explained(c: Classification, needle: str) -> bool:
    return any(needle in line for line in c.explanation)


# --------------------------------------------------------------------------- language detection


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("직원분이 정말 친절했어요", "ko"),
        ("ㅋㅋㅋ", "ko"),
        ("앱 login이 안 돼요", "ko"),
        ("The staff were lovely", "en"),
        ("美味しかったです", "other"),
        ("La comida estaba muy fría y el servicio es lento", "other"),
        ("👍👍", "other"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert classify(text).language == language


def test_language_hint_is_used_when_ko_or_en_else_other() -> None:
    assert classify("great", language="ko").language == "ko"
    assert classify("좋아요", language="en-US").language == "en"
    assert classify("좋아요", language="ja").language == "other"
    assert classify("좋아요", language=None).language == "ko"


# --------------------------------------------------------------------------- Korean negation


@pytest.mark.parametrize(
    "text",
    [
        "안 친절해요",  # 안 + predicate, with a space
        "안친절해요",  # 안 + predicate, without a space
        "직원분이 친절하지 않았어요",  # -지 않았
        "직원이 친절하지 않다",  # -지 않다
        "친절한 건 아니었어요",  # 아니
        "직원분 친절하지 못했어요",  # -지 못
        "직원들 친절이 없었어요",  # 없었
    ],
)
def test_korean_negation_flips_positive_terms(text: str) -> None:
    c = classify(text)
    assert c.sentiment == "negative", c.explanation
    assert c.category == "staff_attitude"
    assert explained(c, "negation")


@pytest.mark.parametrize(
    "text", ["불편함이 없었어요", "짜지도 않고 딱 좋았어요", "맛이 나쁘지 않았어요", "더럽지 않았어요"]
)
def test_korean_negated_negative_is_positive(text: str) -> None:
    c = classify(text)
    assert c.sentiment == "positive", c.explanation
    assert explained(c, "negation")


def test_korean_bare_negated_verb_is_negative() -> None:
    c = classify("충전기가 작동을 안 해요")
    assert (c.sentiment, c.category) == ("negative", "product_defect")
    assert explained(c, "bare negation")


def test_korean_npi_adverb_before_negator() -> None:
    # "별로 안 비싸요" = not very expensive: 별로 is not negative here
    c = classify("가격이 별로 안 비싸요")
    assert c.sentiment == "positive", c.explanation
    assert explained(c, "'별로' before a negator")


# --------------------------------------------------------------------------- English negation


@pytest.mark.parametrize(
    "text",
    [
        "The staff was not friendly",
        "Staff wasn't friendly at all",
        "staff werent friendly",  # missing apostrophe
        "The cashier was never helpful",
        "Nobody was helpful",
    ],
)
def test_english_negation_flips_positive_terms(text: str) -> None:
    c = classify(text)
    assert c.sentiment == "negative", c.explanation
    assert c.category == "staff_attitude"
    assert explained(c, "negation")


@pytest.mark.parametrize("text", ["The food was not bad at all", "The wait wasn't long"])
def test_english_negated_negative_is_positive(text: str) -> None:
    assert classify(text).sentiment == "positive"


def test_english_never_again_is_negative() -> None:
    c = classify("Rude cashier. Never again.")
    assert c.sentiment == "negative"
    assert c.category == "staff_attitude"


def test_english_but_clause_weights_the_latter() -> None:
    c = classify("The staff were lovely but the pasta was bland and cold.")
    assert (c.sentiment, c.category) == ("negative", "food_quality")
    assert explained(c, "contrast 'but'")
    c = classify("A bit pricey but the food is excellent.")
    assert (c.sentiment, c.category) == ("positive", "food_quality")


def test_korean_contrast_weights_the_latter() -> None:
    c = classify("직원분들은 친절했는데 음식이 다 식어서 왔어요")
    assert (c.sentiment, c.category) == ("negative", "food_quality")
    assert explained(c, "contrast '는데'")


def test_intensifiers_and_diminishers() -> None:
    plain = classify("rude staff").score
    strong = classify("extremely rude staff").score
    assert strong < plain < 0
    assert explained(classify("extremely rude staff"), "intensifier 'extremely'")
    assert classify("너무 짜요").score < classify("좀 짜요").score < 0


def test_sarcasm_cues() -> None:
    c = classify("Great, another 40 minute wait just to pick up a phone.")
    assert (c.sentiment, c.category) == ("negative", "wait_time")
    assert explained(c, "sarcasm")
    assert classify("아주 친절하시네요 ㅡㅡ").sentiment == "negative"
    assert classify("배달 진짜 빠르네요 두 시간 걸림").sentiment == "negative"


# --------------------------------------------------------------------------- colloquial Korean


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("존맛", "positive"),
        ("존맛탱 ㅋㅋ", "positive"),
        ("짱", "positive"),
        ("최고", "positive"),
        ("별로예요", "negative"),
        ("개별로", "negative"),
        ("노맛", "negative"),
        ("최악", "negative"),
        ("헐 ㅡㅡ", "negative"),
        ("ㅠㅠㅠㅠ", "negative"),
    ],
)
def test_korean_colloquial_forms(text: str, sentiment: str) -> None:
    assert classify(text).sentiment == sentiment


def test_korean_spacing_and_politeness_variants_agree() -> None:
    variants = ["너무 오래 기다렸어요", "너무오래 기다렸어요", "너무오래기다렸습니다", "너무 오래 기다림"]
    results = {(classify(v).sentiment, classify(v).category) for v in variants}
    assert results == {("negative", "wait_time")}


def test_repeated_jamo_collapse_does_not_change_result() -> None:
    assert classify("맛없어요ㅠㅠㅠㅠㅠㅠ").to_dict() == classify("맛없어요ㅠㅠ").to_dict()


def test_english_typo_and_elongation() -> None:
    c = classify("delicous!!")
    assert (c.sentiment, c.category) == ("positive", "food_quality")
    assert explained(c, "typo 'delicous'")
    assert classify("soooo rude").sentiment == "negative"


# --------------------------------------------------------------------------- ratings


def test_ratings_only() -> None:
    low = classify(None, csat=1)
    assert (low.sentiment, low.category, low.severity) == ("negative", "other", "high")
    high = classify("", csat=5, nps=10)
    assert (high.sentiment, high.category, high.severity) == ("positive", "other", "low")
    mid = classify("   ", nps=7, csat=3)
    assert mid.sentiment == "neutral"
    assert classify(None).sentiment == "neutral"
    assert classify(None, ces=7).sentiment == "negative"  # high effort is bad
    assert classify(None, ces=1).sentiment == "positive"


def test_strong_text_beats_disagreeing_rating() -> None:
    c = classify("The guy at the counter was incredibly rude.", csat=5)
    assert c.sentiment == "negative"
    assert explained(c, "disagree -> text wins")
    c = classify("직원분들 정말 친절하세요 최고!", csat=1)
    assert c.sentiment == "positive"
    assert explained(c, "disagree -> text wins")


def test_weak_text_loses_to_disagreeing_rating() -> None:
    c = classify("The food was fine I guess.", csat=1)
    assert c.sentiment == "negative"
    assert explained(c, "disagree -> ratings win")
    c = classify("주문한 거 받았어요", csat=1)
    assert c.sentiment == "negative"
    assert explained(c, "ratings decide")


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    ("text", "category"),
    [
        *CATEGORY_EXAMPLES,
        ("영업시간이 어떻게 되나요?", "other"),
        ("asdf qwer", "other"),
    ],
)
def test_categories(text: str, category: str) -> None:
    assert classify(text).category == category


def test_praise_only_when_positive() -> None:
    assert classify("The staff were super friendly.").category == "praise"
    assert classify("The staff were super rude.").category == "staff_attitude"


# --------------------------------------------------------------------------- severity


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("먹고 나서 식중독 증상이 있어서 병원에 갔습니다", "food_safety"),
        ("샐러드에 벌레가 있었어요", "food_safety"),
        ("Got food poisoning after the chicken wrap.", "food_safety"),
        ("My son had an allergic reaction and we went to the ER.", "food_safety"),
        ("I bit into a piece of glass in my burger.", "food_safety"),
        ("My daughter was choking on a bone.", "food_safety"),
        ("매장 바닥이 미끄러워서 넘어져 다쳤어요", "facility"),
        ("I slipped on the wet floor and got injured.", "facility"),
        ("There was a fire in the kitchen area near our table", "facility"),
    ],
)
def test_critical_terms_force_category_and_severity(text: str, category: str) -> None:
    c = classify(text, csat=4)
    assert c.severity == "critical", c.explanation
    assert c.category == category
    assert explained(c, "critical term")


def test_high_severity_food_safety_terms() -> None:
    c = classify("음식에서 머리카락이 나왔어요")
    assert (c.category, c.severity) == ("food_safety", "high")


def test_severity_from_ratings_and_sentiment() -> None:
    assert classify("Thanks, lovely visit", csat=5).severity == "low"
    assert classify("The fries were a bit soggy").severity == "medium"
    assert classify("The fries were a bit soggy", csat=1).severity == "high"
    assert classify("I will contact my lawyer about this bad service").severity == "high"


def test_allergen_question_is_not_critical() -> None:
    c = classify("메뉴에 알레르기 유발 성분 표시를 해주실 수 있나요?")
    assert c.category == "food_safety"
    assert c.severity in ("low", "medium")


# --------------------------------------------------------------------------- output contract


def test_explanation_content() -> None:
    c = classify("국물이 식었어요 직원도 안 친절하고", csat=1)
    assert explained(c, "ko term '식었' (-1.0) -> food_quality")
    assert explained(c, "negation '안' flips '친절' (+) -> (-)")
    assert explained(c, "csat=1 -> negative weight")
    c = classify("식중독 걸렸어요")
    assert explained(c, "critical term '식중독'")


@pytest.mark.parametrize("text", SAMPLES)
def test_output_ranges_and_json(text: str) -> None:
    for kwargs in ({}, {"csat": 1, "nps": 10, "ces": 7}, {"csat": 99, "nps": -5}):
        c = classify(text, **kwargs)  # type: ignore[arg-type]
        assert c.language in ("ko", "en", "other")
        assert c.sentiment in SENTIMENTS
        assert -1.0 <= c.score <= 1.0
        assert c.category in CATEGORIES
        assert c.severity in SEVERITIES
        assert c.explanation and all(isinstance(x, str) for x in c.explanation)
        d = c.to_dict()
        assert set(d) == {
            "language", "sentiment", "score", "category", "severity", "explanation",
            "confidence", "category_confidence", "model_version", "uncertain",
        }  # fmt: skip
        json.dumps(d, ensure_ascii=False)


def test_frozen() -> None:
    c = classify("good")
    with pytest.raises(AttributeError):
        c.sentiment = "negative"  # type: ignore[misc]


def test_deterministic_and_thread_safe() -> None:
    texts = [*SAMPLES[:5], "The app keeps crashing", "주차 공간이 너무 부족해요"]
    expected = [classify(t, csat=3).to_dict() for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            got = list(pool.map(lambda t: classify(t, csat=3).to_dict(), texts))
            assert got == expected


# --------------------------------------------------------------------------- evaluation


def test_lexicon_baseline_still_meets_its_targets_on_the_project_set() -> None:
    results = evaluate(splits=("test",), classifier=classify)
    assert {r.language for r in results} == {"ko", "en"}
    for r in results:
        assert r.n >= 200
        assert r.sentiment_accuracy >= TARGET_SENTIMENT_ACCURACY, r
        assert r.category_macro_f1 >= TARGET_CATEGORY_MACRO_F1, r
