"""The shape a delivery takes per endpoint: `standard` (the signed Standard Webhooks body),
`slack` (an incoming-webhook message: `text` plus Block Kit blocks) or `teams` (an Adaptive
Card for a Teams Workflows webhook), so a store manager's channel gets alerts without a relay.
The same headers and signature go with every shape.

A chat message is for people: in the store's language (Korean or English), its times in the
store's zone, stores and staff by name, fields by label and values in words, identifiers in a
footer, and a button that opens the alert in the staff app. It carries what the signed body
carries and nothing more (no free text; personal data masked)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from voc_notify import words
from voc_platform import taxonomy
from voc_platform.timezones import known_zone

FORMATS: Final = ("standard", "slack", "teams")

_TITLES: Final = {
    "en": {
        "feedback.received": "New feedback",
        "feedback.classified": "Feedback classified",
        "feedback.corrected": "Classification corrected",
        "alert.created": "New alert",
        "alert.repeated": "Repeat complaint",
        "alert.acknowledged": "Alert acknowledged",
        "alert.resolved": "Alert resolved",
        "alert.escalated": "Alert escalated",
        "follow_up.sent": "Follow-up sent",
        "follow_up.delivered": "Follow-up delivered",
        "follow_up.undelivered": "Follow-up not delivered",
        "follow_up.answered": "Follow-up answered",
        "customer.erased": "Customer erased",
        "webhook.test": "Test message",
    },
    "ko": {
        "feedback.received": "새 피드백",
        "feedback.classified": "피드백 분류",
        "feedback.corrected": "분류 수정",
        "alert.created": "새 알림",
        "alert.repeated": "반복 불만",
        "alert.acknowledged": "알림 확인",
        "alert.resolved": "알림 해결",
        "alert.escalated": "알림 상향 전달",
        "follow_up.sent": "고객 후속 안내 발송",
        "follow_up.delivered": "고객 후속 안내 전달됨",
        "follow_up.undelivered": "고객 후속 안내 전달 실패",
        "follow_up.answered": "고객 후속 응답",
        "customer.erased": "고객 정보 삭제",
        "webhook.test": "테스트 메시지",
    },
}
_RESOLVE_SLA_PASSED: Final = {"ko": "해결 기한 초과", "en": "resolve deadline passed"}
_CARD_COLOURS: Final = {"urgent": "Attention", "normal": "Warning", "info": "Good"}

#: Field labels; a field not here keeps its name.
_LABELS: Final = {
    "ko": {
        "store_id": "매장", "category": "분류", "priority": "우선순위", "staff_id": "담당",
        "recipient_staff_ids": "받는 사람", "roles": "역할", "level": "단계",
        "playbook_id": "대응 매뉴얼", "outcome": "결과", "steps_done": "완료한 단계",
        "channel": "채널", "touchpoint": "접점", "language": "언어", "ratings": "평점",
        "revisit_intent": "재방문 의향", "occurred_at": "발생", "received_at": "접수",
        "created_at": "발생", "acknowledged_at": "확인", "resolved_at": "해결",
        "escalated_at": "전달", "answered_at": "응답", "corrected_at": "수정",
        "erased_at": "삭제", "at": "발송", "customer": "고객", "sentiment": "감정",
        "severity": "심각도", "confidence": "확신도", "category_confidence": "분류 확신도",
        "uncertain": "불확실", "model_version": "모델", "previous_sentiment": "이전 감정",
        "previous_category": "이전 분류", "corrected_by": "수정한 사람", "attempt": "시도",
        "recipient": "받는 곳", "csat": "만족도 (CSAT)", "satisfied": "만족",
        "reopened_feedback_id": "다시 열림", "degraded": "일부 정보 없음",
        "message": "내용", "kind": "종류", "score": "점수", "phone": "전화", "email": "이메일",
        "name": "이름", "loyalty_id": "멤버십 번호", "channel_user_id": "채널 사용자",
        "next_attempt_at": "다음 시도", "sentiment_corrected": "감정 수정",
        "category_corrected": "분류 수정", "nps": "추천 의향 (NPS)", "ces": "이용 편의 (CES)",
        "updates": "같은 고객의 반복 불만",
    },
    "en": {
        "store_id": "Store", "category": "Category", "priority": "Priority", "staff_id": "By",
        "recipient_staff_ids": "Paged", "roles": "Roles", "level": "Level",
        "playbook_id": "Playbook", "outcome": "Outcome", "steps_done": "Steps done",
        "channel": "Channel", "touchpoint": "Touchpoint", "language": "Language",
        "ratings": "Ratings", "revisit_intent": "Would return", "occurred_at": "Occurred",
        "received_at": "Received", "created_at": "At", "acknowledged_at": "Acknowledged",
        "resolved_at": "Resolved", "escalated_at": "Escalated", "answered_at": "Answered",
        "corrected_at": "Corrected", "erased_at": "Erased", "at": "Sent", "customer": "Customer",
        "sentiment": "Sentiment", "severity": "Severity", "confidence": "Confidence",
        "category_confidence": "Category confidence", "uncertain": "Uncertain",
        "model_version": "Model", "previous_sentiment": "Previous sentiment",
        "previous_category": "Previous category", "corrected_by": "Corrected by",
        "attempt": "Attempt", "recipient": "To", "csat": "CSAT", "satisfied": "Satisfied",
        "reopened_feedback_id": "Case reopened", "degraded": "Missing context",
        "message": "Message", "kind": "Kind", "score": "Score", "phone": "Phone",
        "email": "E-mail", "name": "Name", "loyalty_id": "Loyalty id",
        "channel_user_id": "Channel user", "next_attempt_at": "Next attempt",
        "sentiment_corrected": "Sentiment corrected", "category_corrected": "Category corrected",
        "nps": "NPS", "ces": "CES", "updates": "Repeat complaints",
    },
}  # fmt: skip
#: Values said in words, per field.
_VALUES: Final = {
    "ko": {
        "priority": {"urgent": "긴급", "normal": "일반", "info": "참고"},
        "sentiment": {"positive": "긍정", "neutral": "중립", "negative": "부정"},
        "severity": {"low": "낮음", "medium": "보통", "high": "높음", "critical": "심각"},
        "channel": {"kiosk": "키오스크", "app": "앱", "web": "웹", "survey": "설문", "sms": "문자",
                    "email": "이메일", "call_center": "콜센터", "chatbot": "챗봇", "social": "소셜"},
        "language": {"ko": "한국어", "en": "영어"},
        "kind": {"feedback": "피드백", "pattern": "반복 패턴", "heads_up": "방문 알림"},
    },
    "en": {
        "channel": {"call_center": "call center"},
        "language": {"ko": "Korean", "en": "English"},
        "kind": {"heads_up": "heads-up"},
    },
}  # fmt: skip
_YES_NO: Final = {"ko": ("예", "아니요"), "en": ("yes", "no")}
_OPEN: Final = {"ko": "앱에서 열기", "en": "Open in the app"}
_TEST_MESSAGE: Final = {
    "ko": "Frontline VoC의 테스트 메시지입니다.",
    "en": "A test message from Frontline VoC.",
}

#: Said first, whatever their place in the payload: what the message is about.
_FIRST: Final = ("category",)
#: Said elsewhere: the store in the title; an alert of a single feedback item is the usual kind.
_UNSAID: Final = {
    "store_id": None, "playbook_version": None, "playbook_title": None, "steps_total": None,
    "kind": "feedback", "updates": 0,
}  # fmt: skip
#: In the signed body for systems, not in a message people read: what a store app wrote
#: (`touchpoint`, any 64 characters from a kiosk's key, where a link would look like ours), and
#: an erased customer's feedback ids (up to 1,000, for systems to find their copies).
_UNREAD: Final = frozenset({"touchpoint", "feedback_ids", "feedback_ids_truncated"})
#: Identifiers: in the footer, for whoever needs to look the case up, not among the facts.
_FOOTER_IDS: Final = ("alert_id", "feedback_id", "customer_id", "correction_id", "endpoint_id")
#: A boolean that is news when false (a customer's "no"); other false flags say nothing.
_ANSWERS: Final = frozenset({"satisfied", "revisit_intent"})
_TIMES: Final = frozenset(
    {"occurred_at", "received_at", "created_at", "acknowledged_at", "resolved_at", "escalated_at",
     "answered_at", "corrected_at", "erased_at", "at", "next_attempt_at"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoreFacts:
    name: str
    timezone: str
    language: str


@dataclass(frozen=True, slots=True)
class ChatDirectory:
    """What a chat message names in words: stores (name, zone, language), staff by name, and the
    staff app's address (`VOC_NOTIFY_PUBLIC_URL`) for the button that opens an alert."""

    stores: Mapping[str, StoreFacts] = field(default_factory=dict)
    staff: Mapping[str, str] = field(default_factory=dict)
    app_url: str = ""

    @property
    def usual_language(self) -> str:
        """The language most stores speak: a message about no store (an erasure) speaks it."""
        counts = Counter(words.language(store.language) for store in self.stores.values())
        return counts.most_common(1)[0][0] if counts else "en"

    @property
    def usual_timezone(self) -> str | None:
        """The zone most stores are in: a message about no store tells its time there."""
        counts = Counter(store.timezone for store in self.stores.values())
        return counts.most_common(1)[0][0] if counts else None


