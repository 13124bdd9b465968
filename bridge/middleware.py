"""The outermost layer of every request: `X-Request-ID` on every response (API 1.0 §10: the
same value the request carried), and the last resort for a bug.

No exception ever escapes to the HTTP server: one that reaches this layer is logged with its
traceback and answered with a 500 in the shape of the protocol the route speaks (OAuth's
JSON error, ARAP's problem details, AuthZEN's error object), so the client gets a protocol
error, never a trace, and its keep-alive connection stays usable.

Written as plain ASGI rather than `BaseHTTPMiddleware`: it sits on every request's path and
the plain form adds almost nothing to it.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .request_id import new_request_id, request_id_var

log = logging.getLogger("bridge")

_HEADER = b"x-request-id"


class Protocols:
    """Which protocol's error shape the routes under each path prefix answer in: `oauth`
    (RFC 6749 §5.2 JSON), `problem` (RFC 9457, ARAP), `page` (a short HTML page, for the
    pages people use) or, for every other route, `authzen` (Authorization API §10 error
    object)."""

    def __init__(self, prefixes: Sequence[tuple[str, str]] = ()) -> None:
        # Longest prefix first: `/access/v1/requests` before `/access/v1`.
        self._prefixes = sorted(prefixes, key=lambda item: -len(item[0]))

    def of(self, path: str) -> str:
        for prefix, kind in self._prefixes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return kind
        return "authzen"

    def error(self, path: str, status: int, message: str) -> tuple[str, bytes]:
        """(media type, body) of an error with `status` on `path`."""
        kind = self.of(path)
        if kind == "oauth":
            code = "server_error" if status >= 500 else "invalid_request"
            body: dict[str, object] = {"error": code, "error_description": message}
            return "application/json", json.dumps(body).encode()
        if kind == "page":
            # No template engine here: a page people can read, whatever went wrong.
            text = html.escape(f"{HTTPStatus(status).phrase}: {message}")
            page = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(HTTPStatus(status).phrase)} · AuthZEN Bridge</title>"
                f'<link rel="stylesheet" href="/pages/style.css"></head>'
                f"<body><main><h1>This page cannot be shown</h1><p>{text}</p></main></body></html>"
            )
            return "text/html; charset=utf-8", page.encode()
        if kind == "problem":
            body = {
                "type": "about:blank",
                "title": HTTPStatus(status).phrase,
                "status": status,
                "detail": message,
            }
            return "application/problem+json", json.dumps(body).encode()
        body = {"error": {"status": status, "message": message}}
        return "application/json", json.dumps(body).encode()


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp, protocols: Protocols | None = None) -> None:
        self.app = app
        self._protocols = protocols or Protocols()

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
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                path = str(scope.get("path", ""))
                media_type, body = self._protocols.error(path, 500, "internal error")
                await send_with_id(_start(media_type, body))
                await send_with_id({"type": "http.response.body", "body": body})


def _start(media_type: str, body: bytes) -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", media_type.encode("ascii")),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"cache-control", b"no-store"),
        ],
    }
