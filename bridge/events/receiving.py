"""The SET Recipient: one pipeline for every SET, pushed (`push_endpoint`) or polled
(`polling`).

verify completely (`transmitters.KnownTransmitters.verify`: signature, `typ`, `iss`, `aud`,
`iat`, an event type the transmitter may send) → the event conforms to its definition
(the action's `check`) → its `jti` was never received before, by any replica (the shared
replay cache, for as long as the SET could still be accepted) → act on it.

Nothing changes before the last check passed. Each action is one store transaction, or one
compare-and-set per access request or approval, so an event is never half applied to any of
them; what it changed names it as the source in the audit trail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from ..store.contract import ReplayCache
from .event_types import ALWAYS_SENT
from .incoming import Incoming
from .set_errors import AlreadyReceived, InvalidRequest
from .transmitters import KnownTransmitters

log = logging.getLogger("bridge.events")

REPLAY_NAMESPACE = "ssf-set-jti"
TXN_NAMESPACE = "ssf-set-txn"
# How long a `txn` is remembered: an event that comes back later is acted on and passed on
# again (a loop between two bridges is then one round a day).
TXN_SECONDS = 86_400.0


class Action(Protocol):
    def check(self, incoming: Incoming) -> None:
        """Raise the `SETError` for an event that does not conform to its definition."""
        ...

    async def __call__(self, incoming: Incoming) -> None:
        """Carry the event out; raise the `SETError` for a refusal (after recording it)."""
        ...


class Acknowledge:
    """SSF §8.1.4, §8.1.5: a verification or stream-updated event, about a stream this
    bridge receives on. The bridge asks for no verification itself and manages no stream
    at its transmitters, so it expects no particular `state`: the event is acknowledged."""

    def check(self, incoming: Incoming) -> None:
        return None

    async def __call__(self, incoming: Incoming) -> None:
        log.info("%s from %s", incoming.event.event_type, incoming.transmitter.name)


class Receiver:
    def __init__(
        self,
        transmitters: KnownTransmitters,
        replay: ReplayCache,
        actions: Mapping[str, Action],
        *,
        max_age: int,
        clock: Callable[[], float],
    ) -> None:
        self.transmitters = transmitters
        self._replay = replay
        self._actions = {**dict.fromkeys(ALWAYS_SENT, Acknowledge()), **actions}
        self._max_age = max_age
        self._clock = clock

    async def receive(self, token: str) -> Incoming:
        """Verify, take and act on one SET; the `SETError` to answer otherwise."""
        now = self._clock()
        transmitter, event = await self.transmitters.verify(token, now)
        action = self._actions.get(event.event_type)
        if action is None:
            raise InvalidRequest("the bridge does not act on events of this type")
        incoming = Incoming(transmitter, event)
        action.check(incoming)
        spent = json.dumps([event.issuer, event.jti], separators=(",", ":"))
        if not await self._replay.use_once(REPLAY_NAMESPACE, spent, event.iat + self._max_age + 1):
            raise AlreadyReceived("this SET was received before (its jti)")
        first = await self._replay.use_once(TXN_NAMESPACE, incoming.txn, now + TXN_SECONDS)
        incoming = Incoming(transmitter, event, first_of_txn=first)
        await action(incoming)
        return incoming
