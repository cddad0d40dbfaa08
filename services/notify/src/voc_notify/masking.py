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
    "ko": {"urgent": "긴급", "normal": "일반", "info": "참고"},
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
    reopened: bool = False,
) -> tuple[str, str]:
    """(title, body) for the push: masked PII only. `reopened`: an unhappy follow-up answer
    reopened a case, said first so it is not read as a new complaint."""
    lang = language if language in ("ko", "en") else "en"
    tag = PRIORITY_LABEL[lang].get(priority, "")
    again = f"{REOPENED[lang]} · " if reopened else ""
    title = f"[{tag}] {again}{label(category, lang)} · {store_name}"
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


REOPENED = {"ko": "재오픈", "en": "Reopened"}


def more(updates: int, language: str) -> str:
    """The title's suffix once repeat complaints were folded in."""
    return f"추가 {updates}건" if language == "ko" else f"+{updates} more"


KIND_LABEL = {
    "ko": {"pattern": "패턴", "heads_up": "방문"},
    "en": {"pattern": "Pattern", "heads_up": "Arriving"},
}


def pattern_text(
    *,
    store_name: str,
    category: str,
    priority: str,
    customers: int,
    window_minutes: int,
    items: list[dict[str, Any]],
    language: str,
) -> tuple[str, str]:
    """(title, body) of a pattern alert: how many customers raised the category, and the newest
    item's masked excerpt (the items themselves are stored masked)."""
    lang = language if language in ("ko", "en") else "en"
    tag = PRIORITY_LABEL[lang].get(priority, "")
    title = f"[{tag}] {KIND_LABEL[lang]['pattern']} · {label(category, lang)} · {store_name}"
    if lang == "ko":
        head = f"{window_minutes}분 동안 고객 {customers}명이 같은 불만"
    else:
        head = f"{customers} customers in {window_minutes} min, same complaint"
    latest = next((str(i.get("excerpt") or "") for i in items if i.get("excerpt")), "")
    return title, f"{head} — {mask_text(latest, 80)}" if latest else head


def heads_up_text(
    *,
    store_name: str,
    masked_name: str,
    tier: str,
    reasons: list[str],
    language: str,
) -> tuple[str, str]:
    """(title, body) of a heads-up: who arrived (masked) and why staff should be ready."""
    lang = language if language in ("ko", "en") else "en"
    who = masked_name or ("고객" if lang == "ko" else "A customer")
    if tier:
        who = f"{who} ({str(tier).upper()})"
    title = f"[{KIND_LABEL[lang]['heads_up']}] {who} · {store_name}"
    arrived = "방금 도착했습니다" if lang == "ko" else "just arrived"
    because = "; ".join(reasons[:3])
    return title, f"{who} {arrived} — {mask_text(because, 100)}" if because else f"{who} {arrived}"


def push_text(alert: Alert, *, store: Store | None, language: str) -> tuple[str, str]:
    """The push's (title, body) in one recipient's language, from the stored alert. The alert row
    keeps the store's language for the inbox; each phone's lock screen speaks its owner's."""
    lang = language if language in ("ko", "en") else "en"
    store_name = store.name if store is not None else alert.store_id
    if alert.kind == "pattern":
        items = list(alert.items or [])
        pattern = (alert.context or {}).get("pattern") or {}
        return pattern_text(
            store_name=store_name, category=alert.category, priority=alert.priority,
            customers=int(pattern.get("customers") or len(items)),
            window_minutes=int(pattern.get("window_minutes") or 60),
            items=items, language=lang,
        )  # fmt: skip
    if alert.kind == "heads_up":
        arrival = (alert.items or [{}])[0]
        return heads_up_text(
            store_name=store_name, masked_name=str(arrival.get("masked_name") or ""),
            tier=str(arrival.get("tier") or ""), reasons=list(arrival.get(f"reasons_{lang}") or []),
            language=lang,
        )  # fmt: skip
    latest = dict(alert.feedback or {})
    if alert.updates and alert.related_feedback:
        latest.pop("lock_text", None)
        latest.update(alert.related_feedback[-1])  # the body quotes the newest complaint
    title, body = compose(
        store_name=store.name if store is not None else alert.store_id,
        category=latest["category"],
        priority=alert.priority,
        customer=CustomerContext.from_stored(alert.context),
        text=latest.get("lock_text") or latest.get("text") or "",
        ratings=latest.get("ratings") or {},
        language=lang,
        reopened=bool((alert.feedback or {}).get("reopens_id")),
    )
    if alert.updates:
        title = f"{title} ({more(alert.updates, lang)})"
    return title, body
