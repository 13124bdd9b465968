"""`POST /ssf/poll/{stream_id}`: poll delivery of the bridge's SETs (RFC 8936 §2), for the
receiver whose stream it is (authenticated as at the management API).

read the poll (`ack`, `setErrs`, `maxEvents`, `returnImmediately`, §2.4) → the receiver's
poll stream → in one store transaction, drop what it acknowledged or reported an error for
(§2.4.2, §2.4.3: errors are logged) and take the oldest SETs still waiting → sign each
(the same claims every time it is sent again) → `{"sets": {jti: SET}, "moreAvailable"}`.

The bridge answers at once, with what waits (§2.4: a transmitter may): a receiver polls
again later rather than holding the request open. A paused stream holds its SETs: a poll
acknowledges, and gets none until the stream is enabled again.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..jose.signing_keys import SigningKeys
from ..settings import EventReceiverPeerSettings, EventTransmitterSettings
from ..store.contract import EventStreamStore
from ..store.contract.events import ENABLED
from .security_event_token import mint
from .stream_errors import BadStreamRequest, StreamNotFound
from .stream_management import read_body
from .streams import POLL

log = logging.getLogger("bridge.events")

POLL_PATH = "/ssf/poll/"
MAX_ACKS = 1000


class PollEndpoint:
    def __init__(
        self,
        store: EventStreamStore,
        keys: SigningKeys,
        settings: EventTransmitterSettings,
        max_body_bytes: int,
    ) -> None:
        self._store = store
        self._keys = keys
        self._settings = settings
        self._max_body = max_body_bytes

    async def poll(self, request: Request, receiver: EventReceiverPeerSettings) -> Response:
        body = await read_body(request, self._max_body)
        stream_id = request.path_params["stream_id"]
        record = await self._store.stream_get(stream_id)
        if (
            record is None
            or record.receiver != receiver.name
            or record.config["delivery"]["method"] != POLL
        ):
            raise StreamNotFound("no such poll stream")
        acks = _acknowledged(body)
        limit = body.get("maxEvents", self._settings.max_poll_events)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise BadStreamRequest("maxEvents must be a non-negative integer")
        if record.status != ENABLED:
            limit = 0
        waiting, more = await self._store.poll_queue_take(
            record.id, acks, min(limit, self._settings.max_poll_events)
        )
        sets = {item.jti: await mint(self._keys, item.claims) for item in waiting}
        return JSONResponse(
            {"sets": sets, "moreAvailable": more and record.status == ENABLED},
            headers={"Cache-Control": "no-store"},
        )


def _acknowledged(body: dict[str, Any]) -> list[str]:
    """The `jti`s acknowledged (`ack`) or reported as errors (`setErrs`, logged)."""
    ack = body.get("ack", [])
    errors = body.get("setErrs", {})
    if not isinstance(ack, list) or not all(isinstance(jti, str) for jti in ack):
        raise BadStreamRequest("ack must be an array of jti strings")
    if not isinstance(errors, dict):
        raise BadStreamRequest("setErrs must be an object of jti and error")
    if len(ack) + len(errors) > MAX_ACKS:
        raise BadStreamRequest(f"at most {MAX_ACKS} SETs acknowledged in one poll")
    for jti, error in errors.items():
        err = error.get("err") if isinstance(error, dict) else None
        log.warning("a receiver reported SET %s as %s", jti, err if isinstance(err, str) else "?")
    return [*ack, *errors]
