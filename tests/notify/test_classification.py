"""How sure the classifier was reaches the alert (#17): `voc.feedback.received` carries the
confidence, the model version and `uncertain`; the alert stores them (migration 0006) and serves
them as `classification` in the inbox, the detail and the live stream; the push says only
`uncertain`; alerts made before the migration show no confidence and are not flagged."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.conftest import DatabaseFactory
from tests.notify.conftest import MIGRATIONS, known, raise_alert
from voc.events.v1 import events_pb2
from voc_notify import views
from voc_notify.events import feedback_of
from voc_notify.facts import Feedback
from voc_notify.models import Alert
from voc_notify.settings import Settings
from voc_notify.workers import push_payload
from voc_platform import migrations
from voc_platform.db import Database
from voc_platform.identity import Principal

NOW = 1_790_000_000.0
LEAD = Principal("lead", "shift_lead", ("s1",), None)
UNSURE = {
    "sentiment": "negative",
    "category": "cleanliness",
    "confidence": 0.42,
    "category_confidence": 0.31,
    "model_version": "hashlr-1-test",
    "uncertain": True,
}


def unsure(feedback_id: str) -> Feedback:
    return Feedback(
        id=feedback_id,
        category="cleanliness",
        sentiment="negative",
        text="La mesa estaba sucia",
        confidence=0.42,
        category_confidence=0.31,
        model_version="hashlr-1-test",
        uncertain=True,
    )


def test_the_event_s_confidence_becomes_the_alert_input() -> None:
    event = events_pb2.FeedbackReceived(
        text="dirty", confidence=0.42, category_confidence=0.31, model_version="hashlr-1-test", uncertain=True
    )
    event.facts.feedback_id, event.facts.category, event.facts.sentiment = "f-1", "cleanliness", "negative"
    assert feedback_of(event).classification() == UNSURE

    # A producer from before #17 sent none: no confidence (not 0.0), and not flagged.
    old = events_pb2.FeedbackReceived(text="dirty")
    old.facts.feedback_id, old.facts.category, old.facts.sentiment = "f-2", "cleanliness", "negative"
    assert feedback_of(old).classification() == {
        "sentiment": "negative",
        "category": "cleanliness",
        "confidence": None,
        "category_confidence": None,
        "model_version": None,
        "uncertain": False,
    }


async def test_an_uncertain_alert_says_so_in_the_api_and_the_push_says_only_that(
    notify_db: Database,
) -> None:
    created = await raise_alert(notify_db, unsure("f-unsure"), now=NOW, customer=known("c-1"))
    assert created is not None and not created.merged
    assert views.alert_summary(created.alert)["classification"] == UNSURE  # the live event
    sure = Feedback(
        id="f-sure", category="wait_time", sentiment="negative", confidence=0.97,
        category_confidence=0.9, model_version="hashlr-1-test", uncertain=False,
    )  # fmt: skip
    assert await raise_alert(notify_db, sure, now=NOW + 1) is not None

    async with notify_db.session() as s:
        page = await views.inbox(s, principal=LEAD, status=None, limit=10, before=None)
        by_feedback = {a["feedback_id"]: a for a in page["alerts"]}
        assert by_feedback["f-unsure"]["classification"] == UNSURE
        assert by_feedback["f-sure"]["classification"] == {
            "sentiment": "negative",
            "category": "wait_time",
            "confidence": 0.97,
            "category_confidence": 0.9,
            "model_version": "hashlr-1-test",
            "uncertain": False,
        }
        alert = await s.get(Alert, created.alert.id)
        assert alert is not None
        assert views.alert_detail(alert)["classification"] == UNSURE
        # The push carries one boolean of it: no scores, no model version on a lock screen.
        payload = json.loads(push_payload(alert, Settings(), store=None, language="ko"))
        assert payload["uncertain"] is True
        assert not {"confidence", "category_confidence", "model_version", "classification"} & set(payload)
        sure_alert = await s.get(Alert, by_feedback["f-sure"]["id"])
        assert sure_alert is not None
        sure_payload = json.loads(push_payload(sure_alert, Settings(), store=None, language="ko"))
        assert sure_payload["uncertain"] is False

    # A repeat folded into the open alert: the alert keeps its own classification in the event.
    repeat = await raise_alert(notify_db, unsure("f-unsure-2"), now=NOW + 60, customer=known("c-1"))
    assert repeat is not None and repeat.merged
    assert views.alert_summary(repeat.alert)["classification"] == UNSURE


async def test_alerts_from_before_the_migration_show_no_confidence(databases: DatabaseFactory) -> None:
    database = Database(databases.url("notify_classification"))
    await migrations.upgrade(database, MIGRATIONS, name="notify", revision="0005")
    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO alerts (id, feedback_id, store_id, area_id, customer_id, category, priority,"
                " status, title, body, feedback, context, plan, degraded, escalation_level, created_at)"
                " VALUES ('a-old', 'f-old', 's1', NULL, NULL, 'cleanliness', 'normal', 'open', 't', 'b',"
                " :feedback, '{\"known\": false}', '{}', '[]', 0, 1)"
            ),
            {"feedback": json.dumps({"id": "f-old", "category": "cleanliness", "sentiment": "negative"})},
        )
    await migrations.upgrade(database, MIGRATIONS, name="notify")
    async with database.session() as s:
        alert = await s.get(Alert, "a-old")
        assert alert is not None and alert.classification is None
        assert views.alert_detail(alert)["classification"] == {
            "sentiment": "negative",
            "category": "cleanliness",
            "confidence": None,
            "category_confidence": None,
            "model_version": None,
            "uncertain": False,
        }
        assert json.loads(push_payload(alert, Settings(), store=None, language="en"))["uncertain"] is False
    await database.dispose()
