"""What the dashboard shows of uncertain classifications (#17), at the API it renders from:
`GET /v1/analytics` counts the items the classifier was not sure of in the place and period
asked, and `GET /v1/analytics/open-cases` flags each such case."""

from __future__ import annotations

import httpx

from tests.feedback.conftest import FeedbackService

STORE = "uncertain-store"


def test_analytics_count_and_open_cases_flag_uncertain_items(feedback_service: FeedbackService) -> None:
    key = feedback_service.new_key(STORE, name="uncertain app")
    ids = {}
    for name, body in (
        # A third language and no rating, and nothing but emoji: the model is not sure.
        ("unsure_es", {"text": "La comida estaba muy fría y el servicio es lento"}),
        ("unsure_emoji", {"text": "😂" * 300}),
        # Clear text with a rating that agrees: sure.
        ("sure", {"text": "The staff was rude and the table was dirty", "ratings": {"csat": 1}}),
    ):
        r = feedback_service.post(key, {"store_id": STORE, "channel": "kiosk", **body})
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    served = {name: feedback_service.get(fid)["classification"] for name, fid in ids.items()}
    assert [served[n]["uncertain"] for n in ("unsure_es", "unsure_emoji", "sure")] == [True, True, False]

    body = httpx.get(
        f"{feedback_service.url}/v1/analytics", params={"store_id": STORE}, headers=feedback_service.admin
    ).json()
    assert body["volume"] == 3 and body["uncertain"] == 2
    # Another place, another count: the filter applies.
    other = httpx.get(
        f"{feedback_service.url}/v1/analytics",
        params={"store_id": "no-such-store"},
        headers=feedback_service.admin,
    ).json()
    assert other["volume"] == 0 and other["uncertain"] == 0

    cases = httpx.get(
        f"{feedback_service.url}/v1/analytics/open-cases",
        params={"store_id": STORE},
        headers=feedback_service.admin,
    ).json()["cases"]
    by_id = {c["id"]: c for c in cases}
    assert set(by_id) == set(ids.values())
    for name, fid in ids.items():
        assert by_id[fid]["uncertain"] is served[name]["uncertain"]
        assert by_id[fid]["confidence"] == served[name]["confidence"]
