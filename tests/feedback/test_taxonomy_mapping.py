"""The classifier answers in the published taxonomy (#20 §3): a prediction whose category was
retired becomes its nearest active parent, else `other`, and says so; a category's default
severity is the floor of a complaint's. Also the taxonomy document's own rules
(`voc_platform.taxonomy.parse_taxonomy`), which actions applies before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from voc_feedback.classification import classify
from voc_platform import taxonomy
from voc_platform.errors import Invalid

PEST = "매장 안에서 바퀴벌레를 봤어요. 위생이 너무 걱정돼요"  # food_safety or cleanliness
APP = "The app keeps crashing when I try to pay, terrible app"


@pytest.fixture
def published() -> Iterator[None]:
    """Each test serves its own version, and the process serves the seed again afterwards."""
    taxonomy.reset()
    yield
    taxonomy.reset()


def version(n: int, **changes: dict[str, object]) -> taxonomy.Taxonomy:
    """The seed as version `n`, with `changes` per category id."""
    seed = taxonomy.seed()
    cats = tuple(replace(c, **changes[c.id]) if c.id in changes else c for c in seed.categories)  # type: ignore[arg-type]
    return replace(seed, version=n, categories=cats)


def test_a_retired_prediction_maps_to_its_parent_or_other(published: None) -> None:
    before = classify(APP, csat=1)
    assert before.category == "app_digital"
    taxonomy.serve(version(2, app_digital={"retired": True, "parent": "billing_payment"}))
    after = classify(APP, csat=1)
    assert after.category == "billing_payment"
    assert "category app_digital is retired -> billing_payment" in after.explanation
    taxonomy.serve(version(3, app_digital={"retired": True}))
    assert classify(APP, csat=1).category == "other"
    # Its label stays for history.
    assert taxonomy.label("app_digital", "en") == "App and digital"
    assert not taxonomy.current().accepts("app_digital")


def test_the_category_default_severity_is_the_floor_of_a_complaint(published: None) -> None:
    text = "The staff were a bit slow today"
    first = classify(text, csat=2)
    assert first.sentiment == "negative" and first.severity == "medium", first
    taxonomy.serve(version(2, **{first.category: {"severity": "critical"}}))
    second = classify(text, csat=2)
    assert second.severity == "critical"
    assert any("the category's default" in line for line in second.explanation)


def test_a_newer_version_wins_and_an_older_reply_is_ignored(published: None) -> None:
    assert taxonomy.serve(version(3))
    assert not taxonomy.serve(version(2, other={"en": "Stale"}))
    assert taxonomy.current().version == 3
    assert taxonomy.serve(version(2), force=True)  # the owner's database says so


def _doc(**categories: dict[str, object]) -> dict[str, object]:
    return {
        "departments": {"hq": {"ko": "본사", "en": "HQ"}},
        "categories": {"other": {"ko": "기타", "en": "Other"}, **categories},
    }


@pytest.mark.parametrize(
    ("categories", "field"),
    [
        ({"a": {"ko": "가", "en": "A", "parent": "zzz"}}, "categories.a.parent"),
        ({"a": {"ko": "가", "en": "A", "parent": "a"}}, "categories.a.parent"),
        (
            {"a": {"ko": "가", "en": "A", "parent": "b"}, "b": {"ko": "나", "en": "B", "parent": "a"}},
            "categories.a.parent",
        ),
        ({"a": {"en": "A"}}, "categories.a.ko"),
        ({"a": {"ko": "가", "en": " "}}, "categories.a.en"),
        ({"a": {"ko": "가", "en": "A", "severity": "dire"}}, "categories.a.severity"),
        ({"a": {"ko": "가", "en": "A", "department": "legal"}}, "categories.a.department"),
        ({"a": {"ko": "가", "en": "A", "colour": "red"}}, "categories.a.colour"),
        ({"A-1": {"ko": "가", "en": "A"}}, "categories.A-1"),
        ({"other": {"ko": "기타", "en": "Other", "retired": True}}, "categories.other"),
    ],
)
def test_bad_documents_name_the_field(categories: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        taxonomy.parse_taxonomy(_doc(**categories), version=2)
    assert field in [e.field for e in refused.value.errors]


def test_a_left_out_category_is_retired_and_an_id_twice_is_refused() -> None:
    seed = taxonomy.seed()
    doc = seed.to_dict()
    del doc["categories"]["praise"]  # type: ignore[attr-defined]
    parsed = taxonomy.parse_taxonomy(doc, version=2, previous=seed)
    praise = parsed.get("praise")
    assert praise is not None and praise.retired and praise.en == "Praise"
    assert parsed.map_category("praise") == "other"
    with pytest.raises(Invalid) as refused:
        taxonomy.parse_document(
            "categories:\n  other: {ko: 기타, en: Other}\n  other: {ko: 기타, en: Again}\n"
        )
    assert [e.field for e in refused.value.errors] == ["categories.other"]