@dataclass(frozen=True, slots=True)
class _Chat:
    """One event as a chat message: its title, its facts as (label, value), the footer and the
    link, in one language."""

    title: str
    facts: list[tuple[str, str]]
    footer: str
    link: str | None
    language: str
    priority: str


def _local_time(value: str, timezone: str | None) -> str:
    """ "2026-12-07 14:03 KST": an ISO 8601 time in the store's zone (UTC without a store)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    zone = known_zone(timezone) if timezone else None
    if zone is not None and moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname() or ''}".strip()


def _value(key: str, value: Any, *, language: str, zone: str | None, directory: ChatDirectory) -> str:
    yes, no = _YES_NO[language]
    if isinstance(value, bool):
        return yes if value else no
    if key == "store_id":
        known = directory.stores.get(str(value))
        return known.name if known else str(value)
    if key in ("staff_id", "corrected_by"):
        return directory.staff.get(str(value), str(value))
    if key == "recipient_staff_ids":
        return ", ".join(directory.staff.get(str(v), str(v)) for v in value)
    if key == "roles":
        roles = taxonomy.roles()
        return ", ".join(str(roles.get(str(v), {}).get(language, v)) for v in value)
    if key in ("category", "previous_category"):
        return taxonomy.label(str(value), language)
    if key in ("sentiment", "previous_sentiment"):
        return _VALUES[language].get("sentiment", {}).get(str(value), str(value))
    if key == "outcome":
        return words.OUTCOME[language].get(str(value), str(value))
    if key == "level" and value == -1:
        return _RESOLVE_SLA_PASSED[language]
    if key in ("confidence", "category_confidence") and isinstance(value, float):
        return f"{value:.0%}"
    if key in _TIMES and isinstance(value, str):
        return _local_time(value, zone)
    if key == "reopened_feedback_id":
        return yes
    if key == "updates" and language == "ko":
        return f"{value}건"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return _VALUES[language].get(key, {}).get(str(value), str(value))


def _facts(
    data: Mapping[str, Any],
    *,
    language: str,
    zone: str | None,
    directory: ChatDirectory,
    prefix: str = "",
) -> list[tuple[str, str]]:
    """The payload as (label, value) lines, in order. What says nothing (empty, null, a flag that
    is false: "vip: no" on every alert) is left out, but not a customer's "no"; identifiers go
    to the footer."""
    labels = _LABELS[language]
    found: list[tuple[str, str]] = []
    ordered = sorted(data.items(), key=lambda item: item[0] not in _FIRST)
    for key, value in ordered:
        if key in _FOOTER_IDS or key in _UNREAD or (key in _UNSAID and _UNSAID[key] in (None, value)):
            continue
        if value is False and key in _ANSWERS:
            found.append((f"{prefix}{labels.get(key, key)}", _YES_NO[language][1]))
            continue
        if value is None or value is False or value == "" or value == [] or value == {}:
            continue
        label = labels.get(key, key)
        name = f"{prefix}{label}"
        if isinstance(value, dict):
            inner = "" if key == "classification" else f"{name} · "
            found.extend(_facts(value, language=language, zone=zone, directory=directory, prefix=inner))
            continue
        said = _value(key, value, language=language, zone=zone, directory=directory)
        if key == "playbook_id":
            # People read the plan's title; its id and version go to the footer with the ids.
            said = str(data.get("playbook_title") or _playbook(data))
        if key == "steps_done" and data.get("steps_total"):
            said = f"{said}/{data['steps_total']}"
        found.append((name, said))
    return found


def _playbook(data: Mapping[str, Any]) -> str:
    """ "restaurant-food-safety-critical v2": a plan by its id and version."""
    version = data.get("playbook_version")
    return f"{data['playbook_id']} v{version}" if version else str(data["playbook_id"])


# The events whose chat message says the alert's priority (title, colour, facts): the alarm.
_PRIORITY_SHOWN: Final = frozenset({"alert.created"})


def _chat(body: Mapping[str, Any], directory: ChatDirectory) -> _Chat:
    kind = str(body.get("type", ""))
    data: dict[str, Any] = dict(body.get("data") or {})
    if kind not in _PRIORITY_SHOWN:
        # A resolution carries the priority for the case's sake; in a channel it would read as
        # an alarm ("Alert resolved (urgent)", a red card).
        data.pop("priority", None)
    store = directory.stores.get(str(data.get("store_id", "")))
    language = words.language(store.language) if store else directory.usual_language
    if kind == "webhook.test":
        data["message"] = _TEST_MESSAGE[language]
    zone = store.timezone if store else directory.usual_timezone
    title = _title(kind, data, language=language, store=store)
    facts = _facts(data, language=language, zone=zone, directory=directory)
    when = body.get("timestamp")
    footer_parts = [kind]
    if isinstance(when, str):
        footer_parts.append(_local_time(when, zone))
    footer_parts.extend(f"{key.removesuffix('_id')} {data[key]}" for key in _FOOTER_IDS if data.get(key))
    if data.get("playbook_id") and data.get("playbook_title"):
        footer_parts.append(f"playbook {_playbook(data)}")
    alert_id = data.get("alert_id")
    link = f"{directory.app_url.rstrip('/')}/#/alerts/{alert_id}" if alert_id and directory.app_url else None
    return _Chat(title, facts, " · ".join(footer_parts), link, language, str(data.get("priority", "")))


def _title(kind: str, data: Mapping[str, Any], *, language: str, store: StoreFacts | None) -> str:
    """ "New alert (urgent): Hygiene at 강남역점" / "새 알림 (긴급) · 위생 · 강남역점"."""
    if kind == "alert.created" and data.get("updates"):
        kind = "alert.repeated"  # a repeat complaint folded into the open alert, not a new one
    title = _TITLES[language].get(kind) or _TITLES["en"].get(kind, kind)
    priority = data.get("priority")
    if priority:
        title += f" ({_VALUES[language].get('priority', {}).get(str(priority), priority)})"
    category = data.get("category") if kind.startswith("alert.") else None
    where = store.name if store else data.get("store_id")
    if language == "ko":
        parts = [title]
        if category:
            parts.append(taxonomy.label(str(category), "ko"))
        if where:
            parts.append(str(where))
        return " · ".join(parts)
    if category:
        title += f": {taxonomy.label(str(category), 'en')}"
    return f"{title} at {where}" if where else title


def title_of(body: Mapping[str, Any], directory: ChatDirectory | None = None) -> str:
    """A chat message's title: the event in words, its priority, category and store."""
    return _chat(body, directory or ChatDirectory()).title


