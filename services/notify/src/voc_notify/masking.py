"""The lock-screen text of an alert: its title and a body with personal data masked (the text
masking itself is `voc_platform.masking.mask_text`, shared with profile's recent contacts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voc_notify.facts import CustomerContext
from voc_notify.models import Alert, Store
from voc_platform.masking import mask_text
from voc_platform.taxonomy import label

PRIORITY_LABEL = {
    "ko": {"urgent": "긴급", "normal": "알림", "info": "공유"},
    "en": {"urgent": "URGENT", "normal": "Alert", "info": "FYI"},
}


def compose(
    *,
    store_name: str,
    category: str,
    priority: str,
    customer: CustomerContext,
    text: str,
    ratings: Mapping[str, Any],
    language: str,
) -> tuple[str, str]:
    """(title, body) for the push: masked PII only."""
    lang = language if language in ("ko", "en") else "en"
    tag = PRIORITY_LABEL[lang].get(priority, "")
    title = f"[{tag}] {label(category, lang)} · {store_name}"
    who = []
    if customer.known:
        who.append(customer.masked_name or ("고객" if lang == "ko" else "Customer"))
        if customer.tier:
            who.append(str(customer.tier).upper())
        repeat = customer.repeat_count(category)
        if repeat >= 2:
            who.append(f"반복 {repeat}회" if lang == "ko" else f"repeat x{repeat}")
    else:
        who.append("비회원" if lang == "ko" else "Anonymous")
    excerpt = mask_text(text or "")
    score = f" CSAT {ratings['csat']}" if ratings.get("csat") is not None else ""
    body = f"{' · '.join(who)}{score} — {excerpt}" if excerpt else f"{' · '.join(who)}{score}"
    return title, body


def more(updates: int, language: str) -> str:
    """The title's suffix once repeat complaints were folded in."""
    return f"추가 {updates}건" if language == "ko" else f"+{updates} more"


def push_text(alert: Alert, *, store: Store | None, language: str) -> tuple[str, str]:
    """The push's (title, body) in one recipient's language, from the stored alert. The alert row
    keeps the store's language for the inbox; each phone's lock screen speaks its owner's."""
    lang = language if language in ("ko", "en") else "en"
    latest = dict(alert.feedback or {})
    if alert.updates and alert.related_feedback:
        latest.update(alert.related_feedback[-1])  # the body quotes the newest complaint
    title, body = compose(
        store_name=store.name if store is not None else alert.store_id,
        category=latest["category"],
        priority=alert.priority,
        customer=CustomerContext.from_stored(alert.context),
        text=latest.get("text") or "",
        ratings=latest.get("ratings") or {},
        language=lang,
    )
    if alert.updates:
        title = f"{title} ({more(alert.updates, lang)})"
    return title, body
