"""What an alert keeps once its customer was erased or its words outlived the retention: the
context of nobody (`ERASED_CONTEXT`, `EXPIRED_CONTEXT`), empty texts, a body composed again
without the customer or the text, a plan without its scripts and without the name in its title
and steps, a heads-up without who arrived and why, an empty resolution note; what happened, who
handled it and when stay. One rule for the three ways an alert gets there: an erasure
(`erasure`), the retention pass, and an alert made after its customer's erasure (a lagging
consumer: `events`)."""

from __future__ import annotations

from typing import Any

from voc_notify.facts import UNKNOWN_CUSTOMER
from voc_notify.masking import compose, heads_up_text
from voc_notify.models import Alert, Store
from voc_platform.masking import mask_inserted_names

ERASED_CONTEXT: dict[str, Any] = {"known": False, "erased": True}
EXPIRED_CONTEXT: dict[str, Any] = {"known": False, "expired": True}


def redact_alert(alert: Alert, store: Store | None, *, context: dict[str, Any], now: float) -> None:
    """The alert (a row, or one about to be written) as `context` leaves it: its customer's
    words and who they are gone."""
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
    alert.context = dict(context)
    alert.redacted_at = now
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
             "expired" if context.get("expired") else "erased": True}
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
