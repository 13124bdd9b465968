"""The callback ("ping") that tells a client its deferred request has been decided
(shared/specs/dtr.md §5): `POST {"deferral_code": ...}` to the client's registered
notification endpoint, with `Authorization: Bearer <client_notification_token>` when the
client sent one. It carries no outcome: the client polls for that.

Queued in the resolving transaction as an outbox row of kind `deferral_ping` whose payload
is sealed (it holds the code and the notification token), and sent by the outbox worker
through `PingSender`, which

- sends nothing when the deferral was cancelled, has expired or was already redeemed;
- accepts only https targets; with `allow_private_callbacks`, also http to loopback;
- resolves the host at delivery, refuses private, loopback, link-local and other non-public
  addresses (unless `allow_private_callbacks`), and connects to the address it checked
  (TLS still verifies the certificate for the host name);
- never follows redirects, uses finite timeouts and reads at most a few KiB of the answer;
- answers the worker: any 2xx → delivered; 401, 5xx, network errors → retry (the worker
  backs off); any other status → give up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from ..outbox import Delivered, GiveUp, Outcome, Retry
from ..store.sqlite_deferrals import DENIED, PING_KIND, RESOLVED_OK, DeferralRecord
from ..store.sqlite_outbox import OutboxRow
from .codes import DeferralKeys, SealError

log = logging.getLogger("bridge.deferral.ping")

__all__ = ["PING_KIND", "PingSender", "Target", "TargetRefused", "check_target", "ping_payload"]

_PAYLOAD_PURPOSE = "deferral_ping"
# Worth telling the client about; cancelled, expired and redeemed deferrals are not.
_PING_STATES = frozenset({RESOLVED_OK, DENIED})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class _FindsDeferrals(Protocol):
    async def deferral_find(self, code_hash: str) -> DeferralRecord | None: ...


def ping_payload(keys: DeferralKeys, record: DeferralRecord) -> bytes | None:
    """The sealed outbox payload for `record`'s ping; None when it has no endpoint."""
    if record.notification_endpoint is None or record.code_sealed is None:
        return None
    code = keys.unseal_code(record.code_hash, record.code_sealed)
    token = None
    if record.notification_token_sealed is not None:
        token = keys.unseal_notification_token(record.code_hash, record.notification_token_sealed)
    return keys.seal(
        _PAYLOAD_PURPOSE,
        {
            "code_hash": record.code_hash,
            "endpoint": record.notification_endpoint,
            "code": code,
            "token": token,
        },
    )


class TargetRefused(Exception):
    """The endpoint may not be called (scheme, address); retrying will not change that."""


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
    """Where a ping to `url` may go. `TargetRefused` when it may not; `OSError` when the host
    does not resolve now."""
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


class PingSender:
    """The outbox handler for `deferral_ping` rows."""

    def __init__(
        self,
        store: _FindsDeferrals,
        keys: DeferralKeys,
        *,
        allow_private: bool,
        clock: Callable[[], float],
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
        total_timeout: float = 20.0,
        max_response_bytes: int = 4096,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._store = store
        self._keys = keys
        self._allow_private = allow_private
        self._clock = clock
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._total_timeout = total_timeout
        self._max_response_bytes = max_response_bytes
        # One TLS context for every ping: building one loads the CA bundle (milliseconds of
        # CPU on the event loop), too dear to repeat per delivery.
        self._verify = ssl.create_default_context() if verify is True else verify
        self._resolver = resolver

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            ping = self._keys.unseal(_PAYLOAD_PURPOSE, row.payload)
        except SealError:
            return GiveUp("the ping payload cannot be opened")
        record = await self._store.deferral_find(str(ping["code_hash"]))
        if (
            record is None
            or record.status not in _PING_STATES
            or self._clock() >= record.expires_at
        ):
            return Delivered()  # nothing worth telling any more: suppressed, not sent
        endpoint, code, token = str(ping["endpoint"]), str(ping["code"]), ping.get("token")
        try:
            target = await check_target(
                endpoint, allow_private=self._allow_private, resolver=self._resolver
            )
        except TargetRefused as exc:
            log.warning("ping to %s refused: %s", _host(endpoint), exc)
            return GiveUp(f"target refused: {exc}")
        except OSError as exc:
            return Retry(f"cannot resolve the endpoint host: {type(exc).__name__}")
        headers = {"Content-Type": "application/json", "Host": target.netloc}
        if isinstance(token, str):
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"deferral_code": code}).encode()
        try:
            async with asyncio.timeout(self._total_timeout):
                status = await self._send(target, headers, body)
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return Retry(f"ping failed: {type(exc).__name__}")
        log.info("ping to %s answered %d", target.host, status)
        if 200 <= status < 300:
            return Delivered()
        if status == 401 or status >= 500:
            return Retry(f"the endpoint answered {status}")
        return GiveUp(f"the endpoint answered {status}")

    async def _send(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        extensions = {"sni_hostname": target.host} if target.host_is_name else {}
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
        headers: dict[str, str],
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


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
