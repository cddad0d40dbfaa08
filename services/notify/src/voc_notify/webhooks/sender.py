"""One webhook attempt over pooled keep-alive connections (`client.WebhookClient`): signed
headers, the endpoint's timeout for the whole exchange (resolving and connecting included),
redirects not followed, at most 300 bytes of the answer kept. Never raises for what the receiver
does: every outcome is an `Attempt`."""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

import certifi
from yarl import URL

from voc_notify.webhooks import signing
from voc_notify.webhooks.client import WebhookClient
from voc_notify.webhooks.targets import WebhookTargets, refused_by_resolver, resolver_for
from voc_notify.webpush.sender import KEEPALIVE_EXPIRY
from voc_platform.ids import uuid7

log = logging.getLogger(__name__)

RESPONSE_KEPT: Final = 300  # bytes of an answer stored, never more
USER_AGENT: Final = "frontline-voc-webhooks/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    latency_ms: float
    error: str | None
    response: str | None
    #: The receiver's `Retry-After` (seconds) with a 429 or 503: the next try waits at least that.
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410

    def as_row(
        self, *, endpoint_id: str, delivery_id: str, event_type: str, attempted_at: float
    ) -> dict[str, Any]:  # (`retry_after` decides the next try; it is not kept)
        """The attempt as a new `webhook_attempts` row (statement parameters)."""
        return {
            "id": uuid7(),
            "endpoint_id": endpoint_id,
            "delivery_id": delivery_id,
            "event_type": event_type,
            "attempted_at": attempted_at,
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "response": self.response,
        }


def signed_headers(
    secret: str, *, msg_id: str, body: bytes, timestamp: int | None = None, previous: str | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (the timestamp is the attempt's own); with
    `previous` (a rotated secret still in its overlap) a second signature, space-separated, which
    a receiver still on the old secret verifies."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signatures = [
        signing.signature(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in (secret, previous) if s
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


class WebhookSender:
    """Sends one attempt per `send` call over pooled keep-alive connections (`client`)."""

    def __init__(self, targets: WebhookTargets, *, timeout: float = 5.0, max_connections: int = 100) -> None:
        self.targets = targets
        self._timeout = timeout
        self._max_idle = max_connections // 2
        self._ssl = ssl.create_default_context(cafile=certifi.where())
        self._client: WebhookClient | None = None

    def _http(self) -> WebhookClient:
        if self._client is None:  # on the running loop: the resolvers need one
            self._client = WebhookClient(
                resolver=resolver_for(self.targets),
                ssl_context=self._ssl,
                max_idle=self._max_idle,
                keepalive=KEEPALIVE_EXPIRY,
            )
        return self._client

    async def send(self, url: str, *, body: bytes, headers: dict[str, str]) -> Attempt:
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 1)

        try:
            target: URL = self.targets.parse(url)  # again at every send: the policy may have changed
        except ValueError as exc:
            return Attempt(None, 0.0, f"URL refused: {exc}"[:300], None)
        try:
            answer = await self._http().post(
                target, body=body, headers=headers, kept=RESPONSE_KEPT, timeout=self._timeout
            )
        except TimeoutError:
            return Attempt(None, elapsed(), "timeout", None)
        except OSError as exc:
            log.info("webhook to %s failed: %s: %s", target.host, type(exc).__name__, exc)
            reason = "non-public address refused" if refused_by_resolver(exc) else "network error"
            return Attempt(None, elapsed(), reason, None)
        status = answer.status
        # At most RESPONSE_KEPT bytes kept, also once decoded (a replaced byte is three in UTF-8).
        text = answer.head[:RESPONSE_KEPT].decode("utf-8", "ignore") or None
        error = None
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed"
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        wait = answer.retry_after if status in (429, 503) else None
        return Attempt(status, elapsed(), error, text, wait)

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            await self._client.resolver.close()
            self._client = None
