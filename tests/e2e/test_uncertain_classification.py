"""Low confidence is visible, never silently guessed (#17), end to end against the running system:
feedback publishes the classifier's confidence, model version and `uncertain` on
`voc.feedback.received` (read here from JetStream on the real nats-server), notify stores them on
the alert and serves them as `classification` in `GET /v1/alerts` and `GET /v1/alerts/{id}`,
and the push to the phone carries only the `uncertain` flag."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from tests.conftest import RunningSystem
from tests.support.system import login, post_feedback, wait_for
from voc.events.v1 import events_pb2
from voc_cli.nats import NatsServer
from voc_cli.push_emulator import PushEmulator

LEAD = "minji@gangnam.demo"  # shift lead at store-gangnam
# A third language with no rating: the model's confidence is capped low (pinned in
# tests/feedback/test_classification.py), so the item is "uncertain".
UNSURE = {
    "store_id": "store-gangnam",
    "channel": "kiosk",
    "text": "La comida estaba muy fría y el servicio es lento",
}
# Plain English with a rating that agrees: confident.
SURE = {
    "store_id": "store-gangnam",
    "channel": "kiosk",
    "text": "The staff was rude and the table was dirty",
    "ratings": {"csat": 1},
}
FIELDS = ("confidence", "category_confidence", "model_version", "uncertain")


async def _post_and_read_events(
    system: RunningSystem, nats_url: str, bodies: list[dict[str, Any]]
) -> tuple[list[str], dict[str, events_pb2.FeedbackReceived]]:
    """Post `bodies` with an ordered JetStream consumer on voc.feedback.received already open,
    and return their ids and the event published for each."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(
            "voc.feedback.received",
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )
        ids = []
        for body in bodies:
            response = await asyncio.to_thread(post_feedback, system, body)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        found: dict[str, events_pb2.FeedbackReceived] = {}
        async with asyncio.timeout(20):
            while len(found) < len(ids):
                msg = await sub.next_msg(timeout=20)
                event = events_pb2.FeedbackReceived.FromString(msg.data)
                if event.facts.feedback_id in ids:
                    found[event.facts.feedback_id] = event
        await sub.unsubscribe()
        return ids, found
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def phone(running_system: RunningSystem, push_emulator: PushEmulator) -> dict[str, Any]:
    headers = login(running_system, LEAD)
    subscription = push_emulator.new_subscription(label=f"{LEAD} (uncertain)")
    response = httpx.post(f"{running_system.url('notify')}/v1/devices", json=subscription, headers=headers)
    assert response.status_code == 201, response.text
    return {"headers": headers, "id": push_emulator.subscription_id(subscription)}


def test_the_confidence_travels_from_feedback_to_the_alert_and_the_phone(
    running_system: RunningSystem, nats_server: NatsServer, push_emulator: PushEmulator, phone: dict[str, Any]
) -> None:
    (unsure_id, sure_id), published = asyncio.run(
        _post_and_read_events(running_system, nats_server.url, [UNSURE, SURE])
    )
    admin = running_system.admin_headers
    feedback_url, notify = running_system.url("feedback"), running_system.url("notify")
    served = {
        fid: httpx.get(f"{feedback_url}/v1/feedback/{fid}", headers=admin).json()["classification"]
        for fid in (unsure_id, sure_id)
    }
    assert served[unsure_id]["uncertain"] is True and served[unsure_id]["confidence"] < 0.6
    assert served[sure_id]["uncertain"] is False and served[sure_id]["confidence"] >= 0.6

    # The event says what GET /v1/feedback/{id} says.
    for fid, event in published.items():
        assert event.HasField("confidence") and event.HasField("category_confidence")
        assert event.confidence == pytest.approx(served[fid]["confidence"])
        assert event.category_confidence == pytest.approx(served[fid]["category_confidence"])
        assert event.model_version == served[fid]["model_version"] and event.model_version
        assert event.uncertain is served[fid]["uncertain"]
        assert event.facts.sentiment == served[fid]["sentiment"]

    # The alert shows it, in the inbox and in the detail.
    def alert_of(fid: str) -> dict[str, Any] | None:
        page = httpx.get(f"{notify}/v1/alerts?limit=200", headers=phone["headers"]).json()["alerts"]
        return next((a for a in page if a["feedback_id"] == fid), None)

    for fid in (unsure_id, sure_id):
        summary = wait_for(lambda fid=fid: alert_of(fid))
        detail = httpx.get(f"{notify}/v1/alerts/{summary['id']}", headers=phone["headers"]).json()
        expected = {
            "sentiment": served[fid]["sentiment"],
            "category": served[fid]["category"],
            **{key: served[fid][key] for key in FIELDS},
            "confidence": pytest.approx(served[fid]["confidence"]),
            "category_confidence": pytest.approx(served[fid]["category_confidence"]),
        }
        assert summary["classification"] == expected
        assert detail["classification"] == expected

        # The push: the flag only, nothing of the scores or the model.
        push = wait_for(
            lambda fid=fid: next(
                (p for p in push_emulator.received(phone["id"]) if (p.json or {}).get("feedback_id") == fid),
                None,
            ),
            timeout=15,
        )
        assert push.json["uncertain"] is served[fid]["uncertain"]
        assert not {"confidence", "category_confidence", "model_version", "classification"} & set(push.json)
