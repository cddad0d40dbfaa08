"""Where a webhook may be sent (SSRF): `VOC_WEBHOOK_ALLOWED_HOSTS` in the push allowlist's
syntax and through the same code (`webpush.PushAllowlist`); when empty, https to public
addresses only, the name resolved and every address checked both when the endpoint is
registered and when each connection is made (`PublicResolver`: a name that later resolves to a
private address, DNS rebinding, gets no connection). Redirects are never followed (`sender`)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Sequence
from typing import Any

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from voc_notify.webpush.endpoints import EndpointNotAllowed, PushAllowlist, parse_endpoint

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REGISTRATION_DNS_TIMEOUT = 2.0
ALLOWED_KEPT = 4096  # URLs whose check is remembered (endpoints are few; a bound all the same)


class UrlRefused(ValueError):
    """The URL may not be a webhook endpoint; the message says why (answered as 422 on `url`)."""


# IPv6 forms that carry an IPv4 address and reach it through a translator or a tunnel: NAT64's
# well-known prefix (RFC 6052) and the deprecated IPv4-compatible ::/96. Python 3.11 counts
# 64:ff9b::7f00:1 (127.0.0.1 through NAT64) as global; the IPv4 address inside decides instead.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# SIIT's IPv4-translated form (RFC 2765), ::ffff:0:a.b.c.d, which Python does not unwrap.
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# Global unicast space (RFC 4291 §2.4): Python 3.11's tables count site-local fec0::/10 and
# newer reserved blocks (5f00::/16, 3fff::/20) as global; outside 2000::/3 nothing is public.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_DOCUMENTATION = ipaddress.IPv6Network("3fff::/20")  # RFC 9637
# NAT64's local-use prefix (RFC 8215) embeds the IPv4 address where each network chooses.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches (mapped, 6to4, Teredo's client, NAT64,
    IPv4-compatible), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IpAddress) -> bool:
    """A global unicast address: not private, loopback, link-local, reserved, multicast, …; an
    IPv6 form that carries an IPv4 address is decided by that IPv4 address alone (Python's own
    tables for 6to4 and NAT64 changed between 3.11 patch releases, CVE-2024-4032)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address not in _GLOBAL_UNICAST or address in _DOCUMENTATION:
            return False
    return address.is_global and not address.is_multicast


def _ip(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _in_url_words(message: str) -> str:
    """A push-endpoint refusal in a webhook's words: "endpoint" is "URL", and "ambiguous endpoint
    URL" is "ambiguous URL" (a plain replace made it "ambiguous URL URL")."""
    return re.sub(r"\bendpoint(?: URL)?\b", "URL", message)


class WebhookTargets:
    """The URL policy of webhook endpoints (see the module notes)."""

    def __init__(self, hosts: Sequence[str] = ()) -> None:
        self.allowlist = PushAllowlist(hosts, what="webhook") if hosts else None
        # The policy is fixed for the process, so a URL allowed once stays allowed: each send
        # checks its endpoint's URL again (it may have been registered under another policy)
        # without parsing it again. A refusal raises and is not kept (rare, and it says why).
        self._allowed = functools.lru_cache(maxsize=ALLOWED_KEPT)(self._parse)

    @property
    def public_only(self) -> bool:
        return self.allowlist is None

    def parse(self, url: str) -> URL:
        """The exact URL to request; raises `UrlRefused`."""
        return self._allowed(url)

    def _parse(self, url: str) -> URL:
        try:
            parsed = parse_endpoint(url)
        except EndpointNotAllowed as exc:
            raise UrlRefused(_in_url_words(exc.msg)) from exc
        address = _ip(parsed.host)
        listed = self.allowlist is not None and self.allowlist.allows(url)
        if address is not None and not is_public(address) and not listed:
            raise UrlRefused(
                f"{parsed.host} is a private, loopback or link-local address "
                f"(list host:port in VOC_WEBHOOK_ALLOWED_HOSTS to allow it)"
            )
        if parsed.host == "localhost" and not listed:
            raise UrlRefused(
                "localhost is not a public host (list it in VOC_WEBHOOK_ALLOWED_HOSTS to allow it)"
            )
        if self.allowlist is not None:
            try:
                return self.allowlist.parse(url)  # also: plain http only for listed loopback hosts
            except EndpointNotAllowed as exc:
                raise UrlRefused(_in_url_words(exc.msg)) from exc
        if parsed.scheme != "https":
            raise UrlRefused("the URL must be https")
        return parsed.url

    async def check(self, url: str) -> URL:
        """`parse`, and with no allowlist the name resolved: one non-public address refuses it
        (a name that does not resolve now is accepted; each send checks again)."""
        target = self.parse(url)
        host = target.raw_host or ""
        if self.public_only and _ip(host) is None:
            try:
                infos = await asyncio.wait_for(
                    asyncio.get_running_loop().getaddrinfo(host, target.port, type=socket.SOCK_STREAM),
                    REGISTRATION_DNS_TIMEOUT,
                )
            except (OSError, TimeoutError):
                return target
            for info in infos:
                address = _ip(str(info[4][0]).split("%", 1)[0])
                if address is None or not is_public(address):
                    raise UrlRefused(f"{host} resolves to a private, loopback or link-local address")
        return target


class NonPublicAddress(OSError):
    """A name resolved to an address webhooks may not reach."""


def refused_by_resolver(exc: BaseException) -> bool:
    """Whether a client error came from `PublicResolver`'s refusal (raised as it is, or wrapped)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, NonPublicAddress) or isinstance(
            getattr(seen, "os_error", None), NonPublicAddress
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class PublicResolver(AbstractResolver):
    """getaddrinfo (as the push sender resolves), refusing a name with any non-public address:
    the check happens on the addresses the connection is then made to."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for info in found:
            address = _ip(str(info["host"]))
            if address is None or not is_public(address):
                raise NonPublicAddress(f"{host} resolves to a non-public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


def resolver_for(targets: WebhookTargets) -> Any:
    return PublicResolver() if targets.public_only else ThreadedResolver()
