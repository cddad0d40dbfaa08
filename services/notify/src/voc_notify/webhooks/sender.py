"""One webhook attempt over a pooled HTTP client (the push sender's connector): signed headers,
the endpoint's timeout for the whole exchange, redirects not followed, at most 300 bytes of the
answer kept. Never raises for what the receiver does: every outcome is an `Attempt`."""

from __future__ import annotations

import logging
import math
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import certifi
from yarl import URL

from voc_notify.webhooks import signing
from voc_notify.webhooks.targets import WebhookTargets, refused_by_resolver, resolver_for
from voc_notify.webpush.sender import KEEPALIVE_EXPIRY, _PushConnector
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

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410

    def as_row(
        self, *, endpoint_id: str, delivery_id: str, event_type: str, attempted_at: float
    ) -> dict[str, Any]:
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


def signed_headers(secret: str, *, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (the timestamp is the attempt's own)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature(secret, msg_id=msg_id, timestamp=timestamp, body=body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


class WebhookSender:
    """Sends one attempt per `send` call; one aiohttp session, created on the running loop."""

    def __init__(self, targets: WebhookTargets, *, timeout: float = 5.0, max_connections: int = 100) -> None:
        self.targets = targets
        self._timeout = aiohttp.ClientTimeout(total=timeout, ceil_threshold=math.inf)
        self._max_connections = max_connections
        self._client: aiohttp.ClientSession | None = None
        self._ssl = ssl.create_default_context(cafile=certifi.where())

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            connector = _PushConnector(
                max_keepalive=self._max_connections // 2,
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_EXPIRY,
                ssl=self._ssl,
                resolver=resolver_for(self.targets),
                timeout_ceil_threshold=math.inf,
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,  # no env proxies
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
            async with self._session().post(
                target, data=body, headers=headers, allow_redirects=False
            ) as answer:
                kept = await answer.content.read(RESPONSE_KEPT)
                status = answer.status
        except TimeoutError:
            return Attempt(None, elapsed(), "timeout", None)
        except aiohttp.ClientError as exc:
            log.info("webhook to %s failed: %s: %s", target.host, type(exc).__name__, exc)
            reason = "non-public address refused" if refused_by_resolver(exc) else "network error"
            return Attempt(None, elapsed(), reason, None)
        text = kept.decode("utf-8", "replace")[:RESPONSE_KEPT] or None
        error = None
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed"
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        return Attempt(status, elapsed(), error, text)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
