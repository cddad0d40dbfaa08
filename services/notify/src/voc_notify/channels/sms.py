"""SMS and KakaoTalk Alimtalk through a provider adapter: one small interface (`SmsProvider`)
and one generic HTTP-gateway adapter (`HttpGateway`) configured from settings (URL, bearer
token, template id, sender number). A Korean provider is reached through its HTTP API or a
relay that speaks this request (docs/NOTIFY.md). The gateway URL passes the same kind of
allowlist as push endpoints, before every send; redirects are never followed."""

from __future__ import annotations

import re
import ssl
from dataclasses import KW_ONLY, dataclass, field
from http import HTTPStatus
from typing import Protocol

import aiohttp
import certifi

from voc_notify.channels import SendResult
from voc_notify.webpush import EndpointNotAllowed, PushAllowlist, parse_retry_after
from voc_platform.masking import mask_text

_TRANSIENT = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str  # digits with an optional leading +, as the profile or the feedback had it
    text: str  # the whole message (SMS, or the Alimtalk template filled in)
    template_id: str  # the provider's approved template (Alimtalk); may be empty for plain SMS
    variables: dict[str, str] = field(default_factory=dict)  # the template's fields
    message_id: str = ""  # stable per follow-up: the gateway's idempotency key


class SmsProvider(Protocol):
    """What the follow-up worker needs of an SMS/Alimtalk provider."""

    name: str

    async def send(self, message: SmsMessage) -> SendResult: ...

    async def aclose(self) -> None: ...


def normalize_phone(value: str) -> str:
    """Digits, with a leading + kept: "010-1234-5678" → "01012345678"."""
    value = value.strip()
    digits = re.sub(r"\D", "", value)
    return f"+{digits}" if value.startswith("+") and digits else digits


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-4:]}" if len(digits) >= 4 else "***"


def valid_phone(value: str) -> bool:
    return 8 <= len(re.sub(r"\D", "", value)) <= 15


def _verified_tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(eq=False)
class HttpGateway:
    """POST {url} with a JSON body `{message_id, from, to, template_id, text, variables}`,
    `Authorization: Bearer <token>` and `Idempotency-Key: <message_id>`. 2xx → sent; 408, 409,
    425, 429, 5xx and network errors → retried (`Retry-After` honoured); other 4xx → failed,
    with the gateway's `error`/`message` field (masked) as the reason."""

    url: str
    _: KW_ONLY
    token: str = field(repr=False)  # a secret: kept out of the repr
    sender: str
    allowlist: PushAllowlist
    timeout: float = 5.0  # seconds, the whole request
    name: str = field(default="http_gateway", init=False)
    _ssl: ssl.SSLContext = field(init=False, repr=False, default_factory=_verified_tls)
    _client: aiohttp.ClientSession | None = field(init=False, repr=False, default=None)

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
            )
        return self._client

    async def send(self, message: SmsMessage) -> SendResult:
        if not valid_phone(message.to):
            return SendResult("failed", "invalid phone number")
        try:
            target = self.allowlist.parse(self.url)  # again before every send
        except EndpointNotAllowed as exc:
            return SendResult("retry", f"gateway not allowed: {exc.msg}")
        headers = {"Idempotency-Key": message.message_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {
            "message_id": message.message_id,
            "from": self.sender,
            "to": message.to,
            "template_id": message.template_id,
            "text": message.text,
            "variables": message.variables,
        }
        try:
            async with self._session().post(
                target, json=body, headers=headers, allow_redirects=False, ssl=self._ssl
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                said = await _said(response) if 400 <= status < 500 else ""
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return SendResult("retry", f"gateway unavailable ({type(exc).__name__})")
        line = _status_line(status)
        if 200 <= status < 300:
            return SendResult("sent", f"accepted by the gateway ({line})")
        if status in _TRANSIENT or status >= 500:
            return SendResult("retry", f"gateway answered {line}", retry_after)
        reason = f"gateway refused the message: {line}"
        return SendResult("failed", f"{reason} ({said})" if said else reason)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _status_line(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


async def _said(response: aiohttp.ClientResponse) -> str:
    """The gateway's own error code or message, if it answered JSON with one (short, masked)."""
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return ""
    if not isinstance(data, dict):
        return ""
    said = data.get("error") or data.get("message") or data.get("code") or ""
    return mask_text(str(said), limit=100) if isinstance(said, str | int) else ""
