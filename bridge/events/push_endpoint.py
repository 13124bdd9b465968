"""`POST /ssf/events`: push delivery of SETs to the bridge (RFC 8935 §2).

read the body (`Content-Type: application/secevent+jwt`, bounded) → the SET Recipient's
pipeline (`receiving.Receiver.receive`: verify, check, take the `jti`, act) → 202 Accepted,
no body (§2.2); a refused SET → 400 with `{"err", "description"}` (§2.3, §2.4); a failure of
the bridge's own (its database, its PDP) → 500 in the bridge's error shape, the SET's `jti`
spent.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .receiving import Receiver
from .security_event_token import MEDIA_TYPE
from .set_errors import InvalidRequest, SETError

log = logging.getLogger("bridge.events")

_NO_STORE = {"Cache-Control": "no-store"}


class PushEndpoint:
    def __init__(self, receiver: Receiver, max_body_bytes: int) -> None:
        self._receiver = receiver
        self._max = max_body_bytes

    async def handle(self, request: Request) -> Response:
        try:
            token = await self._read(request)
            incoming = await self._receiver.receive(token)
        except SETError as refusal:
            log.info("a pushed SET was refused: %s (%s)", refusal.err, refusal.description)
            return JSONResponse(refusal.body(), refusal.status, headers=_NO_STORE)
        except Exception:
            log.exception("a pushed SET could not be processed")
            # The bridge's own fault shape (a 5xx is no RFC 8935 refusal).
            fault = {"error": {"status": 500, "message": "the SET could not be processed now"}}
            return JSONResponse(fault, 500, headers=_NO_STORE)
        log.info("SET %s from %s accepted", incoming.event.event_type, incoming.transmitter.name)
        return Response(status_code=202, headers=_NO_STORE)

    async def _read(self, request: Request) -> str:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != MEDIA_TYPE:
            raise InvalidRequest(f"the body must be a SET, {MEDIA_TYPE} (RFC 8935 §2)")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max:
                raise InvalidRequest(f"the body is larger than {self._max} bytes")
        try:
            return body.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest("a SET is ASCII (a compact JWS)") from None
