from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import Field, model_validator

from voc_feedback.personal import MAX_TEXT_CHARS
from voc_platform.settings import BaseUrl, ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "feedback"

    http_port: int = Field(8010, validation_alias="VOC_FEEDBACK_HTTP_PORT")
    grpc_port: int = Field(9010, validation_alias="VOC_FEEDBACK_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_FEEDBACK_DATABASE_URL")
    idempotency_ttl_seconds: int = Field(24 * 3600, gt=0)
    # The longest feedback text intake takes; at most MAX_TEXT_CHARS (4000), what every reader,
    # the masking and the follow-up page are built for.
    max_text_chars: int = Field(MAX_TEXT_CHARS, gt=0, le=MAX_TEXT_CHARS)

    # Token bucket per API key: a sustained rate and a burst (429 + Retry-After beyond them).
    rate_limit_per_second: float = Field(20.0, gt=0, validation_alias="VOC_FEEDBACK_RATE_LIMIT_PER_SECOND")
    rate_limit_burst: int = Field(60, ge=1, validation_alias="VOC_FEEDBACK_RATE_LIMIT_BURST")

    # Follow-up links: HMAC-signed, one-time, served at {public_url}/f/{token}.
    public_url: BaseUrl | None = Field(None, validation_alias="VOC_FEEDBACK_PUBLIC_URL")
    follow_up_secret: str = Field("", validation_alias="VOC_FEEDBACK_FOLLOW_UP_SECRET")
    follow_up_ttl_seconds: int = Field(
        14 * 24 * 3600, validation_alias="VOC_FEEDBACK_FOLLOW_UP_TTL_SECONDS", gt=0
    )
    # The customer's follow-up message goes this long after the resolution (0 = at once); notify
    # sends it (and moves it out of the store's quiet hours).
    follow_up_delay_seconds: int = Field(
        7200, ge=0, le=30 * 24 * 3600, validation_alias="VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS"
    )

    # Loop SLA used by the KPIs (the playbook's own SLA drives notify's escalation timers).
    sla_ack_seconds: int = Field(300, validation_alias="VOC_FEEDBACK_SLA_ACK_SECONDS", gt=0)
    sla_resolve_seconds: int = Field(1800, validation_alias="VOC_FEEDBACK_SLA_RESOLVE_SECONDS", gt=0)

    # Every replica checks the classifier registry this often for a promotion it missed (the
    # promotion event makes the switch at once; this bounds it when the event is lost).
    classifier_poll_seconds: float = Field(
        30.0, gt=0, le=3600, validation_alias="VOC_FEEDBACK_CLASSIFIER_POLL_SECONDS"
    )

    # Where the manager console (the dashboard) reaches notify (login, directory, webhooks) and
    # actions (playbooks) from the browser; its CSP connect-src allows exactly these origins, and
    # those services must list the dashboard's origin in VOC_CONSOLE_ORIGINS. Empty: the same
    # origin as the dashboard (one ingress routing /v1/auth, /v1/admin, /v1/playbooks).
    notify_public_url: BaseUrl = Field("", validation_alias="VOC_NOTIFY_PUBLIC_URL")
    actions_public_url: BaseUrl = Field("", validation_alias="VOC_ACTIONS_PUBLIC_URL")

    @property
    def console_connect_sources(self) -> list[str]:
        return [u for u in (self.notify_public_url, self.actions_public_url) if u]

    def production_secrets(self) -> list[tuple[str, str]]:
        """Production also needs the follow-up secret, set on its own (never derived)."""
        return [*super().production_secrets(), ("VOC_FEEDBACK_FOLLOW_UP_SECRET", self.follow_up_secret)]

    @model_validator(mode="after")
    def _follow_up_timing(self) -> Settings:
        # A link that expires before its message is due is never sent ("the link expired").
        if self.follow_up_delay_seconds >= self.follow_up_ttl_seconds:
            raise ValueError(
                "VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS must be shorter than "
                "VOC_FEEDBACK_FOLLOW_UP_TTL_SECONDS (the link would expire before it is sent)"
            )
        return self

    @model_validator(mode="after")
    def _follow_up_secret(self) -> Settings:
        if not self.follow_up_secret and self.environment != "production":
            # Development: derived from the internal token, so every replica signs alike.
            self.follow_up_secret = hashlib.sha256(b"follow-up:" + self.internal_token.encode()).hexdigest()
        return self

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.http_port}").rstrip("/")
