"""What a reader without the customer records (the analyst) reads of an item: the free text
people wrote, on the item and on its timeline, without the phone numbers and e-mails in it; ids
and outcomes as they are (security review of 2026-12-06; the item's text is covered end to end
in tests/security/test_identity.py)."""

from __future__ import annotations

from voc_feedback.models import TimelineEntry
from voc_feedback.schemas import TimelineOut

ALERT_ID = "01a24d2e-7253-8576-b376-291c7c035f79"  # digits a phone pattern could take for a number


def entry(**detail: object) -> TimelineEntry:
    return TimelineEntry(
        feedback_id="f-1", at=1_790_000_000.0, kind="resolved", actor="staff:s1", detail=detail
    )


def test_a_resolution_note_is_masked_for_a_reader_without_customer_records() -> None:
    resolved = entry(alert_id=ALERT_ID, outcome="refunded", note="Called back on 010-1234-5678, mail a@b.co")
    masked = TimelineOut.of(resolved, personal=False).detail
    assert masked == {
        "alert_id": ALERT_ID,
        "outcome": "refunded",
        "note": "Called back on ***5678, mail ***@***",
    }
    assert TimelineOut.of(resolved).detail["note"] == "Called back on 010-1234-5678, mail a@b.co"


def test_an_answers_comment_is_masked_and_its_numbers_kept() -> None:
    answered = entry(csat=1, comment="+82 10 1234 5678 아무도 연락 안 왔어요", feedback_id=ALERT_ID)
    masked = TimelineOut.of(answered, personal=False).detail
    assert masked["comment"] == "***5678 아무도 연락 안 왔어요" and masked["csat"] == 1
    assert masked["feedback_id"] == ALERT_ID


def test_the_explanation_quotes_only_words_the_masked_text_shows() -> None:
    """The explanation quoted the model's weighty words as typed: an e-mail's local part, half a
    resident number. A reader without customer records sees only words their text shows."""
    from voc_feedback.models import Feedback
    from voc_feedback.schemas import FeedbackSummary

    row = Feedback(
        id="f-2", store_id="s1", channel="kiosk", language="en", sentiment="negative", score=-0.8,
        category="staff_attitude", severity="medium", status="received", customer_id="c-1",
        occurred_at=1_790_000_000.0, received_at=1_790_000_000.0, reopens_id=None,
        text="contact kimchulsoo1987@naver.com rude, 900101-1234567",
        explanation=["from 'rude' (+0.8), 'kimchulsoo1987' (+0.1), '1234567' (+0.1)", "sentiment negative"],
    )  # fmt: skip
    masked = FeedbackSummary.of(row, personal=False)
    assert masked.text is not None and "kimchulsoo1987" not in masked.text
    assert masked.classification.explanation == [
        "from 'rude' (+0.8), '***' (+0.1), '***' (+0.1)",
        "sentiment negative",
    ]
    assert FeedbackSummary.of(row).classification.explanation == row.explanation


def test_a_stored_time_no_date_can_hold_is_shown_clamped_not_a_500() -> None:
    """gRPC RecordOutcome once stored at_ms = ±2^62; every read of the item then failed with
    "year out of range". Such a step reads as the nearest date there is."""
    for at, year in ((-(2**62) / 1000, 1970), (2**62 / 1000, 9999)):
        bad = TimelineEntry(feedback_id="f-1", at=at, kind="resolved", actor="grpc", detail={})
        assert TimelineOut.of(bad).at.year == year
