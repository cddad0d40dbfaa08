from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from voc_platform.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notify"

    http_port: int = Field(8040, validation_alias="VOC_NOTIFY_HTTP_PORT")
    grpc_port: int = Field(9040, validation_alias="VOC_NOTIFY_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_NOTIFY_DATABASE_URL")
    token_ttl_seconds: int = Field(3600, validation_alias="VOC_TOKEN_TTL_SECONDS")
    # Comma-separated hosts the push sender may reach; empty = the public push services.
    push_allowed_hosts: str = Field("", validation_alias="VOC_PUSH_ALLOWED_HOSTS")
    vapid_subject: str = Field("mailto:ops@frontline-voc.dev", validation_alias="VOC_VAPID_SUBJECT")
    public_url: str = Field("", validation_alias="VOC_NOTIFY_PUBLIC_URL")
    # A push lives at least this long at the push service, longer when escalation runs longer.
    push_min_ttl_seconds: int = 900
    delivery_max_attempts: int = 6
    # Failed logins: an account (known e-mail or not) locks from the 5th failure on, for 30 s
    # doubling per further failure, never longer than lockout_max_seconds; its failures are
    # forgotten an hour after the last. A client address gets login_address_burst failures,
    # then one per 1/rate seconds (per replica).
    login_max_failures: int = 5
    lockout_base_seconds: int = 30
    lockout_max_seconds: int = Field(900, ge=1)
    login_failures_kept_seconds: int = Field(3600, ge=1)
    login_address_rate_per_second: float = Field(0.2, gt=0)
    login_address_burst: int = Field(20, ge=1)
    # argon2 verifications running at once (each in a worker thread, 64 MiB).
    login_concurrency: int = Field(2, ge=1)
    escalation_poll_seconds: float = 1.0
    # A repeat complaint (same customer, store, category) within this window updates the open alert.
    dedupe_window_seconds: float = Field(1800.0, ge=0, validation_alias="VOC_NOTIFY_DEDUPE_WINDOW_SECONDS")

    @field_validator("vapid_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("VOC_VAPID_SUBJECT must be a mailto: or https: URL")
        return value

    def allowed_push_hosts(self) -> list[str]:
        return [h.strip() for h in self.push_allowed_hosts.split(",") if h.strip()]
