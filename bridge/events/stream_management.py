"""The stream management API of the bridge's transmitter (SSF 1.0 §8.1), for authenticated
receivers (`receivers.ReceiverAuthenticator`); each receiver sees and changes its own
streams only (another's is 404, as an unknown one).

- `/ssf/streams` (§8.1.1): POST creates (201); GET reads one (`?stream_id=`) or lists
  them; PATCH updates, PUT replaces; DELETE (`?stream_id=`) deletes (204);
- `/ssf/status` (§8.1.2): GET (`?stream_id=`) reads, POST (`stream_id`, `status`,
  `reason`) changes the status;
- `/ssf/subjects:add` (200) and `/ssf/subjects:remove` (204) (§8.1.3): POST `stream_id`,
  `subject`;
- `/ssf/verify` (§8.1.4): POST `stream_id`, `state` (204, then the verification event).

Every endpoint: authenticate the receiver → read the body (a JSON object) or the query →
find the receiver's stream → change it by compare-and-set (a change that lost a race is 409)
→ answer with `Cache-Control: no-store`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import rfc8785
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..authzen.errors import AuthZENError
from ..authzen.transport import read_json_object
from ..settings import EventReceiverPeerSettings, EventTransmitterSettings
from ..store.contract import EventStreamStore, ReplayCache, StreamRecord
from ..store.contract.events import STREAM_STATUSES
from .event_types import VERIFICATION
from .fan_out import FanOut
from .push_delivery import AuthorizationSeal
from .receivers import ReceiverAuthenticator
from .stream_errors import (
    BadStreamRequest,
    StreamConflict,
    StreamError,
    StreamNotFound,
    TooManyRequests,
)
from .streams import OwnTransmitter, changed_stream, new_stream
from .subject_identifiers import canonical, opaque

log = logging.getLogger("bridge.events")

_NO_STORE = {"Cache-Control": "no-store"}
MAX_STATE = 1000
MAX_REASON = 500

Handler = Callable[[Request, EventReceiverPeerSettings], Awaitable[Response]]


class Store(EventStreamStore, ReplayCache, Protocol):
    """The streams, and the replay cache that spaces verification requests."""


class StreamManagement:
    def __init__(
        self,
        store: Store,
        receivers: ReceiverAuthenticator,
        transmitter: OwnTransmitter,
        fan_out: FanOut,
        sealing: AuthorizationSeal,
        settings: EventTransmitterSettings,
        *,
        max_body_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._receivers = receivers
        self._transmitter = transmitter
        self._fan_out = fan_out
        self._sealing = sealing
        self._settings = settings
        self._max_body = max_body_bytes
        self._clock = clock

    # -- the pipeline every endpoint shares ----------------------------------------------

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                receiver = await self._receivers.identify(request)
                return await handler(request, receiver)
            except StreamError as refusal:
                headers = {**_NO_STORE, **refusal.headers}
                return JSONResponse(refusal.body(), refusal.status, headers=headers)

        return serve

    async def _body(self, request: Request) -> dict[str, Any]:
        return await read_body(request, self._max_body)

    async def _own(self, receiver: EventReceiverPeerSettings, stream_id: Any) -> StreamRecord:
        if not isinstance(stream_id, str) or not stream_id:
            raise BadStreamRequest("stream_id is required")
        record = await self._store.stream_get(stream_id)
        if record is None or record.receiver != receiver.name:
            raise StreamNotFound("no such stream")
        return record

    def _json(self, record: StreamRecord, receiver: EventReceiverPeerSettings) -> dict[str, Any]:
        return self._transmitter.stream_json(record, receiver)

    # -- §8.1.1 the stream's configuration -----------------------------------------------

    async def streams(self, request: Request, receiver: EventReceiverPeerSettings) -> Response:
        method = request.method
        if method == "GET":
            stream_id = request.query_params.get("stream_id")
            if stream_id is None:
                found = await self._store.streams_of_receiver(receiver.name)
                return JSONResponse([self._json(r, receiver) for r in found], headers=_NO_STORE)
            record = await self._own(receiver, stream_id)
            return JSONResponse(self._json(record, receiver), headers=_NO_STORE)
        if method == "DELETE":
            record = await self._own(receiver, request.query_params.get("stream_id"))
            await self._store.stream_delete(record.id)
            log.info("stream %s of %s deleted", record.id, receiver.name)
            return Response(status_code=204, headers=_NO_STORE)
        body = await self._body(request)
        if method == "POST":
            return await self._create(body, receiver)
        return await self._change(body, receiver, replace_all=method == "PUT")

    async def _create(self, body: dict[str, Any], receiver: EventReceiverPeerSettings) -> Response:
        if len(await self._store.streams_of_receiver(receiver.name)) >= receiver.max_streams:
            raise StreamConflict(f"a receiver may have {receiver.max_streams} stream(s)")
        now = self._clock()
        record, authorization = new_stream(body, receiver, now, await self._fan_out.start_point())
        if authorization is not None:
            record = replace(
                record, authorization_sealed=self._sealing.seal(record.id, authorization)
            )
        await self._store.stream_create(record)
        log.info("stream %s created by %s", record.id, receiver.name)
        return JSONResponse(self._json(record, receiver), 201, headers=_NO_STORE)

    async def _change(
        self, body: dict[str, Any], receiver: EventReceiverPeerSettings, *, replace_all: bool
    ) -> Response:
        record = await self._own(receiver, body.get("stream_id"))
        now = self._clock()
        updated, configured = changed_stream(
            record, body, self._transmitter, receiver, now, replace_all=replace_all
        )
        if "delivery" in body or replace_all:
            sealed = (
                self._sealing.seal(record.id, configured.authorization)
                if configured.authorization is not None
                else None
            )
            updated = replace(updated, authorization_sealed=sealed)
        if not await self._store.stream_update(updated, record.version):
            raise StreamConflict("the stream changed meanwhile: read it and try again")
        return JSONResponse(self._json(updated, receiver), headers=_NO_STORE)

    # -- §8.1.2 its status -----------------------------------------------------------------

    async def status(self, request: Request, receiver: EventReceiverPeerSettings) -> Response:
        if request.method == "GET":
            record = await self._own(receiver, request.query_params.get("stream_id"))
            return JSONResponse(_status(record), headers=_NO_STORE)
        body = await self._body(request)
        record = await self._own(receiver, body.get("stream_id"))
        status, reason = body.get("status"), body.get("reason")
        if status not in STREAM_STATUSES:
            raise BadStreamRequest(f"status must be one of {', '.join(STREAM_STATUSES)}")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
            raise BadStreamRequest(f"reason must be a string of at most {MAX_REASON}")
        updated = replace(
            record,
            status=str(status),
            reason=reason,
            updated_at=self._clock(),
            version=record.version + 1,
        )
        if not await self._store.stream_update(updated, record.version):
            raise StreamConflict("the stream changed meanwhile: read it and try again")
        log.info("stream %s of %s is now %s", record.id, receiver.name, status)
        return JSONResponse(_status(updated), headers=_NO_STORE)

    # -- §8.1.3 its subjects ---------------------------------------------------------------

    async def add_subject(self, request: Request, receiver: EventReceiverPeerSettings) -> Response:
        record, subject = await self._subject_request(request, receiver)
        await self._store.stream_subject_set(record.id, canonical(subject), True)
        return Response(status_code=200, headers=_NO_STORE)

    async def remove_subject(
        self, request: Request, receiver: EventReceiverPeerSettings
    ) -> Response:
        record, subject = await self._subject_request(request, receiver)
        await self._store.stream_subject_set(record.id, canonical(subject), False)
        return Response(status_code=204, headers=_NO_STORE)

    async def _subject_request(
        self, request: Request, receiver: EventReceiverPeerSettings
    ) -> tuple[StreamRecord, dict[str, Any]]:
        body = await self._body(request)
        record = await self._own(receiver, body.get("stream_id"))
        subject = body.get("subject")
        if not isinstance(subject, dict) or not isinstance(subject.get("format"), str):
            raise BadStreamRequest("subject must be a Subject Identifier with a format")
        verified = body.get("verified")
        if verified is not None and not isinstance(verified, bool):
            raise BadStreamRequest("verified must be true or false")
        try:
            canonical(subject)  # the spelling it is kept by must exist (RFC 8785)
        except (rfc8785.CanonicalizationError, UnicodeError):
            raise BadStreamRequest(
                "subject holds a value with no canonical JSON form (a number beyond 2^53, "
                "or text that is not Unicode)"
            ) from None
        return record, subject

    # -- §8.1.4 verification ---------------------------------------------------------------

    async def verify(self, request: Request, receiver: EventReceiverPeerSettings) -> Response:
        body = await self._body(request)
        record = await self._own(receiver, body.get("stream_id"))
        state = body.get("state")
        if state is not None and (not isinstance(state, str) or len(state) > MAX_STATE):
            raise BadStreamRequest(f"state must be a string of at most {MAX_STATE} characters")
        interval = self._settings.min_verification_interval_seconds
        now = self._clock()
        if interval and not await self._store.use_once("ssf-verify", record.id, now + interval):
            raise TooManyRequests(f"verification at most every {interval} seconds")
        event = {} if state is None else {"state": state}
        jti = secrets.token_urlsafe(18)
        claims = self._fan_out.claims(record, jti, VERIFICATION, opaque(record.id), event)
        await self._fan_out.queue(record, jti, claims)
        self._fan_out.woken()
        return Response(status_code=204, headers=_NO_STORE)


async def read_body(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object (strict, bounded), or `BadStreamRequest`."""
    try:
        return await read_json_object(request, max_bytes)
    except AuthZENError as exc:
        raise BadStreamRequest(exc.message) from None


def _status(record: StreamRecord) -> Mapping[str, Any]:
    body: dict[str, Any] = {"stream_id": record.id, "status": record.status}
    if record.reason is not None:
        body["reason"] = record.reason
    return body
