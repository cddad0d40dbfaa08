"""Web Push sender (RFC 8030 transport, RFC 8291 message encryption, RFC 8292 VAPID).

The notify delivery worker owns retries and subscription bookkeeping; this module
only encrypts, authenticates, sends one message and classifies the answer:

* ``accepted`` - the push service took the message (200/201/202, any other 2xx).
* ``gone``     - 404/410: the subscription is dead, the caller removes it.
* ``retry``    - 408/429/5xx or a network error/timeout; ``retry_after`` carries the
  server's ``Retry-After`` in seconds when present. Use :func:`backoff_delay`.
* ``rejected`` - 400/401/403/413, redirects and other 4xx: retrying will not help.

SSRF: every endpoint goes through :class:`PushAllowlist` before any byte leaves the
process, redirects are never followed, and the URL object that is requested is the
one that was checked.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import email.utils
import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import random
import re
import ssl
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
import certifi
import jwt
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from yarl import URL

__all__ = [
    "DEFAULT_PUSH_HOSTS",
    "MAX_PAYLOAD_BYTES",
    "EndpointNotAllowed",
    "InvalidSubscription",
    "PayloadTooLarge",
    "PushAllowlist",
    "PushRequest",
    "PushResult",
    "PushStatus",
    "PushSubscription",
    "VapidKeys",
    "WebPushSender",
    "backoff_delay",
    "encrypt_aes128gcm",
    "normalize_topic",
    "parse_retry_after",
]

log = logging.getLogger(__name__)


DEFAULT_PUSH_HOSTS: Final[tuple[str, ...]] = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)

#: RFC 8291 s4: a push message is a single record of at most 4096 octets:
#: 86 octets of aes128gcm header (salt 16, rs 4, idlen 1, keyid 65) + 16 tag + 1 delimiter.
RECORD_SIZE: Final = 4096
MAX_PAYLOAD_BYTES: Final = RECORD_SIZE - 86 - 16 - 1  # 3993

URGENCIES: Final[frozenset[str]] = frozenset({"very-low", "low", "normal", "high"})
MAX_TTL: Final = 28 * 24 * 3600  # what FCM/autopush accept at most; larger values are clamped
MAX_ENDPOINT_LENGTH: Final = 4096
VAPID_MAX_LIFETIME: Final = 24 * 3600  # RFC 8292 s2: exp MUST NOT be more than 24 h ahead
VAPID_DEFAULT_LIFETIME: Final = 12 * 3600
VAPID_REFRESH_MARGIN: Final = 3600  # reuse a token until 1 h before its exp

_TOPIC_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_\-+/]*={0,2}")
_URL_CHARS_RE: Final = re.compile(r"[\x21-\x5b\x5d-\x7e]+")  # printable ASCII except "\\"
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_IPV4_STYLE_RE: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# WHATWG percent-encode sets for the printable ASCII that _URL_CHARS_RE lets through
# (the request target is encoded exactly as httpx, the previous client, encoded it)
_PATH_ENCODE_RE: Final = re.compile(r'["<>`{}]')
_QUERY_ENCODE_RE: Final = re.compile(r'["<>]')
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


# ---------------------------------------------------------------------------------------
# errors


class InvalidSubscription(ValueError):
    """A browser PushSubscription JSON that cannot be used; ``field`` names the culprit."""

    def __init__(self, msg: str, field: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.msg = msg
        self.field = field


class EndpointNotAllowed(InvalidSubscription):
    """The endpoint URL is not on the push-host allowlist (or is malformed/suspicious)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, "endpoint")


class PayloadTooLarge(ValueError):
    """The plaintext does not fit into one 4096-octet RFC 8291 record."""


# ---------------------------------------------------------------------------------------
# base64url helpers


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Decode base64url (padding optional). Standard-alphabet input is tolerated, as
    some older browsers/libraries produced it. Raises ``ValueError``."""
    if not _B64URL_RE.fullmatch(value):
        raise ValueError("not base64url")
    stripped = value.rstrip("=").replace("+", "-").replace("/", "_")
    if len(stripped) % 4 == 1:
        raise ValueError("bad base64url length")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


# ---------------------------------------------------------------------------------------
# VAPID keys


class VapidKeys:
    """A P-256 VAPID key pair (RFC 8292)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("VAPID keys must be P-256 (secp256r1)")
        self.private_key: Final = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key_bytes: Final[bytes] = raw
        #: uncompressed point, base64url without padding: the browser's applicationServerKey
        self.public_key_b64url: Final[str] = b64url_encode(raw)

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKeys:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("VAPID key file does not hold an EC private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> VapidKeys:
        """Load the PEM key at ``path``; on first start generate one and persist it with
        mode 0600 (written to a temp file in the same directory, then renamed, so a
        crash never leaves a half-written key). A group/other-readable existing file is
        tightened to 0600."""
        path = Path(path)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            pass
        else:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                log.warning("VAPID key %s had mode %o; tightening to 0600", path, mode)
                os.chmod(path, 0o600)
            return cls.from_pem(pem)

        keys = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(keys.to_pem())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                # link() fails if another process won the race: then use its key
                os.link(tmp, path)
            except FileExistsError:
                return cls.from_pem(path.read_bytes())
        finally:
            os.unlink(tmp)
        log.info("generated new VAPID key pair at %s", path)
        return keys

    def sign_jwt(self, audience: str, subject: str, expires_at: int) -> str:
        claims = {"aud": audience, "exp": expires_at, "sub": subject}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"typ": "JWT"})


