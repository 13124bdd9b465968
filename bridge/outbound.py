"""Requests the bridge sends on its own initiative to URLs that others registered.

Two parts of the bridge call back to a URL somebody else chose: deferred-token pings go to
an OAuth client's registered notification endpoint (`deferral/ping.py`), ARAP callbacks to
the endpoint an access request's submitter named (`access_requests/callbacks.py`). Whoever
registers the URL decides where the bridge connects from inside its own network, so both go
through the one implementation here, which keeps the bridge from being turned against
itself or its neighbours (server-side request forgery):

- only `https` with a host and no user info; with `allow_private` (local testing), also
  plain `http`, and then only to loopback addresses;
- the host is resolved at delivery and every address it resolves to is checked: never an
  unspecified or multicast address, and, unless `allow_private`, only public ones (no
  loopback, private, link-local such as cloud metadata, shared or reserved ranges);
- the connection goes to an address that was checked (the URL is rewritten to the address
  literal), so a second lookup cannot answer differently (DNS rebinding); the Host header and
  TLS (SNI and certificate verification) still use the registered host name;
- redirects are never followed, environment proxies are ignored, timeouts are finite and at
  most a few KiB of the answer are read: only its status matters.

`OutboundPoster.post` raises `TargetRefused` when the URL may not be called (retrying will
not change that), `OSError` when the host does not resolve now, and `httpx.HTTPError` or
`TimeoutError` when the exchange fails; the last two are worth retrying.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = [
    "IPAddress",
    "OutboundPoster",
    "Resolver",
    "Target",
    "TargetRefused",
    "check_target",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# `resolver(host, port)`: the host's addresses, as strings (an IPv6 scope suffix is dropped).
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):
    """The URL may not be called (scheme, address); retrying will not change that."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as registered (a name or an address literal)
    netloc: str  # for the Host header
    port: int
    path_query: str
    addresses: list[IPAddress]  # checked; the connection goes to one of these

    def url_for(self, address: IPAddress) -> str:
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.path_query}"

    @property
    def host_is_name(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return True
        return False


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def check_target(url: str, *, allow_private: bool, resolver: Resolver) -> Target:
    """Where a request to `url` may go. `TargetRefused` when it may not; `OSError` when the
    host does not resolve now."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise TargetRefused("not an https URL with a host")
    if scheme == "http" and not allow_private:
        raise TargetRefused("plain http is refused")
    port = port or (443 if scheme == "https" else 80)
    addresses: list[IPAddress] = []
    for found in await resolver(host, port):
        address = ipaddress.ip_address(found.split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        _check_address(address, scheme, allow_private)
    path_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, parts.netloc, port, path_query, addresses)


def _check_address(address: IPAddress, scheme: str, allow_private: bool) -> None:
    plain = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        plain = address.ipv4_mapped
    if plain.is_unspecified or plain.is_multicast:
        raise TargetRefused(f"{address} is not a unicast address")
    if scheme == "http" and not plain.is_loopback:
        raise TargetRefused("plain http is allowed to loopback addresses only")
    if not allow_private and not plain.is_global:
        raise TargetRefused(f"{address} is not a public address")


class OutboundPoster:
    """POSTs to registered URLs under the rules above; `post` answers the HTTP status."""

    def __init__(
        self,
        *,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver = system_resolver,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
        total_timeout: float = 20.0,
        max_response_bytes: int = 4096,
    ) -> None:
        self._allow_private = allow_private
        # One TLS context for every request: building one loads the CA bundle (milliseconds
        # of CPU on the event loop), too dear to repeat per delivery.
        self._verify = ssl.create_default_context() if verify is True else verify
        self._resolver = resolver
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._total_timeout = total_timeout
        self._max_response_bytes = max_response_bytes

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        """POST `body` to `url` and answer the status. The total timeout covers the lookup
        too. Raises `TargetRefused`, `OSError`, `httpx.HTTPError` or `TimeoutError`."""
        async with asyncio.timeout(self._total_timeout):
            target = await check_target(
                url, allow_private=self._allow_private, resolver=self._resolver
            )
            sent = httpx.Headers(headers)
            sent["Host"] = target.netloc  # the URL sent names the address, not the host
            return await self._send(target, sent, body)

    async def _send(self, target: Target, headers: httpx.Headers, body: bytes) -> int:
        extensions = {"sni_hostname": target.host} if target.host_is_name else {}
        # A client per request, not a shared pool: pooled connections are keyed by the
        # address, and one opened (and TLS-verified) for another host must not be reused.
        async with httpx.AsyncClient(
            verify=self._verify, timeout=self._timeout, follow_redirects=False, trust_env=False
        ) as http:
            last_error: httpx.TransportError | None = None
            for address in target.addresses:
                try:
                    return await self._post(
                        http, target.url_for(address), headers, body, extensions
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    last_error = exc  # nothing was sent: the next address may work
            assert last_error is not None
            raise last_error

    async def _post(
        self,
        http: httpx.AsyncClient,
        url: str,
        headers: httpx.Headers,
        body: bytes,
        extensions: dict[str, str],
    ) -> int:
        request = http.build_request("POST", url, headers=headers, content=body)
        request.extensions.update(extensions)
        response = await http.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= self._max_response_bytes:
                    break  # the status is all that matters; a huge body is not read
        finally:
            await response.aclose()
        return response.status_code


class Posters:
    """One `OutboundPoster` per `allow_private` setting, made when first needed (each holds
    a TLS context, whose CA bundle is loaded once)."""

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self._resolver = resolver
        self._made: dict[bool, OutboundPoster] = {}

    def __call__(self, allow_private: bool) -> OutboundPoster:
        poster = self._made.get(allow_private)
        if poster is None:
            poster = OutboundPoster(allow_private=allow_private, resolver=self._resolver)
            self._made[allow_private] = poster
        return poster
