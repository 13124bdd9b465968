"""Push delivery of the bridge's SETs to a receiver's `endpoint_url` (RFC 8935 §2), the outbox
handler of `ssf_push` rows.

Each attempt signs the SET (the same claims and `jti` every time) with the active key and
POSTs it (`Content-Type: application/secevent+jwt`, the stream's `authorization_header`)
through `bridge.outbound` (https to public addresses unless the receiver's
`allow_private_network`; the host checked before each attempt; no redirects):

- 202 (any 2xx) → delivered: the receiver took it (§2.2);
- 400 → given up: the receiver refused this SET (§2.3), sending it again changes nothing;
- a network error, 408, 429 or 5xx → retried with the outbox's backoff;
- any other answer, or a refused target → given up.

A stream deleted or disabled meanwhile drops its SETs; a paused one holds them (retried
until it is enabled, or the outbox gives up); a stream switched to poll delivery gets its
SETs in its poll queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag

from ..jose.sealing import seal, unseal
from ..jose.signing_keys import SigningKeys
from ..outbound import Posters, Resolver, system_resolver
from ..outbox import Delivered, GiveUp, Outcome, Retry, post_outcome
from ..settings import EventReceiverPeerSettings
from ..store.contract import EventStreamStore, OutboxRow
from ..store.contract.events import DISABLED, PAUSED
from .security_event_token import MEDIA_TYPE, mint
from .streams import PUSH

log = logging.getLogger("bridge.events")


class AuthorizationSeal:
    """A push stream's `authorization_header`, sealed at rest under a key derived from the
    key-encryption key (every replica derives the same)."""

    def __init__(self, kek: bytes) -> None:
        self._key = hmac.new(kek, b"ssf-push-authorization", hashlib.sha256).digest()

    def seal(self, stream_id: str, header: str) -> bytes:
        return seal(self._key, f"ssf-authorization:{stream_id}", {"authorization": header})

    def unseal(self, stream_id: str, sealed: bytes) -> str:
        value = unseal(self._key, f"ssf-authorization:{stream_id}", sealed)
        return str(value["authorization"])


class PushDelivery:
    def __init__(
        self,
        store: EventStreamStore,
        keys: SigningKeys,
        sealing: AuthorizationSeal,
        receivers: Mapping[str, EventReceiverPeerSettings],
        *,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._keys = keys
        self._sealing = sealing
        self._receivers = receivers
        self._clock = clock
        self._posters = Posters(resolver)

    async def __call__(self, row: OutboxRow) -> Outcome:
        payload = json.loads(row.payload)
        stream = await self._store.stream_get(payload["stream"])
        claims = payload["claims"]
        if stream is None or stream.status == DISABLED:
            return Delivered()  # nobody wants it any more
        if stream.status == PAUSED:
            return Retry("the stream is paused")
        if stream.config["delivery"]["method"] != PUSH:
            await self._store.poll_queue_add(stream.id, claims["jti"], claims, self._clock())
            return Delivered()
        receiver = self._receivers.get(stream.receiver)
        if receiver is None:
            return GiveUp(f"receiver {stream.receiver} is no longer configured")
        headers = {"Content-Type": MEDIA_TYPE, "Accept": "application/json"}
        if stream.authorization_sealed is not None:
            try:
                headers["Authorization"] = self._sealing.unseal(
                    stream.id, stream.authorization_sealed
                )
            except (InvalidTag, ValueError, KeyError):
                return GiveUp("the stream's authorization_header cannot be opened")
        token = await mint(self._keys, claims)
        url = stream.config["delivery"]["endpoint_url"]
        outcome = await post_outcome(
            self._posters(receiver.allow_private_network),
            url,
            headers,
            token.encode("ascii"),
            "the push endpoint",
        )
        if isinstance(outcome, Delivered):
            log.info("SET %s delivered on stream %s", claims["jti"], stream.id)
        return outcome
