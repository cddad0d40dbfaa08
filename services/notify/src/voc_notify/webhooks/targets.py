"""Where a webhook may be sent (SSRF): `VOC_WEBHOOK_ALLOWED_HOSTS` in the push allowlist's
syntax and through the same code (`webpush.PushAllowlist`); when empty, https to public
addresses only, the name resolved and every address checked both when the endpoint is
registered and when each connection is made (`PublicResolver`: a name that later resolves to a
private address, DNS rebinding, gets no connection). Redirects are never followed (`sender`)."""

from __future__ import annotations

import asyncio
import ipaddress
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


def is_public(address: IpAddress) -> bool:
    """A global unicast address: not private, loopback, link-local, reserved, multicast, …"""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _ip(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class WebhookTargets:
    """The URL policy of webhook endpoints (see the module notes)."""

    def __init__(self, hosts: Sequence[str] = ()) -> None:
        self.allowlist = PushAllowlist(hosts, what="webhook") if hosts else None
        # The policy is fixed for the process, so a URL allowed once stays allowed: each send
        # checks its endpoint's URL again (it may have been registered under another policy)
        # without parsing it again. A refusal is not kept (rare, and it says why each time).
        self._allowed: dict[str, URL] = {}

    @property
    def public_only(self) -> bool:
        return self.allowlist is None

    def parse(self, url: str) -> URL:
        """The exact URL to request; raises `UrlRefused`."""
        allowed = self._allowed.get(url)
        if allowed is None:
            allowed = self._parse(url)
            if len(self._allowed) >= ALLOWED_KEPT:
                self._allowed.clear()
            self._allowed[url] = allowed
        return allowed

    def _parse(self, url: str) -> URL:
        try:
            parsed = parse_endpoint(url)
        except EndpointNotAllowed as exc:
            raise UrlRefused(exc.msg.replace("endpoint", "URL")) from exc
        address = _ip(parsed.host)
        listed = self.allowlist is not None and self.allowlist.allows(url)
        if address is not None and not is_public(address) and not listed:
            raise UrlRefused(f"{parsed.host} is a private, loopback or link-local address")
        if parsed.host == "localhost" and not listed:
            raise UrlRefused("localhost is not a public host")
        if self.allowlist is not None:
            try:
                return self.allowlist.parse(url)  # also: plain http only for listed loopback hosts
            except EndpointNotAllowed as exc:
                raise UrlRefused(exc.msg.replace("endpoint", "URL")) from exc
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
