"""Push endpoints: the browser's subscription JSON, and the allowlist every endpoint passes
before any byte leaves the process (SSRF: redirects are never followed, and the URL object that
is requested is the one that was checked)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from yarl import URL

from voc_notify.webpush.crypto import b64url_decode, b64url_encode

DEFAULT_PUSH_HOSTS: Final[tuple[str, ...]] = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)

MAX_ENDPOINT_LENGTH: Final = 4096
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_URL_CHARS_RE: Final = re.compile(r"[\x21-\x5b\x5d-\x7e]+")  # printable ASCII except "\\"
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_IPV4_STYLE_RE: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# WHATWG percent-encode sets for the printable ASCII that _URL_CHARS_RE lets through
# (the request target is encoded exactly as httpx, the previous client, encoded it)
_PATH_ENCODE_RE: Final = re.compile(r'["<>`{}]')
_QUERY_ENCODE_RE: Final = re.compile(r'["<>]')
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


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
    if port == 0:
        raise EndpointNotAllowed("port 0 is not a port to connect to")
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


def parse_endpoint(endpoint: str) -> _ParsedEndpoint:
    """The strict parse every allowlist check starts from (webhook URLs use it too)."""
    return _parse_endpoint(endpoint)


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

    def __init__(self, hosts: Iterable[str] = DEFAULT_PUSH_HOSTS, *, what: str = "push") -> None:
        self._what = what  # "push" or "webhook": what a refusal names
        self._exact: dict[str, set[int] | None] = {}  # host -> allowed ports (None = any)
        self._suffixes: list[str] = []
        # Every push parses its device's endpoint again (the gate before sending): ~1.4 % of
        # notify's CPU at 200/s. The list never changes and a URL is immutable, so an endpoint
        # allowed once is remembered; a refusal raises and is not.
        self._allowed = functools.lru_cache(maxsize=4096)(self._check)
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
            if (_ip_or_none(host) is None and not _HOST_RE.fullmatch(host)) or not (
                port_spec in ("", "*") or port_spec.isdigit()
            ):
                raise ValueError(
                    f"bad allowlist entry {raw!r}: host, host:port, host:* or *.domain (no scheme or path)"
                )
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
        return self._allowed(endpoint)

    def _check(self, endpoint: str) -> URL:
        parsed = _parse_endpoint(endpoint)
        if not self._host_port_allowed(parsed.host, parsed.port, parsed.scheme):
            raise EndpointNotAllowed(f"{self._what} host {parsed.host}:{parsed.port} not on allowlist")
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
