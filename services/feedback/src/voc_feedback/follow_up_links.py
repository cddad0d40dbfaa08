"""Follow-up links: HMAC-signed one-time tokens, served at `{public_url}/f/{token}`, and how long
after the resolution the customer's message with the link goes out."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from voc_feedback.settings import Settings
from voc_platform.constant_time import same_secret


@dataclass(frozen=True, slots=True)
class FollowUpLinks:
    """How to sign and address follow-up links (from the service settings)."""

    secret: str
    public_url: str
    ttl_seconds: float
    send_delay_seconds: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> FollowUpLinks:
        return cls(
            secret=settings.follow_up_secret,
            public_url=settings.resolved_public_url,
            ttl_seconds=settings.follow_up_ttl_seconds,
            send_delay_seconds=settings.follow_up_delay_seconds,
        )

    def url(self, follow_up_id: str) -> str:
        """The page of a follow-up survey."""
        return f"{self.public_url}/f/{sign_follow_up(follow_up_id, secret=self.secret)}"


def sign_follow_up(follow_up_id: str, *, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"follow-up:{follow_up_id}".encode(), hashlib.sha256).digest()[:16]
    return f"{follow_up_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_follow_up_token(token: str, *, secret: str) -> str | None:
    """The follow-up id when the signature holds, else None (constant-time compare)."""
    follow_up_id, _, _ = token.partition(".")
    if not follow_up_id or len(token) > 100:
        return None
    expected = sign_follow_up(follow_up_id, secret=secret)
    return follow_up_id if same_secret(token, expected) else None