# ---------------------------------------------------------------------------------------
# subscription + allowlist


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _ParsedEndpoint:
    scheme: str
    host: str  # lower-case; IPv6 without brackets
    port: int  # effective port
    url: URL


def _parse_endpoint(endpoint: str) -> _ParsedEndpoint:
    """Strict structural parse of a push endpoint; raises EndpointNotAllowed."""
    if not isinstance(endpoint, str) or not endpoint:
        raise EndpointNotAllowed("endpoint must be a non-empty string")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise EndpointNotAllowed("endpoint too long")
    if not _URL_CHARS_RE.fullmatch(endpoint):
        raise EndpointNotAllowed("endpoint contains whitespace, control, non-ASCII or '\\'")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise EndpointNotAllowed(f"unparseable endpoint: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise EndpointNotAllowed(f"scheme {parts.scheme!r} not allowed")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise EndpointNotAllowed("userinfo in endpoint not allowed")
    if parts.fragment or "#" in endpoint:
        raise EndpointNotAllowed("fragment in endpoint not allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise EndpointNotAllowed("endpoint has no host")
    if _ip_or_none(host) is None and not _HOST_RE.fullmatch(host):
        raise EndpointNotAllowed(f"invalid host {host!r}")
    effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
    # What the previous client's (httpx's) URL parser refused on top of urlsplit's checks:
    # malformed IPv4/IPv6 literals, and IDNA "xn--" hosts (it compared them decoded).
    if _IPV4_STYLE_RE.fullmatch(host) and not isinstance(_ip_or_none(host), ipaddress.IPv4Address):
        raise EndpointNotAllowed(f"unparseable endpoint: Invalid IPv4 address: {host!r}")
    if parts.netloc.startswith("[") and not isinstance(_ip_or_none(host), ipaddress.IPv6Address):
        literal = parts.netloc[: parts.netloc.find("]") + 1]
        raise EndpointNotAllowed(f"unparseable endpoint: Invalid IPv6 address: {literal!r}")
    if host.startswith("xn--"):
        raise EndpointNotAllowed("ambiguous endpoint URL")
    # Parse again with the client's own parser and insist both parsers agree, so a
    # parser differential can never make us check one host and connect to another.
    try:
        target = _request_target(parts.path, parts.query if "?" in endpoint else None)
        reparsed = URL(f"{parts.scheme}://{parts.netloc}{target}", encoded=True)
        reparsed_port = reparsed.explicit_port
    except (TypeError, ValueError) as exc:
        raise EndpointNotAllowed(f"unparseable endpoint: {exc}") from exc
    if (
        reparsed.scheme != scheme
        or (reparsed.raw_host or "").lower() != host
        or (reparsed_port if reparsed_port is not None else _DEFAULT_PORTS[scheme]) != effective_port
        or reparsed.raw_user is not None
        or reparsed.raw_password is not None
    ):
        raise EndpointNotAllowed("ambiguous endpoint URL")
    # What is requested: built from the checked parts (lower-case host, default port
    # omitted, as in the Host header); encoded=True: the request target is sent verbatim.
    authority = f"[{host}]" if ":" in host else host
    if effective_port != _DEFAULT_PORTS[scheme]:
        authority += f":{effective_port}"
    url = URL(f"{scheme}://{authority}{target}", encoded=True)
    return _ParsedEndpoint(scheme=scheme, host=host, port=effective_port, url=url)


def _request_target(path: str, query: str | None) -> str:
    """Origin-form request target: dot segments removed (RFC 3986 s5.2.4), existing
    ``%xx`` escapes kept verbatim, the few printable characters that must not appear raw
    percent-encoded (WHATWG path/query percent-encode sets)."""
    if "." in path:
        segments = path.split("/")
        if "." in segments or ".." in segments:
            kept: list[str] = []
            for segment in segments:
                if segment == "..":
                    if kept and kept != [""]:
                        kept.pop()
                elif segment != ".":
                    kept.append(segment)
            path = "/".join(kept)
    target = _PATH_ENCODE_RE.sub(_percent_encode, path) or "/"
    if query is not None:
        target += "?" + _QUERY_ENCODE_RE.sub(_percent_encode, query)
    return target


def _percent_encode(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


class PushAllowlist:
    """Hosts a push may be sent to.

    Entries: ``"host"`` (default port of the scheme only), ``"host:port"``,
    ``"host:*"`` (any port), ``"*.suffix"`` (any sub-domain of ``suffix``, at any depth,
    not ``suffix`` itself; never matches an IP literal). IP literals only match when listed
    exactly (IPv6 as ``"[::1]:*"``). ``http://`` is accepted only for listed loopback hosts.
    """

    def __init__(self, hosts: Iterable[str] = DEFAULT_PUSH_HOSTS) -> None:
        self._exact: dict[str, set[int] | None] = {}  # host -> allowed ports (None = any)
        self._suffixes: list[str] = []
        for raw in hosts:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry.startswith("*."):
                suffix = entry[1:]  # ".push.apple.com"
                if not _HOST_RE.fullmatch(suffix[1:]):
                    raise ValueError(f"bad allowlist wildcard {raw!r}")
                self._suffixes.append(suffix)
                continue
            host, port_spec = entry, ""
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                port_spec = rest[1:] if rest.startswith(":") else ""
            elif entry.count(":") == 1:
                host, _, port_spec = entry.partition(":")
            if _ip_or_none(host) is None and not _HOST_RE.fullmatch(host):
                raise ValueError(f"bad allowlist host {raw!r}")
            if port_spec == "*":
                self._exact[host] = None
            else:
                current = self._exact.setdefault(host, set())
                if current is not None:
                    current.add(int(port_spec) if port_spec else 0)  # 0 = scheme default

    @property
    def hosts(self) -> tuple[str, ...]:
        return (*self._exact, *(f"*{s}" for s in self._suffixes))

    def _host_port_allowed(self, host: str, port: int, scheme: str) -> bool:
        if host in self._exact:
            ports = self._exact[host]
            if ports is None or port in ports:
                return True
            return 0 in ports and port == _DEFAULT_PORTS[scheme]
        if _ip_or_none(host) is not None:
            return False
        return any(host.endswith(s) for s in self._suffixes) and port == _DEFAULT_PORTS[scheme]

    def parse(self, endpoint: str) -> URL:
        """Check ``endpoint`` and return the exact URL object to request."""
        parsed = _parse_endpoint(endpoint)
        if not self._host_port_allowed(parsed.host, parsed.port, parsed.scheme):
            raise EndpointNotAllowed(f"push host {parsed.host}:{parsed.port} not on allowlist")
        if parsed.scheme == "http" and not _is_loopback(parsed.host):
            raise EndpointNotAllowed("plain http only allowed for loopback hosts")
        return parsed.url

    def check(self, endpoint: str) -> None:
        """Raise :class:`EndpointNotAllowed` unless a push to ``endpoint`` is allowed."""
        self.parse(endpoint)

    def allows(self, endpoint: str) -> bool:
        try:
            self.parse(endpoint)
        except EndpointNotAllowed:
            return False
        return True


@dataclass(frozen=True, slots=True)
class PushSubscription:
    endpoint: str
    p256dh: str  # base64url, 65-octet uncompressed P-256 point
    auth: str  # base64url, 16 octets

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, allowlist: PushAllowlist | None = None
    ) -> PushSubscription:
        """Validate a browser ``PushSubscription.toJSON()`` mapping.

        Structure and keys are always validated; the endpoint must be ``https://`` (plain
        ``http://`` only for loopback hosts). With ``allowlist`` the endpoint must also be
        on it (:class:`EndpointNotAllowed`, a subclass of :class:`InvalidSubscription`).
        """
        if not isinstance(data, Mapping):
            raise InvalidSubscription("subscription must be a JSON object", "subscription")
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise InvalidSubscription("missing or not a string", "endpoint")
        parsed = _parse_endpoint(endpoint)
        if parsed.scheme != "https" and not _is_loopback(parsed.host):
            raise InvalidSubscription("endpoint must be https", "endpoint")
        if allowlist is not None:
            allowlist.check(endpoint)
        keys = data.get("keys")
        if not isinstance(keys, Mapping):
            raise InvalidSubscription("missing or not an object", "keys")
        p256dh = keys.get("p256dh")
        auth = keys.get("auth")
        if not isinstance(p256dh, str) or not p256dh:
            raise InvalidSubscription("missing or not a string", "keys.p256dh")
        if not isinstance(auth, str) or not auth:
            raise InvalidSubscription("missing or not a string", "keys.auth")
        try:
            point = b64url_decode(p256dh)
        except ValueError as exc:
            raise InvalidSubscription(f"invalid base64url ({exc})", "keys.p256dh") from exc
        if len(point) != 65 or point[0] != 0x04:
            raise InvalidSubscription(
                f"must be a 65-octet uncompressed P-256 point, got {len(point)} octets",
                "keys.p256dh",
            )
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError as exc:
            raise InvalidSubscription("not a point on P-256", "keys.p256dh") from exc
        try:
            secret = b64url_decode(auth)
        except ValueError as exc:
            raise InvalidSubscription(f"invalid base64url ({exc})", "keys.auth") from exc
        if len(secret) != 16:
            raise InvalidSubscription(f"must be 16 octets, got {len(secret)}", "keys.auth")
        return cls(endpoint=endpoint, p256dh=b64url_encode(point), auth=b64url_encode(secret))

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


# ---------------------------------------------------------------------------------------
# RFC 8291 encryption


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, "sha256")


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    # Every length here is at most one SHA-256 block: T(1) = HMAC(PRK, info || 0x01) (RFC 5869).
    return hmac.digest(prk, info + b"\x01", "sha256")[:length]


@functools.lru_cache(maxsize=4096)
def _ua_key(ua_public: bytes) -> ec.EllipticCurvePublicKey:
    """The subscription's public key; decoding checks the point is on the curve (~30 us), and
    a phone's key is the same for every push to it."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)


def encrypt_aes128gcm(
    payload: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes | None = None,
    as_private: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """RFC 8291 message encryption, one RFC 8188 aes128gcm record of size 4096.

    ``salt``/``as_private`` are only for test vectors; normally both are fresh per message.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload is {len(payload)} octets, max {MAX_PAYLOAD_BYTES}")
    if salt is None:
        salt = os.urandom(16)
    if as_private is None:
        as_private = ec.generate_private_key(ec.SECP256R1())
    as_public = as_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = as_private.exchange(ec.ECDH(), _ua_key(ua_public))
    # HKDF-SHA256 with hmac.digest (C, one call per step) rather than an HKDF object per key.
    ikm = _hkdf_expand(
        _hkdf_extract(auth_secret, ecdh_secret), b"WebPush: info\x00" + ua_public + as_public, 32
    )
    prk = _hkdf_extract(salt, ikm)
    cek = _hkdf_expand(prk, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf_expand(prk, b"Content-Encoding: nonce\x00", 12)
    ciphertext = AESGCM(cek).encrypt(nonce, payload + b"\x02", None)  # last record: 0x02
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + ciphertext


# ---------------------------------------------------------------------------------------
# results, retry helpers


PushStatus = Literal["accepted", "gone", "retry", "rejected"]


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


def _decode_text(body: bytes, charset: str | None) -> str:
    """The body as text: the declared charset if Python knows it, else UTF-8; undecodable
    bytes replaced (never raises)."""
    encoding = "utf-8"
    if charset:
        with contextlib.suppress(LookupError):
            encoding = codecs.lookup(charset).name
    return body.decode(encoding, errors="replace")


def _classify(code: int, headers: Mapping[str, str], text: str) -> PushResult:
    if 200 <= code < 300:
        return PushResult("accepted", code, None, headers.get("location", ""))
    detail = text[:300]
    if code in (404, 410):
        return PushResult("gone", code, None, detail or "subscription gone")
    if code in (408, 425, 429) or code >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return PushResult("retry", code, retry_after, detail or "push service busy")
    if 300 <= code < 400:
        return PushResult("rejected", code, None, "redirect not followed")
    return PushResult("rejected", code, None, detail or f"HTTP {code}")


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
        self,
        subscription: PushSubscription,
        payload: bytes,
        *,
        ttl: int,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> PushRequest:
        """Validate, encrypt and sign; raises EndpointNotAllowed/ValueError, never sends."""
        url = self._allowlist.parse(subscription.endpoint)  # SSRF gate: before anything else
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
        self,
        subscription: PushSubscription,
        payload: bytes,
        *,
        ttl: int,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> PushResult:
        """Send one push. Raises :class:`EndpointNotAllowed` (before any I/O) for an endpoint
        off the allowlist, :class:`PayloadTooLarge`/``ValueError`` for bad arguments;
        every outcome of the HTTP exchange is returned as a :class:`PushResult`."""
        request = self.build_request(subscription, payload, ttl=ttl, urgency=urgency, topic=topic)
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
                body = await response.read()
        except TimeoutError as exc:  # aiohttp's timeout errors subclass TimeoutError
            return PushResult("retry", None, None, f"timeout: {type(exc).__name__}")
        except aiohttp.ClientError as exc:
            return PushResult("retry", None, None, f"network error: {type(exc).__name__}: {exc}")
        result = _classify(response.status, response.headers, _decode_text(body, response.charset))
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
