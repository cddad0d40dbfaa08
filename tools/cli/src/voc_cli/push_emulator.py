"""A local Web Push service (RFC 8030 + RFC 8291 + RFC 8292) for tests and benchmarks.

The public push services are unreachable from the test machines, so this stands in for
them and is *stricter* than most of them: every push must carry a valid VAPID
``Authorization: vapid t=<jwt>, k=<key>`` header and a ``TTL``, and its aes128gcm body is
decrypted with the subscription's private key and auth secret (via ``http_ece``, i.e. an
implementation independent of the sender's).

Two ways to run it::

    emu = PushEmulator()          # background thread with its own event loop
    emu.start()
    ...
    emu.stop()

    async with PushEmulator() as emu:   # inside the caller's running loop
        ...

Both are also context managers (``with PushEmulator() as emu``). The listening socket is
bound in the constructor, so ``base_url`` is known at once; an instance is single-use.

One module (~560 lines) on purpose: it is a whole push service (HTTP server, VAPID checks,
RFC 8291 decryption, the phones' inbox and fault injection) that tests, the benchmark and
`voc demo-phone` use as one unit; splitting it would only spread one protocol over files.

Response codes, in the order they are checked:

* 404 unknown subscription id (and any other path), 405 for non-POST
* 410 after :meth:`PushEmulator.expire`
* the status queued by :meth:`PushEmulator.fail_next` (with ``Retry-After`` if given)
* 401 missing/malformed/invalid VAPID header, bad signature, ``aud`` not this origin,
  ``exp`` past or more than 24 h ahead, ``sub`` neither ``mailto:`` nor ``https:``
* 403 VAPID key differs from the subscription's ``application_server_key`` (if set)
* 400 missing/invalid ``TTL``, ``Urgency`` or ``Topic``; undecryptable body
* 413 body over 4096 octets, 415 body without ``Content-Encoding: aes128gcm``
* 201 with ``Location`` otherwise; the push is recorded as a :class:`ReceivedPush`.

The HTTP/1.1 server side is `voc_cli.push_http`. This module stays whole (~560 lines, a third of
them this contract and the test-facing methods): one object whose subscriptions, received pushes
and queued failures every part reads under one lock, checked in the order listed above.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json as jsonlib
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from voc_cli.push_http import HttpProtocol

__all__ = ["PushEmulator", "ReceivedPush"]

MAX_BODY = 4096
MAX_JWT_LIFETIME = 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_VAPID_RE = re.compile(r"\s*vapid\s+(.*)", re.IGNORECASE | re.DOTALL)
_PUSH_PATH_RE = re.compile(r"/push/([A-Za-z0-9_-]{1,128})")


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(value: str) -> bytes:
    value = value.strip().rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass(frozen=True, slots=True)
class ReceivedPush:
    subscription_id: str
    label: str | None
    payload: bytes
    json: Any | None  # payload parsed as JSON when it is JSON, else None
    headers: dict[str, str]  # lower-case names
    received_at: float  # time.time()
    received_monotonic: float  # time.monotonic()

    @property
    def ttl(self) -> int:
        return int(self.headers["ttl"])

    @property
    def urgency(self) -> str | None:
        return self.headers.get("urgency")

    @property
    def topic(self) -> str | None:
        return self.headers.get("topic")

    @property
    def vapid_token(self) -> str | None:
        m = re.search(r"t=([^,\s]+)", self.headers.get("authorization", ""))
        return m.group(1) if m else None


@dataclass(slots=True)
class _Subscription:
    id: str
    label: str | None
    private_key: ec.EllipticCurvePrivateKey
    p256dh: bytes
    auth: bytes
    application_server_key: bytes | None
    expired: bool = False
    failures: deque[tuple[int, float | str | None]] = field(default_factory=deque)


class _Reply(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class PushEmulator:
    """``defer_decryption``: answer a push once its headers and VAPID token check out, stamping
    its arrival, and decrypt it when the pushes are next read (`received`). For the benchmark's
    phones, which share the cores with the system they measure: decryption is the phone's work,
    not the system's, and is done between steps. A push that then fails to decrypt is counted in
    `undecryptable` and never appears as received."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, defer_decryption: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(1024)
        self._sock.setblocking(False)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        netloc_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{netloc_host}:{self.port}"
        self.origin = self.base_url

        self._lock = threading.Condition(threading.Lock())
        self._subs: dict[str, _Subscription] = {}
        self._received: list[ReceivedPush] = []
        self.defer_decryption = defer_decryption
        # (subscription, headers, body, received_at, received_monotonic) not yet decrypted
        self._sealed: list[tuple[_Subscription, dict[str, str], bytes, float, float]] = []
        self.undecryptable = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}  # (t, k) -> claims
        #: (subscription_id or None, HTTP status) for every POST answered, in order
        self.responses: list[tuple[str | None, int]] = []
        self.status_counts: Counter[int] = Counter()

        self._server: asyncio.base_events.Server | None = None
        self._protocols: set[HttpProtocol] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # ------------------------------------------------------------------ subscriptions

    def new_subscription(
        self, label: str | None = None, *, application_server_key: str | None = None
    ) -> dict[str, Any]:
        """A browser-like ``PushSubscription.toJSON()`` for a fresh subscription.
        ``application_server_key`` (base64url VAPID public key) makes pushes signed with any
        other key answer 403, as real push services do."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        p256dh = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth = secrets.token_bytes(16)
        sub_id = secrets.token_urlsafe(24)
        sub = _Subscription(
            id=sub_id,
            label=label,
            private_key=private_key,
            p256dh=p256dh,
            auth=auth,
            application_server_key=(_b64d(application_server_key) if application_server_key else None),
        )
        with self._lock:
            self._subs[sub_id] = sub
        return {
            "endpoint": f"{self.base_url}/push/{sub_id}",
            "expirationTime": None,
            "keys": {"p256dh": _b64e(p256dh), "auth": _b64e(auth)},
        }

    @staticmethod
    def subscription_id(subscription: dict[str, Any] | str) -> str:
        """The id inside a subscription JSON or endpoint URL."""
        endpoint = subscription if isinstance(subscription, str) else subscription["endpoint"]
        return str(endpoint).rstrip("/").rsplit("/", 1)[-1]

    def expire(self, subscription_id: str) -> None:
        with self._lock:
            self._subs[subscription_id].expired = True

    def fail_next(
        self,
        subscription_id: str,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next ``count`` pushes to the subscription with ``status`` (and a
        ``Retry-After`` header: seconds, or a preformatted HTTP date string)."""
        with self._lock:
            failures = self._subs[subscription_id].failures
            failures.extend([(status, retry_after)] * count)

    def received(self, subscription_id: str | None = None) -> list[ReceivedPush]:
        with self._lock:
            self._open_sealed()
            if subscription_id is None:
                return list(self._received)
            return [p for p in self._received if p.subscription_id == subscription_id]

    def attempts(self, subscription_id: str) -> int:
        """How many POSTs to this subscription were answered (any status)."""
        with self._lock:
            return sum(1 for sid, _ in self.responses if sid == subscription_id)

    def clear(self) -> None:
        """Forget received pushes, response log and pending failures (subscriptions stay)."""
        with self._lock:
            self._received.clear()
            self._sealed.clear()
            self.undecryptable = 0
            self.responses.clear()
            self.status_counts.clear()
            for sub in self._subs.values():
                sub.failures.clear()

    async def wait_for(
        self,
        predicate: Callable[[ReceivedPush], bool],
        timeout: float = 5.0,
    ) -> ReceivedPush:
        """The first received push (already received or arriving within ``timeout``) for
        which ``predicate`` holds; raises ``TimeoutError``. Works whether the emulator runs
        in this loop or in its thread."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            event = asyncio.Event()
            with self._lock:
                self._open_sealed()
                pushes = self._received[seen:]
                seen = len(self._received)
                self._async_waiters.append((loop, event))
            try:
                for push in pushes:
                    if predicate(push):
                        return push
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"no matching push within {timeout}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._async_waiters.remove((loop, event))

    def wait_for_count(
        self, n: int, timeout: float = 5.0, subscription_id: str | None = None
    ) -> list[ReceivedPush]:
        """Block (thread-safe) until at least ``n`` pushes were received (for one
        subscription if given); returns them. Raises ``TimeoutError``. Must not be called
        from the emulator's own event loop (it would deadlock); use :meth:`wait_for`."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            raise RuntimeError("wait_for_count would block the emulator's own loop; use wait_for")

        def matching() -> list[ReceivedPush]:
            self._open_sealed()
            if subscription_id is None:
                return self._received
            return [p for p in self._received if p.subscription_id == subscription_id]

        with self._lock:
            if not self._lock.wait_for(lambda: len(matching()) >= n, timeout):
                raise TimeoutError(f"{len(matching())} of {n} pushes within {timeout}s")
            return list(matching())

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> PushEmulator:
        """Serve from a daemon thread with its own event loop."""
        self._claim_start()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._loop = loop
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
                loop.run_until_complete(self._close())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="push-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            raise RuntimeError("push emulator failed to start") from (failure[0] if failure else None)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    async def astart(self) -> PushEmulator:
        """Serve inside the running event loop."""
        self._claim_start()
        self._loop = asyncio.get_running_loop()
        await self._listen()
        return self

    async def astop(self) -> None:
        await self._close()
        with contextlib.suppress(OSError):
            self._sock.close()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpProtocol(self._handle, self._protocols, max_body=MAX_BODY),
            sock=self._sock,
            backlog=1024,
        )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for proto in list(self._protocols):
            proto.close()
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    def _claim_start(self) -> None:
        if self._started:
            raise RuntimeError("a PushEmulator can only be started once")
        self._started = True

    def __enter__(self) -> PushEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> PushEmulator:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    # ------------------------------------------------------------------ HTTP

    def _handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, str, dict[str, str]]:
        """One request -> (status, detail text, extra response headers)."""
        sub_id: str | None = None
        try:
            m = _PUSH_PATH_RE.fullmatch(target.partition("?")[0])
            if m is None:
                raise _Reply(404, "not found")
            sub_id = m.group(1)
            if method != "POST":
                raise _Reply(405, "method not allowed", {"allow": "POST"})
            if body is None:
                raise _Reply(413, f"payload over {MAX_BODY} octets")
            location = self._handle_push(sub_id, headers, body)
            status, detail, extra = 201, "", {"location": location, "ttl": headers["ttl"]}
        except _Reply as reply:
            status, detail, extra = reply.status, reply.detail, reply.headers
        with self._lock:
            self.responses.append((sub_id, status))
            self.status_counts[status] += 1
        return status, detail, extra

    def _handle_push(self, sub_id: str, headers: dict[str, str], body: bytes) -> str:
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is None:
                raise _Reply(404, "no such subscription")
            if sub.expired:
                raise _Reply(410, "subscription expired")
            if sub.failures:
                status, retry_after = sub.failures.popleft()
                extra = {} if retry_after is None else {"retry-after": _fmt_retry(retry_after)}
                raise _Reply(status, "injected failure", extra)

        vapid_key = self._check_vapid(headers.get("authorization"))
        if sub.application_server_key is not None and vapid_key != sub.application_server_key:
            raise _Reply(403, "VAPID key does not match the subscription's applicationServerKey")

        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            raise _Reply(400, "missing or invalid TTL header")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise _Reply(400, "invalid Urgency header")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC_RE.fullmatch(topic):
            raise _Reply(400, "invalid Topic header")

        if body and headers.get("content-encoding", "").lower() != "aes128gcm":
            raise _Reply(415, "Content-Encoding must be aes128gcm")
        if self.defer_decryption:
            with self._lock:
                self._sealed.append((sub, headers, body, time.time(), time.monotonic()))
                self._lock.notify_all()
                waiters = list(self._async_waiters)
            self._wake(waiters)  # a waiter reads `received`, which decrypts
            return f"{self.base_url}/m/{uuid.uuid4().hex}"
        payload = self._decrypt(sub, body)
        self._add(sub, headers, payload, time.time(), time.monotonic())
        return f"{self.base_url}/m/{uuid.uuid4().hex}"

    @staticmethod
    def _decrypt(sub: _Subscription, body: bytes) -> bytes:
        payload = b""
        if body:
            try:
                payload = http_ece.decrypt(
                    body,
                    private_key=sub.private_key,
                    auth_secret=sub.auth,
                    version="aes128gcm",
                )
            except Exception as exc:
                raise _Reply(400, f"decryption failed: {exc!r}") from exc
        return payload

    def _open_sealed(self) -> None:
        """Decrypt the deferred pushes, in arrival order (called holding the lock)."""
        sealed, self._sealed = self._sealed, []
        for sub, headers, body, at, at_monotonic in sealed:
            try:
                payload = self._decrypt(sub, body)
            except _Reply:
                self.undecryptable += 1
                continue
            self._received.append(self._push(sub, headers, payload, at, at_monotonic))

    @staticmethod
    def _push(
        sub: _Subscription, headers: dict[str, str], payload: bytes, at: float, at_monotonic: float
    ) -> ReceivedPush:
        parsed: Any | None = None
        if payload:
            try:
                parsed = jsonlib.loads(payload)
            except ValueError:
                parsed = None
        return ReceivedPush(
            subscription_id=sub.id,
            label=sub.label,
            payload=payload,
            json=parsed,
            headers=headers,
            received_at=at,
            received_monotonic=at_monotonic,
        )

    def _add(
        self, sub: _Subscription, headers: dict[str, str], payload: bytes, at: float, at_monotonic: float
    ) -> None:
        push = self._push(sub, headers, payload, at, at_monotonic)
        with self._lock:
            self._received.append(push)
            self._lock.notify_all()
            waiters = list(self._async_waiters)
        self._wake(waiters)

    @staticmethod
    def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def _check_vapid(self, authorization: str | None) -> bytes:
        """Validate an RFC 8292 ``vapid`` Authorization header; return the raw public key."""
        if not authorization:
            raise _Reply(401, "missing Authorization header")
        m = _VAPID_RE.fullmatch(authorization)
        if m is None:
            raise _Reply(401, "Authorization scheme must be vapid")
        params: dict[str, str] = {}
        for part in m.group(1).split(","):
            name, sep, value = part.strip().partition("=")
            if sep:
                params[name.strip().lower()] = value.strip()
        token, key_b64 = params.get("t"), params.get("k")
        if not token or not key_b64:
            raise _Reply(401, "vapid Authorization needs t= and k=")
        cache_key = (token, key_b64)
        with self._lock:
            claims = self._verified.get(cache_key)
        try:
            raw_key = _b64d(key_b64)
        except ValueError as exc:
            raise _Reply(401, "k is not base64url") from exc
        if claims is None:
            try:
                public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
                claims = jwt.decode(
                    token,
                    key=public_key,
                    algorithms=["ES256"],
                    audience=self.origin,
                    options={"require": ["aud", "exp", "sub"]},
                )
            except (ValueError, jwt.PyJWTError) as exc:
                raise _Reply(401, f"invalid VAPID token: {exc}") from exc
            sub = claims.get("sub")
            if not isinstance(sub, str) or not (sub.startswith("mailto:") or sub.startswith("https:")):
                raise _Reply(401, "VAPID sub must be a mailto: or https: URI")
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[cache_key] = claims
        exp = claims["exp"]
        now = time.time()
        if not isinstance(exp, int | float) or exp <= now:
            raise _Reply(401, "VAPID token expired")
        if exp > now + MAX_JWT_LIFETIME:
            raise _Reply(401, "VAPID exp more than 24 h ahead")
        return raw_key


def _fmt_retry(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
