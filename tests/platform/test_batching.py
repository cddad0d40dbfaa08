"""`ArrivalRate`: the recent arrival rate that decides whether a batch waits for more."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voc_platform.batching import BUCKET_SECONDS, ArrivalRate
from voc_platform.db import Database
from voc_platform.settings import ServiceSettings


def test_the_rate_is_the_busier_of_the_last_full_bucket_and_the_current_one() -> None:
    rate = ArrivalRate()
    start = 1000 * BUCKET_SECONDS
    for i in range(30):
        rate.add(start + i * 0.001)
    assert rate.per_second(start + 0.05) == pytest.approx(30 / BUCKET_SECONDS)
    # Next bucket: the last full one still counts, until the current one is busier.
    assert rate.per_second(start + BUCKET_SECONDS + 0.01) == pytest.approx(30 / BUCKET_SECONDS)
    for i in range(40):
        rate.add(start + BUCKET_SECONDS + 0.02 + i * 0.001)
    assert rate.per_second(start + BUCKET_SECONDS + 0.09) == pytest.approx(40 / BUCKET_SECONDS)


def test_a_pause_of_a_whole_bucket_forgets_the_burst() -> None:
    rate = ArrivalRate()
    start = 1000 * BUCKET_SECONDS
    for i in range(50):
        rate.add(start + i * 0.001)
    assert rate.expects_more_within(0.003, start + 0.06)
    assert rate.per_second(start + 2 * BUCKET_SECONDS + 0.01) == 0
    assert not rate.expects_more_within(0.003, start + 2 * BUCKET_SECONDS + 0.01)


def test_more_is_expected_only_at_one_arrival_per_wait_or_faster() -> None:
    rate = ArrivalRate()
    start = 1000 * BUCKET_SECONDS
    for i in range(33):  # 330/s: one per 3.03 ms
        rate.add(start + i * 0.003)
    assert not rate.expects_more_within(0.003, start + 0.099)
    rate.add(start + 0.0995)  # 340/s
    assert rate.expects_more_within(0.003, start + 0.0999)
    assert not rate.expects_more_within(0.0, start + 0.0999)


def test_the_group_linger_setting_is_bounded_and_reaches_the_database() -> None:
    assert ServiceSettings().sqlite_group_linger_ms == 3.0
    assert ServiceSettings(sqlite_group_linger_ms=0).sqlite_group_linger_ms == 0
    for bad in (-1, 51):
        with pytest.raises(ValidationError, match="sqlite_group_linger_ms"):
            ServiceSettings(sqlite_group_linger_ms=bad)
    database = Database("sqlite://", group_linger=0.007)
    assert database.group_linger == 0.007
