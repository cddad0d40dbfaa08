"""Sending one push: the request (encrypted, VAPID-signed), the pooled HTTP client, and the
push service's answer classified (see the package docstring); `backoff_delay` for retries."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import math
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Literal, Required, TypedDict, Unpack

import aiohttp
import certifi
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey
from yarl import URL

from voc_notify.webpush.crypto import VapidKeys, b64url_decode, b64url_encode, encrypt_aes128gcm
from voc_notify.webpush.endpoints import _DEFAULT_PORTS, InvalidSubscription, PushAllowlist, PushSubscription

log = logging.getLogger(__name__)

URGENCIES: Final[frozenset[str]] = frozenset({"very-low", "low", "normal", "high"})
MAX_TTL: Final = 28 * 24 * 3600  # what FCM/autopush accept at most; larger values are clamped
VAPID_MAX_LIFETIME: Final = 24 * 3600  # RFC 8292 s2: exp MUST NOT be more than 24 h ahead
VAPID_DEFAULT_LIFETIME: Final = 12 * 3600
VAPID_REFRESH_MARGIN: Final = 3600  # reuse a token until 1 h before its exp
_TOPIC_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")

# ---------------------------------------------------------------------------------------
# results, retry helpers


PushStatus = Literal["accepted", "gone", "retry", "rejected"]


class PushOptions(TypedDict, total=False):
    """How a push is to be delivered (RFC 8030): its TTL in seconds (required), Urgency (one of
    `URGENCIES`, "normal" when not given) and Topic (none when not given)."""

    ttl: Required[int]
    urgency: str
    topic: str | None


@dataclass(frozen=True, slots=True)
class PushResult:
    status: PushStatus
    http_status: int | None
    retry_after: float | None
    detail: str


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date. None if
    absent/unparseable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = 0.5,
    cap: float = 60.0,
    max_retry_after: float = 3600.0,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = first retry).

    Exponential ``base * 2**attempt`` capped at ``cap``, with "equal jitter" (uniform in
    [d/2, d]). A server ``Retry-After`` is honoured as a lower bound (itself capped at
    ``max_retry_after`` against absurd values), so the result is never earlier than the
    server asked for.
    """
    attempt = max(0, attempt)
    delay = min(cap, base * (2.0 ** min(attempt, 32)))
    jittered = delay / 2.0 + random.uniform(0.0, delay / 2.0)
    if retry_after is not None and retry_after > 0:
        return max(min(retry_after, max_retry_after), jittered)
    return jittered


def normalize_topic(topic: str) -> str:
    """RFC 8030 s5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet.
    Valid topics pass unchanged; anything else is mapped deterministically (so that
    collapsing still works) to the first 32 characters of base64url(SHA-256(topic))."""
    if _TOPIC_RE.fullmatch(topic):
        return topic
    return b64url_encode(hashlib.sha256(topic.encode("utf-8")).digest())[:32]


def _origin(url: URL) -> str:
    """RFC 6454 ASCII serialisation of the endpoint's origin: the VAPID ``aud``."""
    host = url.host or ""
    host = f"[{host}]" if ":" in host else host
    port = url.explicit_port
    if port is None or port == _DEFAULT_PORTS.get(url.scheme):
        return f"{url.scheme}://{host}"
    return f"{url.scheme}://{host}:{port}"


