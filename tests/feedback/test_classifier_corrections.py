"""Staff corrections as `make eval` and `voc classifier train` read them: the export's ndjson,
checked line by line, one row per feedback item (its latest correction), and the eval report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voc_feedback.classification.correction_export import (
    CorrectionsInvalid,
    parse_corrections,
    read_corrections,
)
from voc_feedback.classification.evaluate import report_corrections
from voc_feedback.classification.train import CORRECTION_SOURCE, SOURCE_WEIGHT, correction_rows, small_sample
from voc_feedback.classification.train import Row as TrainingRow

SAMPLE = Path(__file__).parent / "data" / "corrections-sample.ndjson"


def line(**fields: object) -> str:
    base: dict[str, object] = {
        "feedback_id": "fb-1",
        "text": "The soup was cold.",
        "language": "en",
        "sentiment": "negative",
        "category": "food_quality",
        "corrected_at": "2026-12-05T10:00:00Z",
        "corrected_by": "staff-1",
        "model_version": "hashlr-2-abf3131c3a",
    }
    return json.dumps({**base, **fields})


def test_one_row_per_feedback_item_its_latest_correction() -> None:
    corrections = parse_corrections(
        [
            line(category="wait_time", corrected_at="2026-12-05T10:05:00+00:00"),
            "",
            line(corrected_at="2026-12-05T10:00:00Z"),
            line(feedback_id="fb-2", language=None, model_version=None),
        ]
    )
    assert [(c.feedback_id, c.category) for c in corrections] == [
        ("fb-1", "wait_time"),
        ("fb-2", "food_quality"),
    ]
    assert corrections[1].language is None
    sample = read_corrections(SAMPLE)
    assert len(sample) == 7  # eight lines, fb-0002 corrected twice
    rows = correction_rows(sample)
    assert {r.source for r in rows} == {CORRECTION_SOURCE}
    assert SOURCE_WEIGHT[CORRECTION_SOURCE] == SOURCE_WEIGHT["authored-ko"] == SOURCE_WEIGHT["project"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "line 1: not JSON"),
        ("[1, 2]", "line 1: not a JSON object"),
        (line(sentiment="angry"), "sentiment 'angry'"),
        (line(category="parking"), "category 'parking' is not in the taxonomy"),
        (line(text="   "), "'text' must be a non-empty string"),
        (line(feedback_id=7), "'feedback_id' must be a non-empty string"),
        (line(corrected_at="yesterday"), "corrected_at 'yesterday'"),
    ],
)
def test_a_bad_line_is_named_by_its_number(text: str, says: str) -> None:
    with pytest.raises(CorrectionsInvalid) as raised:
        parse_corrections([text] if says.startswith("line 1") else [line(), text])
    assert says in str(raised.value)
    if not says.startswith("line 1"):
        assert str(raised.value).startswith("line 2:")


def test_the_eval_report_compares_the_model_with_staff_and_says_when_there_are_none() -> None:
    assert report_corrections([]) == "staff corrections: no corrections"
    report = report_corrections(read_corrections(SAMPLE))
    assert report.startswith("staff corrections: 7 items (classified at the time by hashlr-2-abf3131c3a x7)")
    assert "\nall            7" in report
    # The sarcastic line (pinned in CLASSIFIER.md "What it gets wrong") is a disagreement.
    assert "model positive/praise -> staff negative/food_quality" in report


def test_a_small_sample_keeps_every_correction() -> None:
    corpus = [TrainingRow(f"text {i}", "neutral", None, "nsmc") for i in range(1000)]
    corrections = correction_rows(read_corrections(SAMPLE))
    small = small_sample(corpus + corrections, 50)
    assert 20 <= len(small) - len(corrections) <= 100
    assert all(c in small for c in corrections)
