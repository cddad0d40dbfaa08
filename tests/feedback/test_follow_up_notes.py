"""The one line a person reads on the case timeline for each follow-up attempt or decision
notify reports (`events.follow_up_message`)."""

from __future__ import annotations

import pytest

from voc.events.v1 import events_pb2
from voc_feedback.events import follow_up_message


@pytest.mark.parametrize(
    ("outcome", "channel", "reason", "note"),
    [
        ("sent", "email", "", "follow-up sent by email"),
        (
            "retrying",
            "email",
            "SMTP server unavailable (OSError)",
            "follow-up by email not delivered yet: SMTP server unavailable (OSError); trying again",
        ),
        # Before a channel was chosen: no "by none".
        (
            "retrying",
            "none",
            "profile unavailable (UNAVAILABLE)",
            "follow-up not sent yet: profile unavailable (UNAVAILABLE); trying again",
        ),
        ("failed", "none", "gave up", "follow-up failed: gave up"),
        ("not_sent", "none", "no channel configured", "follow-up not sent: no channel configured"),
        ("held", "none", "store quiet hours", "follow-up held: store quiet hours; sent when they end"),
    ],
)
def test_each_outcome_reads_as_one_line(outcome: str, channel: str, reason: str, note: str) -> None:
    sent = events_pb2.FollowUpSent(
        feedback_id="f-1", outcome=outcome, channel=channel, reason=reason, attempt=1
    )
    step = follow_up_message(sent, "ev-1")
    assert step.detail["note"] == note and step.status == f"follow_up_{outcome}"