def _status_line(code: int) -> str:
    """`HTTP <code> <standard reason phrase>`: all a failed push keeps of the answer. The push
    service's own words (its body, its reason phrase) are never stored or shown: whoever
    controls an endpoint controls them."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _classify(code: int, headers: Mapping[str, str]) -> PushResult:
    if 200 <= code < 300:
        return PushResult("accepted", code, None, headers.get("location", ""))
    detail = _status_line(code)
    if code in (404, 410):
        return PushResult("gone", code, None, detail)
    if code in (408, 425, 429) or code >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return PushResult("retry", code, retry_after, detail)
    if 300 <= code < 400:
        return PushResult("rejected", code, None, f"{detail}: redirect not followed")
    return PushResult("rejected", code, None, detail)


# ---------------------------------------------------------------------------------------
# sender

MAX_CONNECTIONS: Final = 200
MAX_KEEPALIVE_CONNECTIONS: Final = 100
KEEPALIVE_EXPIRY: Final = 5.0  # seconds an idle pooled connection is kept
_NO_AUTO_HEADERS: Final = ("Content-Type",)


@dataclass(frozen=True, slots=True)
class PushRequest:
    """A validated, encrypted and signed push message, ready to send (never sent yet)."""

    method: str
    url: URL  # the exact URL object that passed the allowlist
    headers: dict[str, str]
    content: bytes


class _PushConnector(aiohttp.TCPConnector):
    """A TCPConnector that, besides ``limit`` connections in total, keeps at most
    ``max_keepalive`` of them idle in the pool: a connection released while that many are
    already idle is closed instead (aiohttp itself only expires idle ones by time)."""

    def __init__(self, *, max_keepalive: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_keepalive = max_keepalive

    def _release(self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False) -> None:
        if not should_close and sum(map(len, self._conns.values())) >= self._max_keepalive:
            should_close = True
        super()._release(key, protocol, should_close=should_close)


class WebPushSender:
    """Sends one encrypted, VAPID-authenticated push message per :meth:`send` call over a
    shared keep-alive HTTP/1.1 connection pool (one aiohttp session per sender, created on
    the running loop at the first send)."""

    def __init__(
        self,
        *,
        vapid: VapidKeys,
        subject: str,
        allowlist: PushAllowlist,
        client: aiohttp.ClientSession | None = None,
        timeout: float = 5.0,
        jwt_lifetime: float = VAPID_DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (subject.startswith("mailto:") or subject.startswith("https://")):
            raise ValueError("VAPID subject must be a mailto: or https: URI")
        if not (VAPID_REFRESH_MARGIN < jwt_lifetime <= VAPID_MAX_LIFETIME):
            raise ValueError("jwt_lifetime must be in (1 h, 24 h]")
        self._vapid = vapid
        self._subject = subject
        self._allowlist = allowlist
        # ``timeout`` bounds each phase, as before: waiting for a pooled connection plus
        # DNS and connecting (each at most ``timeout``), then every wait for response
        # bytes. No sub-second rounding up of deadlines (aiohttp's ceil_threshold).
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=2 * timeout,
            sock_connect=timeout,
            sock_read=timeout,
            ceil_threshold=math.inf,
        )
        self._jwt_lifetime = jwt_lifetime
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (jwt, exp)
        self._owns_client = client is None
        self._client = client
        self._closed = False
        if client is None:
            # certifi's CA bundle (what the previous client verified against), HTTP/1.1 only
            self._ssl: ssl.SSLContext | None = ssl.create_default_context(cafile=certifi.where())
            self._ssl.set_alpn_protocols(["http/1.1"])
        else:
            self._ssl = None

    @property
    def allowlist(self) -> PushAllowlist:
        return self._allowlist

    def _session(self) -> aiohttp.ClientSession:
        """The sender's session, created on the running loop at first use."""
        if self._client is None:
            if self._closed:
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            connector = _PushConnector(
                max_keepalive=MAX_KEEPALIVE_CONNECTIONS,
                limit=MAX_CONNECTIONS,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_EXPIRY,
                ssl=self._ssl,
                resolver=aiohttp.ThreadedResolver(),  # getaddrinfo, as before
                timeout_ceil_threshold=math.inf,
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,  # never route pushes through an env-configured proxy
            )
        return self._client

    def vapid_token(self, audience: str) -> str:
        """The cached JWT for ``audience`` (``scheme://host[:port]``), re-signed when
        within 1 h of its expiry."""
        now = self._clock()
        cached = self._tokens.get(audience)
        if cached is not None and now < cached[1] - VAPID_REFRESH_MARGIN:
            return cached[0]
        exp = int(now + self._jwt_lifetime)
        token = self._vapid.sign_jwt(audience, self._subject, exp)
        self._tokens[audience] = (token, float(exp))
        return token

    def build_request(
        self, subscription: PushSubscription, payload: bytes, **options: Unpack[PushOptions]
    ) -> PushRequest:
        """Validate, encrypt and sign; raises EndpointNotAllowed/ValueError, never sends."""
        url = self._allowlist.parse(subscription.endpoint)  # SSRF gate: before anything else
        ttl, urgency, topic = options["ttl"], options.get("urgency", "normal"), options.get("topic")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {sorted(URGENCIES)}")
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        headers = {
            "TTL": str(min(int(ttl), MAX_TTL)),
            "Urgency": urgency,
        }
        if topic:
            headers["Topic"] = normalize_topic(topic)
        audience = _origin(url)
        token = self.vapid_token(audience)
        headers["Authorization"] = f"vapid t={token}, k={self._vapid.public_key_b64url}"
        body = b""
        if payload:
            try:
                ua_public = b64url_decode(subscription.p256dh)
                auth_secret = b64url_decode(subscription.auth)
            except ValueError as exc:
                raise InvalidSubscription(str(exc), "keys") from exc
            body = encrypt_aes128gcm(payload, ua_public, auth_secret)
            headers["Content-Encoding"] = "aes128gcm"
            headers["Content-Type"] = "application/octet-stream"
        return PushRequest("POST", url, headers, body)

    async def send(
        self, subscription: PushSubscription, payload: bytes, **options: Unpack[PushOptions]
    ) -> PushResult:
        """Send one push. Raises :class:`EndpointNotAllowed` (before any I/O) for an endpoint
        off the allowlist, :class:`PayloadTooLarge`/``ValueError`` for bad arguments;
        every outcome of the HTTP exchange is returned as a :class:`PushResult`."""
        request = self.build_request(subscription, payload, **options)
        session = self._session()
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.content or None,  # None: "Content-Length: 0"
                headers=request.headers,
                skip_auto_headers=_NO_AUTO_HEADERS,  # Content-Type only when there is a body
                allow_redirects=False,
            ) as response:
                await response.read()  # drained, so the connection goes back to the pool
        except TimeoutError as exc:  # aiohttp's timeout errors subclass TimeoutError
            log.info("push to %s timed out: %s", request.url.host, type(exc).__name__)
            return PushResult("retry", None, None, "timeout")
        except aiohttp.ClientError as exc:
            # The exception's text (addresses, the OS's words) goes to the log, not to the row
            # managers read.
            log.info("push to %s failed: %s: %s", request.url.host, type(exc).__name__, exc)
            return PushResult("retry", None, None, "network error")
        result = _classify(response.status, response.headers)
        if result.status != "accepted":
            log.info("push to %s -> %s (HTTP %s)", request.url.host, result.status, result.http_status)
        return result

    async def aclose(self) -> None:
        if self._owns_client:
            self._closed = True
            if self._client is not None:
                await self._client.close()

    async def __aenter__(self) -> WebPushSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
