"""Words notify says to people about a case, in Korean and English: one home for each table
(a heads-up's last contact, a chat message's resolution)."""

from __future__ import annotations

from typing import Final

#: The languages notify writes in (staff, stores, customers).
LANGUAGES: Final = ("ko", "en")

#: A resolution's outcome (`voc_platform.fields.RESOLUTION_OUTCOMES`) in words.
OUTCOME: Final = {
    "ko": {"resolved": "해결됨", "compensated": "보상함", "referred": "이관됨",
           "no_action_needed": "조치 불필요", "customer_unreachable": "연락 안 됨"},
    "en": {"resolved": "resolved", "compensated": "compensated", "referred": "referred",
           "no_action_needed": "no action needed", "customer_unreachable": "unreachable"},
}  # fmt: skip


def language(value: str | None) -> str:
    """The language notify writes in for `value`: Korean or English (the default)."""
    return "ko" if value == "ko" else "en"
