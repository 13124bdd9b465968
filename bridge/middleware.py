"""`X-Request-ID` on every response (API 1.0 §10: the same value the request carried).

Written as plain ASGI rather than `BaseHTTPMiddleware`: it sits on every request's path and
the plain form adds almost nothing to it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .request_id import new_request_id, request_id_var

_HEADER = b"x-request-id"


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = next((v for k, v in scope["headers"] if k == _HEADER), None)
        if not value:
            value = new_request_id().encode("ascii")
        request_id_var.set(value.decode("latin-1"))

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != _HEADER]
                headers.append((_HEADER, value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug reached the top: answer like any other error (no trace in the response),
            # then let the server log it.
            if not started:
                await send_with_id(_INTERNAL_ERROR_START)
                await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
            raise


_INTERNAL_ERROR_BODY = b'{"error":{"status":500,"message":"internal error"}}'
_INTERNAL_ERROR_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
    ],
}
