"""uuid7 ids sort in creation order, which merges ("the oldest survives") and cursors rely on."""

from __future__ import annotations

import uuid
from unittest import mock

from voc_platform import ids


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    with mock.patch.object(ids.time, "time_ns", return_value=1_800_000_000_000_000_000):
        made = [ids.uuid7() for _ in range(5000)]  # more than the 4,096 a millisecond's counter holds
    assert made == sorted(made) and len(set(made)) == len(made)
    parsed = uuid.UUID(made[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_a_clock_stepping_back_does_not_reorder_ids() -> None:
    first = ids.uuid7()
    with mock.patch.object(ids.time, "time_ns", return_value=0):
        after_step_back = ids.uuid7()
    assert after_step_back > first