def _escaped(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup ("<!channel>" pings everyone): escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(body: Mapping[str, Any], directory: ChatDirectory | None = None) -> dict[str, Any]:
    chat = _chat(body, directory or ChatDirectory())
    lines = "\n".join(f"*{_escaped(label)}*: {_escaped(value)}" for label, value in chat.facts) or "-"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": chat.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines[:2900]}},
    ]
    if chat.link:
        text = {"type": "plain_text", "text": _OPEN[chat.language]}
        button = {"type": "button", "text": text, "url": chat.link}
        blocks.append({"type": "actions", "elements": [button]})
    footer = {"type": "mrkdwn", "text": _escaped(chat.footer)[:2900]}
    blocks.append({"type": "context", "elements": [footer]})
    # `text` is mrkdwn too (and what a notification shows): escaped like the facts.
    return {"text": _escaped(chat.title), "blocks": blocks}


def _unlinked(text: str) -> str:
    """Adaptive Cards read Markdown: "[text](url)" in a name would become a link; a zero-width
    space between the brackets and the parenthesis keeps it text."""
    return text.replace("](", "]\u200b(")


def teams(body: Mapping[str, Any], directory: ChatDirectory | None = None) -> dict[str, Any]:
    """A message with one Adaptive Card, the shape a Teams Workflows webhook ("Send webhook
    alerts to a channel") posts; Office 365 connectors and their MessageCard were retired by
    Microsoft on 2026-03-31."""
    chat = _chat(body, directory or ChatDirectory())
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "lang": chat.language,
        "body": [
            {
                "type": "TextBlock",
                "text": _unlinked(chat.title),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": _CARD_COLOURS.get(chat.priority, "Default"),
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": _unlinked(value)} for label, value in chat.facts],
            },
            {
                "type": "TextBlock",
                "text": _unlinked(chat.footer),
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            },
        ],
    }
    if chat.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": _OPEN[chat.language], "url": chat.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def render(body: bytes, format: str, directory: ChatDirectory | None = None) -> bytes:
    """The bytes sent for a stored standard body in the endpoint's format (a chat message names
    the store and the staff; the signed standard body carries their ids only)."""
    if format == "standard":
        return body
    parsed = orjson.loads(body)
    return orjson.dumps(slack(parsed, directory) if format == "slack" else teams(parsed, directory))
