from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from voc_notify.patterns import PatternWatch, parse_rules
from voc_platform.settings import BaseUrl, ServiceSettings, comma_list

if TYPE_CHECKING:
    from voc_notify.webpush.endpoints import PushAllowlist


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notify"

    http_port: int = Field(8040, validation_alias="VOC_NOTIFY_HTTP_PORT")
    grpc_port: int = Field(9040, validation_alias="VOC_NOTIFY_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_NOTIFY_DATABASE_URL")
    token_ttl_seconds: int = Field(3600, validation_alias="VOC_TOKEN_TTL_SECONDS", gt=0)
    # A refresh token (#23) lives this long unused; each refresh rotates it and starts anew.
    refresh_token_ttl_seconds: int = Field(
        14 * 86400, ge=60, validation_alias="VOC_REFRESH_TOKEN_TTL_SECONDS"
    )
    # Comma-separated hosts the push sender may reach; empty = the public push services.
    push_allowed_hosts: str = Field("", validation_alias="VOC_PUSH_ALLOWED_HOSTS")
    vapid_subject: str = Field("mailto:ops@frontline-voc.dev", validation_alias="VOC_VAPID_SUBJECT")
    public_url: BaseUrl = Field("", validation_alias="VOC_NOTIFY_PUBLIC_URL")
    # A push lives at least this long at the push service, longer when escalation runs longer.
    push_min_ttl_seconds: int = Field(900, ge=0)
    delivery_max_attempts: int = Field(6, ge=1)
    # Failed logins: an account (known e-mail or not) locks from the 5th failure on, for 30 s
    # doubling per further failure, never longer than lockout_max_seconds; its failures are
    # forgotten an hour after the last. A client address gets login_address_burst failures,
    # then one per 1/rate seconds (per replica).
    login_max_failures: int = Field(5, ge=1)
    lockout_base_seconds: int = Field(30, gt=0)
    lockout_max_seconds: int = Field(900, ge=1)
    login_failures_kept_seconds: int = Field(3600, ge=1)
    login_address_rate_per_second: float = Field(0.2, gt=0)
    login_address_burst: int = Field(20, ge=1)
    # argon2 verifications running at once (each in a worker thread, 64 MiB).
    login_concurrency: int = Field(2, ge=1)
    escalation_poll_seconds: float = Field(1.0, gt=0)
    # Outbound webhooks (#19): hosts they may reach (the push allowlist's syntax; empty = https to
    # public addresses only, checked again after DNS resolution at every send), the key their
    # signing secrets are encrypted with (empty = derived from VOC_JWT_SECRET), how long one
    # attempt may take, how many run at once, and how long an endpoint may fail before it is
    # disabled (a delivery is given up after the same time).
    webhook_allowed_hosts: str = Field("", validation_alias="VOC_WEBHOOK_ALLOWED_HOSTS")
    webhook_key: str = Field("", validation_alias="VOC_NOTIFY_WEBHOOK_KEY")
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=30, validation_alias="VOC_WEBHOOK_TIMEOUT_SECONDS")
    webhook_concurrency: int = Field(64, ge=1, le=1000, validation_alias="VOC_WEBHOOK_CONCURRENCY")
    webhook_disable_after_seconds: float = Field(
        86400.0, ge=60, validation_alias="VOC_WEBHOOK_DISABLE_AFTER_SECONDS"
    )
    # A repeat complaint (same customer, store, category) within this window updates the open alert.
    dedupe_window_seconds: float = Field(1800.0, ge=0, validation_alias="VOC_NOTIFY_DEDUPE_WINDOW_SECONDS")
    # An urgent push accepted by the push service but not reported shown within this many
    # seconds: the device is suspect, the staff member's other devices and then the fallback
    # channel are tried (#23). 0 turns the watchdog off.
    watchdog_seconds: float = Field(60.0, ge=0, validation_alias="VOC_NOTIFY_WATCHDOG_SECONDS")
    watchdog_poll_seconds: float = Field(1.0, gt=0)
    # Pattern alerts (#18): `category=count/window` rules, `*` for every category without its own
    # (e.g. "*=3/60m,food_safety=1/60m"); empty turns them off. docs/NOTIFY.md#pattern-alerts
    pattern_rules: str = Field("*=3/60m", validation_alias="VOC_NOTIFY_PATTERN_RULES")
    # The store's own usual rate over this many days (0: no baseline) times the factor raises a
    # rule's count: a store that usually gets 10 an hour pages at 15, not at 3.
    pattern_baseline_days: float = Field(
        28.0, ge=0, le=366, validation_alias="VOC_NOTIFY_PATTERN_BASELINE_DAYS"
    )
    pattern_baseline_factor: float = Field(
        1.5, ge=1, le=100, validation_alias="VOC_NOTIFY_PATTERN_BASELINE_FACTOR"
    )
    # A pattern alert that more items fold into is pushed again at most this often (same Topic).
    pattern_repush_seconds: float = Field(300.0, ge=0, validation_alias="VOC_NOTIFY_PATTERN_REPUSH_SECONDS")

    @field_validator("pattern_rules")
    @classmethod
    def _pattern_rules(cls, value: str) -> str:
        parse_rules(value)  # ValueError names the rule and what is wrong with it
        return value

    def pattern_watch(self) -> PatternWatch:
        return PatternWatch(
            rules=parse_rules(self.pattern_rules),
            baseline_days=self.pattern_baseline_days,
            baseline_factor=self.pattern_baseline_factor,
            repush_seconds=self.pattern_repush_seconds,
        )

    # Follow-up messages to customers (docs/NOTIFY.md "Follow-up to the customer"). E-mail over
    # SMTP: smtp://host:port (STARTTLS when the server offers it; required with ?starttls=1),
    # smtps://host:port (TLS); user:password in the URL or the password in VOC_SMTP_PASSWORD,
    # refused over plain smtp:// to a host that is not loopback. Unset = no e-mail.
    smtp_url: str = Field("", validation_alias="VOC_SMTP_URL")
    smtp_password: str = Field("", validation_alias="VOC_SMTP_PASSWORD")
    mail_from: str = Field("", validation_alias="VOC_MAIL_FROM")
    # The chain's name, before the store's in a follow-up's subject, text and SMS ("[Frontline
    # 식당 강남역점]"); empty: the store's name alone.
    brand_name: str = Field("", validation_alias="VOC_BRAND_NAME", max_length=40)
    # The envelope sender (Return-Path) of follow-up mail: where servers send bounces, a mailbox
    # piped to POST /v1/follow-ups/delivery-reports. Empty: the From: address.
    mail_bounce_address: str = Field("", validation_alias="VOC_MAIL_BOUNCE_ADDRESS", max_length=254)
    # What a bounce pipe or an SMS gateway sends as its bearer token to report deliveries
    # (POST /v1/follow-ups/delivery-reports). Empty: no reports are taken.
    delivery_report_token: str = Field("", validation_alias="VOC_DELIVERY_REPORT_TOKEN")
    # A CA bundle for a relay with a private certificate (default: the system's CAs).
    smtp_ca_file: str = Field("", validation_alias="VOC_SMTP_CA_FILE")
    # SMS / KakaoTalk Alimtalk through an HTTP gateway (sms.HttpGateway). Unset URL = no SMS.
    sms_gateway_url: str = Field("", validation_alias="VOC_SMS_GATEWAY_URL")
    sms_gateway_token: str = Field("", validation_alias="VOC_SMS_GATEWAY_TOKEN")
    sms_template_id: str = Field("", validation_alias="VOC_SMS_TEMPLATE_ID")
    sms_sender: str = Field("", validation_alias="VOC_SMS_SENDER")
    # Hosts the gateway URL may name (push allowlist syntax); empty = the gateway URL's own
    # host on the https default port.
    sms_allowed_hosts: str = Field("", validation_alias="VOC_SMS_ALLOWED_HOSTS")
    # A transient failure (SMTP or gateway down, 4xx answer) is tried again after
    # base * 2^n seconds (with jitter, at most cap) until the link expires.
    follow_up_retry_base_seconds: float = Field(
        30.0, gt=0, validation_alias="VOC_FOLLOW_UP_RETRY_BASE_SECONDS"
    )
    follow_up_retry_cap_seconds: float = Field(
        3600.0, gt=0, validation_alias="VOC_FOLLOW_UP_RETRY_CAP_SECONDS"
    )
    follow_up_poll_seconds: float = Field(1.0, gt=0, validation_alias="VOC_FOLLOW_UP_POLL_SECONDS")
    follow_up_send_timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        if value:
            # Imported here: `voc up` reads every service's settings class, and the SMTP client
            # is not needed for that.
            from voc_notify.channels.mail import parse_smtp_url

            parse_smtp_url(value)
        return value

    @field_validator("push_allowed_hosts", "webhook_allowed_hosts", "sms_allowed_hosts")
    @classmethod
    def _allowlist(cls, value: str) -> str:
        from voc_notify.webpush.endpoints import PushAllowlist

        PushAllowlist(comma_list(value))  # refuses a bad entry (e.g. '*' or a URL), naming it
        return value

    @field_validator("mail_bounce_address")
    @classmethod
    def _bounce_address(cls, value: str) -> str:
        from voc_notify.channels.mail import valid_address

        if value and not valid_address(value):
            raise ValueError("an e-mail address alone, e.g. bounces@example.com")
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(
                f"no file '{value}' (the CA certificates, PEM, the SMTP server is checked against)"
            )
        return value

    @field_validator("sms_gateway_url")
    @classmethod
    def _gateway_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("an http(s) URL, e.g. https://sms.example.com/v1/messages")
        return value

    @model_validator(mode="after")
    def _follow_up_channels(self) -> Settings:
        if self.smtp_url:
            from voc_notify.channels.mail import clear_text_login, parse_smtp_url

            # The password in the URL or in VOC_SMTP_PASSWORD: one check for both.
            target = parse_smtp_url(self.smtp_url, password=self.smtp_password)
            if clear_text_login(target):
                in_url = parse_smtp_url(self.smtp_url).password is not None
                given = "a password in VOC_SMTP_URL" if in_url else "VOC_SMTP_PASSWORD"
                raise ValueError(
                    f"{given} over plain smtp:// to a host that is not loopback: use smtps:// or "
                    "?starttls=1 in VOC_SMTP_URL (a server that offers no STARTTLS would get it in clear)"
                )
        if self.smtp_url and not self.mail_from:
            raise ValueError("VOC_MAIL_FROM: needed with VOC_SMTP_URL (the From: address)")
        if self.sms_gateway_url and not self.sms_sender:
            raise ValueError("VOC_SMS_SENDER: needed with VOC_SMS_GATEWAY_URL (the sending number)")
        if self.sms_gateway_url and not self.sms_allowlist().allows(self.sms_gateway_url):
            raise ValueError(
                "VOC_SMS_GATEWAY_URL: not allowed by VOC_SMS_ALLOWED_HOSTS "
                "(https, or http to a listed loopback host)"
            )
        return self

    @field_validator("vapid_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("VOC_VAPID_SUBJECT must be a mailto: or https: URL")
        return value

    def production_secrets(self) -> list[tuple[str, str]]:
        """Production also needs the webhook key when one is set (else derived from the JWT secret),
        and the delivery-report token when one is set."""
        found = super().production_secrets()  # the JWT secret among them (every service verifies)
        if self.webhook_key:  # else derived from the JWT secret, held to the same rule
            found.append(("VOC_NOTIFY_WEBHOOK_KEY", self.webhook_key))
        if self.delivery_report_token:  # unset: the route takes nothing
            found.append(("VOC_DELIVERY_REPORT_TOKEN", self.delivery_report_token))
        return found

    def sms_allowlist(self) -> PushAllowlist:
        """Where the SMS gateway may be reached: VOC_SMS_ALLOWED_HOSTS, else its URL's own host
        on the https port (push allowlist rules: plain http only to a listed loopback host)."""
        from voc_notify.webpush.endpoints import PushAllowlist

        hosts = comma_list(self.sms_allowed_hosts)
        return PushAllowlist(hosts or [urlsplit(self.sms_gateway_url).hostname or ""])

    def allowed_push_hosts(self) -> list[str]:
        return comma_list(self.push_allowed_hosts)

    def allowed_webhook_hosts(self) -> list[str]:
        return comma_list(self.webhook_allowed_hosts)
