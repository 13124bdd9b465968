"""The callback ("ping") that tells a client its deferred request has been decided
(shared/specs/dtr.md §5): `POST {"deferral_code": ...}` to the client's registered
notification endpoint, with `Authorization: Bearer <client_notification_token>` when the
client sent one. It carries no outcome: the client polls for that. A CIBA request's ping
names the code as the client knows it (CIBA Core §10.2: `{"auth_req_id": ...}` to its
`backchannel_client_notification_endpoint`): the body's one member is the deferral's handle
(`models.handle_of`).

Queued in the resolving transaction as an outbox row of kind `deferral_ping` whose payload
is sealed (it holds the code and the notification token), and sent by the outbox worker
through `PingSender`, which

- sends nothing when the deferral was cancelled, has expired or was already redeemed;
- sends it through `bridge.outbound` (the rules for every request to a registered URL):
  https only (with `allow_private_callbacks`, also http to loopback), the host resolved at
  delivery and non-public addresses refused (unless `allow_private_callbacks`), the
  connection made to the address checked, no redirects, finite timeouts, a capped read;
- answers the worker: any 2xx → delivered; 401, 5xx, network errors → retry (the worker
  backs off); any other status → give up.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from ..outbound import (
    OutboundPoster,
    Resolver,
    Target,
    TargetRefused,
    check_target,
    system_resolver,
)
from ..outbox import Delivered, GiveUp, Outcome, Retry
from ..store.contract import OutboxRow
from ..store.contract.deferrals import DENIED, PING_KIND, RESOLVED_OK, DeferralRecord
from .codes import DeferralKeys, SealError
from .models import DEFERRAL_CODE_HANDLE, handle_of

log = logging.getLogger("bridge.deferral.ping")

# `Target`, `TargetRefused` and `check_target` live in `bridge.outbound`; re-exported here.
__all__ = ["PING_KIND", "PingSender", "Target", "TargetRefused", "check_target", "ping_payload"]

_PAYLOAD_PURPOSE = "deferral_ping"
# Worth telling the client about; cancelled, expired and redeemed deferrals are not.
_PING_STATES = frozenset({RESOLVED_OK, DENIED})


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
            "member": handle_of(record),
        },
    )


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
        self._clock = clock
        self._poster = OutboundPoster(
            allow_private=allow_private,
            verify=verify,
            resolver=resolver,
            connect_timeout=connect_timeout,
            timeout=timeout,
            total_timeout=total_timeout,
            max_response_bytes=max_response_bytes,
        )

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
        headers = {"Content-Type": "application/json"}
        if isinstance(token, str):
            headers["Authorization"] = f"Bearer {token}"
        member = ping.get("member", DEFERRAL_CODE_HANDLE)  # older payloads: DTR's
        body = json.dumps({str(member): code}).encode()
        try:
            status = await self._poster.post(endpoint, headers, body)
        except TargetRefused as exc:
            log.warning("ping to %s refused: %s", _host(endpoint), exc)
            return GiveUp(f"target refused: {exc}")
        except (httpx.HTTPError, TimeoutError) as exc:  # TimeoutError before its base OSError
            return Retry(f"ping failed: {type(exc).__name__}")
        except OSError as exc:
            return Retry(f"cannot resolve the endpoint host: {type(exc).__name__}")
        log.info("ping to %s answered %d", _host(endpoint), status)
        if 200 <= status < 300:
            return Delivered()
        if status == 401 or status >= 500:
            return Retry(f"the endpoint answered {status}")
        return GiveUp(f"the endpoint answered {status}")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
