"""Signal thresholds are configuration: the same history, read by the profile app under other
settings (or other VOC_PROFILE_* environment), sets or clears repeat_issue, score_swing and
low_satisfaction — in the live context at once, and in the stored signals the outreach lists
read from the customer's next event on (a summary built for other windows is not reused)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.profile.conftest import TEST_SETTINGS, Profile, app_client
from tests.profile.helpers import customer_with, facts, give_feedback
from voc_profile.settings import Settings


def settings_with(**changes: Any) -> Settings:
    return Settings(**{**TEST_SETTINGS, **changes})


async def signals_under(profile: Profile, customer_id: str, settings: Settings) -> dict[str, Any]:
    """The signals in `GET /v1/customers/{id}/context` of an app run with `settings`."""
    async with app_client(profile.database, settings) as app:
        response = await app.client.get(f"/v1/customers/{customer_id}/context", headers=app.admin)
    assert response.status_code == 200, response.text
    signals: dict[str, Any] = response.json()["signals"]
    return signals


async def listed_under(profile: Profile, signal: str, settings: Settings) -> list[str]:
    async with app_client(profile.database, settings) as app:
        response = await app.client.get("/v1/customers", params={"signal": signal}, headers=app.admin)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["customers"]]


def reason(signals: dict[str, Any], signal: str) -> list[dict[str, Any]]:
    return [r for r in signals["reasons"] if r["signal"] == signal]


async def test_repeat_issue_window_and_count(profile: Profile) -> None:
    db, default = profile.database, profile.settings
    customer = await customer_with(db, default, loyalty_id="RW-1")
    await give_feedback(
        db,
        default,
        customer,
        facts("w40", category="wait_time", days_ago=40),
        facts("w20", category="wait_time", days_ago=20),
        facts("w2", category="wait_time", days_ago=2),
        facts("c100", category="cleanliness", days_ago=100),  # outside even the 90-day summary
        facts("c5", category="cleanliness", days_ago=5),
    )
    sig = await signals_under(profile, customer, default)  # 30 days, 2 complaints
    assert sig["repeat_issue"] is True and sig["repeat_counts"] == {"wait_time": 2, "cleanliness": 1}

    narrow = settings_with(repeat_window_days=10)
    sig = await signals_under(profile, customer, narrow)
    assert sig["repeat_issue"] is False and sig["repeat_counts"] == {"wait_time": 1, "cleanliness": 1}
    assert reason(sig, "repeat_issue") == []

    assert (await signals_under(profile, customer, settings_with(repeat_min_count=3)))[
        "repeat_issue"
    ] is False

    wide = settings_with(repeat_window_days=45, repeat_min_count=3)
    sig = await signals_under(profile, customer, wide)
    assert sig["repeat_issue"] is True and sig["repeat_counts"] == {"wait_time": 3, "cleanliness": 1}
    [why] = reason(sig, "repeat_issue")
    assert (
        why["feedback_ids"] == ["w40", "w20", "w2"] and why["reason"] == "3 complaints in 45 days: Wait time"
    )

    # Wider than the summary kept (90 days): the history is read, the 100-day-old complaint counts.
    year = settings_with(repeat_window_days=120)
    sig = await signals_under(profile, customer, year)
    assert sig["repeat_counts"] == {"wait_time": 3, "cleanliness": 2}
    assert [r["feedback_ids"] for r in reason(sig, "repeat_issue")] == [["c100", "c5"], ["w40", "w20", "w2"]]

    # The stored signal (the outreach list) follows the settings the next event is handled with.
    assert await listed_under(profile, "repeat_issue", narrow) == [customer]  # stored under 30 days
    await give_feedback(db, narrow, customer, facts("praise", category="service", sentiment="positive"))
    assert await listed_under(profile, "repeat_issue", narrow) == []
    await give_feedback(db, year, customer, facts("praise-2", category="service", sentiment="positive"))
    assert await listed_under(profile, "repeat_issue", year) == [customer]


async def test_score_swing_points_and_window(profile: Profile) -> None:
    db, default = profile.database, profile.settings
    csat = await customer_with(db, default, loyalty_id="SW-CSAT")
    await give_feedback(
        db,
        default,
        csat,
        facts("s1", sentiment="positive", csat=4, days_ago=3),
        facts("s2", sentiment="positive", csat=4, days_ago=2),
        facts("s3", sentiment="neutral", csat=3, days_ago=1),
    )
    assert (await signals_under(profile, csat, default))["score_swing"] is False  # a drop of 1 < 2
    sig = await signals_under(profile, csat, settings_with(swing_csat_points=1))
    assert sig["score_swing"] is True and sig["score_swing_delta"] == -1.0
    [why] = reason(sig, "score_swing")
    assert why["reason"] == "CSAT 3 vs rolling mean 4.0 of 2" and why["feedback_ids"] == ["s3", "s1", "s2"]

    nps = await customer_with(db, default, loyalty_id="SW-NPS")
    await give_feedback(
        db,
        default,
        nps,
        facts("n1", sentiment="positive", nps=9, days_ago=3),
        facts("n2", sentiment="positive", nps=8, days_ago=2),
        facts("n3", sentiment="neutral", nps=6, days_ago=1),
    )
    assert (await signals_under(profile, nps, default))["score_swing"] is False  # 2.5 < 4
    assert (await signals_under(profile, nps, settings_with(swing_nps_points=3)))["score_swing"] is False
    sig = await signals_under(profile, nps, settings_with(swing_nps_points=2.5))
    assert sig["score_swing"] is True and sig["score_swing_delta"] == -2.5

    window = await customer_with(db, default, loyalty_id="SW-WIN")
    await give_feedback(
        db,
        default,
        window,
        facts("v1", sentiment="negative", csat=1, days_ago=4),
        facts("v2", sentiment="positive", csat=5, days_ago=3),
        facts("v3", sentiment="positive", csat=5, days_ago=2),
        facts("v4", sentiment="neutral", csat=3, days_ago=1),
    )
    assert (await signals_under(profile, window, default))["score_swing"] is False  # 3 vs mean 3.67
    short = settings_with(swing_window=2)
    sig = await signals_under(profile, window, short)
    assert sig["score_swing"] is True and sig["score_swing_delta"] == -2.0  # 3 vs mean 5 of the last 2
    assert reason(sig, "score_swing")[0]["feedback_ids"] == ["v4", "v2", "v3"]

    assert await listed_under(profile, "score_swing", short) == []
    await give_feedback(db, short, window, facts("v5", sentiment="positive", days_ago=0.5))  # no score
    assert await listed_under(profile, "score_swing", short) == [window]


async def test_low_satisfaction_threshold_and_window(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, default = profile.database, profile.settings
    middling = await customer_with(db, default, loyalty_id="LS-1")
    await give_feedback(
        db,
        default,
        middling,
        facts("m1", sentiment="neutral", csat=3, days_ago=3),
        facts("m2", sentiment="negative", csat=2, days_ago=2),
        facts("m3", sentiment="neutral", csat=3, days_ago=1),
    )
    assert (await signals_under(profile, middling, default))["low_satisfaction"] is False  # 2.67 >= 2.5
    strict = settings_with(low_satisfaction_csat=3.0)
    sig = await signals_under(profile, middling, strict)
    assert sig["low_satisfaction"] is True
    [why] = reason(sig, "low_satisfaction")
    assert why["reason"] == "mean CSAT 2.7 over the last 3" and why["feedback_ids"] == ["m1", "m2", "m3"]

    # The same threshold from the environment, as a deployment sets it.
    monkeypatch.setenv("VOC_PROFILE_LOW_SATISFACTION_CSAT", "3")
    from_env = Settings(admin_token=TEST_SETTINGS["admin_token"])
    assert from_env.low_satisfaction_csat == 3.0
    assert (await signals_under(profile, middling, from_env))["low_satisfaction"] is True

    recovering = await customer_with(db, default, loyalty_id="LS-2")
    await give_feedback(
        db,
        default,
        recovering,
        *[facts(f"r{i}", sentiment="negative", csat=1, days_ago=10 - i) for i in range(3)],
        facts("r3", sentiment="positive", csat=4, days_ago=2),
        facts("r4", sentiment="positive", csat=4, days_ago=1),
    )
    assert (await signals_under(profile, recovering, default))["low_satisfaction"] is True  # 2.2 of 5
    last_two = settings_with(low_satisfaction_window=2)
    assert (await signals_under(profile, recovering, last_two))["low_satisfaction"] is False  # 4.0 of 2

    # Stored: the outreach list under the stricter threshold once an event is handled with it.
    assert await listed_under(profile, "low_satisfaction", strict) == [recovering]
    await give_feedback(db, strict, middling, facts("m4", category="service", sentiment="positive"))
    assert sorted(await listed_under(profile, "low_satisfaction", strict)) == sorted([middling, recovering])
    await give_feedback(db, default, middling, facts("m5", category="service", sentiment="positive"))
    assert await listed_under(profile, "low_satisfaction", default) == [recovering]
