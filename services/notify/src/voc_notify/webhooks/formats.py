"""The shape a delivery takes per endpoint: `standard` (the signed Standard Webhooks body),
`slack` (an incoming-webhook message: `text` plus Block Kit blocks) or `teams` (an Adaptive
Card for a Teams Workflows webhook), so a store manager's channel gets alerts without a relay. The same
headers and signature go with every shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

FORMATS: Final = ("standard", "slack", "teams")
_TITLES: Final = {
    "feedback.received": "New feedback",
    "feedback.classified": "Feedback classified",
    "feedback.corrected": "Classification corrected",
    "alert.created": "New alert",
    "alert.acknowledged": "Alert acknowledged",
    "alert.resolved": "Alert resolved",
    "alert.escalated": "Alert escalated",
    "follow_up.sent": "Follow-up sent",
    "follow_up.answered": "Follow-up answered",
    "customer.erased": "Customer erased",
    "webhook.test": "Test message",
}
_CARD_COLOURS: Final = {"urgent": "Attention", "normal": "Warning", "info": "Good"}


#: The customer's answers (`follow_up.answered`): a "no" is news, said like a "yes".
_ANSWERS: Final = frozenset({"satisfied", "revisit_intent"})


def _facts(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The payload flattened to (name, value) lines, in order; what says nothing (empty, null,
    a flag that is false: "vip: False" on every alert) is left out of a message people read,
    but not a customer's "no"."""
    found: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if value is False and key in _ANSWERS:
            found.append((name, "no"))
            continue
        if value is None or value is False or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, dict):
            found.extend(_facts(value, f"{name}."))
        elif isinstance(value, list):
            found.append((name, ", ".join(str(v) for v in value)))
        else:
            found.append((name, str(value)))
    return found


def title_of(body: dict[str, Any], store_names: Mapping[str, str] | None = None) -> str:
    """ "New alert (urgent) at 강남역점": the store by its name where `store_names` has it."""
    kind = str(body.get("type", ""))
    data = body.get("data") or {}
    title = _TITLES.get(kind, kind)
    where = data.get("store_id")
    if where and store_names:
        where = store_names.get(str(where), where)
    priority = data.get("priority")
    parts = [title]
    if priority:
        parts.append(f"({priority})")
    if where:
        parts.append(f"at {where}")
    return " ".join(parts)


def slack(body: dict[str, Any], store_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    facts = _facts(body.get("data") or {})
    title = title_of(body, store_names)
    lines = "\n".join(f"*{name}*: {value}" for name, value in facts) or "-"
    return {
        "text": f"{title} [{body.get('type')}]",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:2900]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{body.get('type')} · {body.get('timestamp')}"}],
            },
        ],
    }


def teams(body: dict[str, Any], store_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A message with one Adaptive Card, the shape a Teams Workflows webhook ("Send webhook
    alerts to a channel") posts; Office 365 connectors and their MessageCard were retired by
    Microsoft on 2026-03-31."""
    data = body.get("data") or {}
    title = title_of(body, store_names)
    priority = str(data.get("priority", ""))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": _CARD_COLOURS.get(priority, "Default"),
            },
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(data)]},
            {
                "type": "TextBlock",
                "text": f"{body.get('type')} · {body.get('timestamp')}",
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            },
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def render(body: bytes, format: str, store_names: Mapping[str, str] | None = None) -> bytes:
    """The bytes sent for a stored standard body in the endpoint's format (a chat message names
    the store; the signed standard body carries its id only)."""
    if format == "standard":
        return body
    parsed = orjson.loads(body)
    return orjson.dumps(slack(parsed, store_names) if format == "slack" else teams(parsed, store_names))
