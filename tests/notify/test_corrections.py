"""The alert hears a correction of its feedback's labels (#17): `voc.feedback.corrected` sets the
alert's classification and category with who corrected it, open apps are told, the
`feedback.corrected` webhook goes out signed; a redelivery or an older correction changes
nothing. Real database, real broker, real receiver on loopback. (The staff app's correction
through notify to feedback, end to end: tests/browser/test_corrections.py.)"""

from __future__ import annotations

import time
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.notify.conftest import new_alert
from tests.notify.test_webhooks import hooks
from tests.support.webhook_receiver import WebhookReceiver
from voc.events.v1 import events_pb2
from voc_notify import views
from voc_notify.corrections import CorrectionConsumer
from voc_notify.models import Alert
from voc_notify.stream import AlertBroker, Listener
from voc_platform.db import Database


def corrected(
    feedback_id: str, *, at: float, category: str, by: str = "lead"
) -> events_pb2.ClassificationCorrected:
    return events_pb2.ClassificationCorrected(
        correction_id=f"c-{at}",
        feedback_id=feedback_id,
        store_id="s1",
        sentiment="neutral",
        category=category,
        previous_sentiment="negative",
        previous_category="cleanliness",
        sentiment_corrected=True,
        category_corrected=True,
        model_version="hashlr-2-test",
        corrected_by=by,
        corrected_at_ms=int(at * 1000),
    )


async def shown(db: Database, alert_id: str) -> dict[str, Any]:
    async with db.session() as s:
        alert = await s.get(Alert, alert_id)
        assert alert is not None
        return views.alert_summary(alert)


async def test_a_correction_updates_the_alert_tells_the_app_and_goes_out_as_a_webhook(
    notify_db: Database,
    webhook_receiver: WebhookReceiver,
) -> None:
    created = await new_alert(notify_db, "fb-corr-1", now=time.time())
    assert created is not None
    alert_id = created.alert.id
    broker = AlertBroker()
    listener = Listener(staff_id="lead", store_ids=frozenset({"s1"}), area_id=None, all_stores=False)
    broker.register(listener)
    consumer = CorrectionConsumer(notify_db, broker)
    async with hooks(notify_db) as h:
        endpoint = await h.register(webhook_receiver.url("/corr"), events=["feedback.corrected"])
        now = time.time()
        event = corrected("fb-corr-1", at=now, category="wait_time")
        for _ in range(2):  # a redelivery: nothing more
            await consumer.record(event, "ev-corr-1")
        summary = await shown(notify_db, alert_id)
        assert summary["category"] == "wait_time"
        labels = summary["classification"]
        assert labels["sentiment"] == "neutral" and labels["category"] == "wait_time"
        assert labels["corrected"] == {
            "by": "lead",
            "at": int(now * 1000) / 1000,
            "previous_sentiment": "negative",
            "previous_category": "cleanliness",
        }
        told = listener.queue.get_nowait()
        assert told["type"] == "alert.updated" and told["alert"]["classification"]["category"] == "wait_time"
        assert listener.queue.empty()

        # A correction older than the one shown (an event that arrives late) does not win.
        await consumer.record(corrected("fb-corr-1", at=now - 60, category="delivery"), "ev-corr-0")
        assert (await shown(notify_db, alert_id))["category"] == "wait_time"

        assert [d.event_type for d in await h.deliveries(endpoint["id"])] == ["feedback.corrected"] * 2
        await h.send_due()
        arrived = webhook_receiver.wait_for(2, "/corr")
        bodies = [Webhook(endpoint["secret"]).verify(a.body, a.headers) for a in arrived]
        first = next(b for b in bodies if b["data"]["category"] == "wait_time")
        assert first["type"] == "feedback.corrected"
        assert first["data"]["feedback_id"] == "fb-corr-1" and first["data"]["corrected_by"] == "lead"
        assert first["data"]["previous_category"] == "cleanliness" and first["data"]["sentiment_corrected"]
