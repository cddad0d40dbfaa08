"""The channels that reach customers (follow-up messages): e-mail over SMTP (`mail`) and SMS or
KakaoTalk Alimtalk through a provider adapter (`sms`). Each sends one message and classifies
the answer as a `SendResult`; the follow-up worker (`voc_notify.follow_ups`) owns scheduling,
retries and the record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SendStatus = Literal["sent", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """`sent`: the server or gateway took the message; `retry`: a transient failure (down,
    busy, 4xx); `failed`: permanent (the recipient was refused, the address is invalid)."""

    status: SendStatus
    detail: str = ""
    retry_after: float | None = None
