"""Erasure (`voc.profile.customer_erased`): notify's copies of an erased customer are redacted.

An alert keeps what it was made from: the masked customer context (with the recent contacts'
excerpts and the household), the feedback's text and the texts of repeats folded into it, a
lock-screen body quoting the text, and the plan whose script was rendered with the customer's
name. For every alert of the customer these become the context of nobody (`{"known": false,
"erased": true}`), empty texts, a body composed again without the customer or the text, a plan
without its scripts and without the name in its title and steps (`alerts.customer_name`), and a
heads-up without who arrived and why, and an empty resolution note; the alert itself (what
happened, who handled it, when) stays. A
household member named in another customer's alert is dropped from that alert's household. The
customer's pending follow-up messages are not sent, and drop the contact they copied.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from voc.events.v1 import events_pb2
from voc_notify import follow_ups
from voc_notify.facts import UNKNOWN_CUSTOMER
from voc_notify.masking import compose, heads_up_text
from voc_notify.models import Alert, Store, processed_table
from voc_platform.bus import ConsumerSpec
from voc_platform.db import Database
from voc_platform.masking import mask_inserted_names
from voc_platform.outbox import mark_processed

log = logging.getLogger(__name__)
CONSUMER = "notify-erasure"
SUBJECT = "voc.profile.customer_erased"
ERASED_CONTEXT: dict[str, Any] = {"known": False, "erased": True}


def consumers(database: Database) -> list[ConsumerSpec]:
    async def handle(msg: Msg) -> None:
        erased = events_pb2.CustomerErased.FromString(msg.data)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", "") or f"erased:{erased.customer_id}"
        async with database.transaction() as session:
            if await mark_processed(session, processed_table, consumer=CONSUMER, event_id=event_id):
                count = await redact_customer(session, customer_id=erased.customer_id)
                dropped = await follow_ups.forget_customer(
                    session, customer_id=erased.customer_id, now=time.time()
                )
                log.info("erasure: %d alerts redacted, %d follow-up messages dropped", count, dropped)

    return [ConsumerSpec(durable=CONSUMER, subjects=[SUBJECT], handler=handle)]


async def redact_customer(session: AsyncSession, *, customer_id: str) -> int:
    """Redact every copy of the customer's data in the alerts; how many alerts changed."""
    if not customer_id:
        return 0
    own = list(await session.scalars(select(Alert).where(Alert.customer_id == customer_id)))
    stores = {
        s.id: s for s in await session.scalars(select(Store).where(Store.id.in_({a.store_id for a in own})))
    }
    for alert in own:
        _redact_alert(alert, stores.get(alert.store_id))
    # Another customer's alert may name this one as a household member.
    named = await session.scalars(
        select(Alert).where(
            Alert.customer_id != customer_id, cast(Alert.context, String).contains(customer_id)
        )
    )
    others = 0
    for alert in named:
        household = (alert.context or {}).get("household") or {}
        members = household.get("members") or []
        kept = [m for m in members if m.get("customer_id") != customer_id]
        if len(kept) != len(members):
            alert.context = {**alert.context, "household": {**household, "members": kept}}
            others += 1
    return len(own) + others


def _redact_alert(alert: Alert, store: Store | None) -> None:
    feedback = dict(alert.feedback or {})
    if feedback:
        feedback["text"] = ""
        feedback.pop("lock_text", None)
        alert.feedback = feedback
        alert.title, alert.body = compose(
            store_name=store.name if store is not None else alert.store_id,
            category=feedback.get("category") or alert.category,
            priority=alert.priority,
            customer=UNKNOWN_CUSTOMER,
            text="",
            ratings=feedback.get("ratings") or {},
            language=store.language if store is not None else "ko",
            reopened=bool(feedback.get("reopens_id")),
        )
    alert.context = dict(ERASED_CONTEXT)
    alert.related_feedback = [
        {key: value for key, value in {**item, "text": ""}.items() if key != "lock_text"}
        for item in alert.related_feedback or []
    ]
    plan = dict(alert.plan or {})
    if plan:
        plan["script"] = ""
        plan["translations"] = [{**t, "script": ""} for t in plan.get("translations") or []]
        alert.plan = _without_name(plan, alert.customer_name)
    if alert.kind == "heads_up":
        # The arrival: who, their tier and why staff were told go; when and where stay.
        alert.items = [
            {"visit_id": i.get("visit_id"), "channel": i.get("channel"), "occurred_at": i.get("occurred_at"),
             "erased": True}
            for i in alert.items or []
        ]  # fmt: skip
        alert.title, alert.body = heads_up_text(
            store_name=store.name if store is not None else alert.store_id, masked_name="", tier="",
            reasons=[], language=store.language if store is not None else "ko",
        )  # fmt: skip
    if alert.note:  # what staff wrote on resolving: about this customer, often naming them
        alert.note = ""
    alert.customer_name = None
    alert.customer_id = None


# What the customer's name becomes in a plan's texts once they are erased.
_NOBODY = {"ko": "고객", "en": "the customer"}


def _without_name(plan: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The plan's title and steps (and their translations) with the name it was rendered with
    replaced by a plain word (`{customer.name}` may stand in a title or a step, not only in the
    script)."""
    if not name:
        return plan

    def scrub(text: str, language: str) -> str:
        return mask_inserted_names(text, name, replacement=_NOBODY.get(language, _NOBODY["en"]))

    language = str(plan.get("language") or "ko")
    return {
        **plan,
        "title": scrub(str(plan.get("title") or ""), language),
        "steps": [
            {**step, "text": scrub(str(step.get("text") or ""), language)} for step in plan.get("steps") or []
        ],
        "translations": [
            {
                **t,
                "title": scrub(str(t.get("title") or ""), str(t.get("language"))),
                "steps": [scrub(str(text), str(t.get("language"))) for text in t.get("steps") or []],
            }
            for t in plan.get("translations") or []
        ],
    }
