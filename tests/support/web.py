"""A tiny real HTTP server in a thread, for pages a browser test loads and callbacks it lands on.

Browser tests need somewhere real to go: a page with a form, an OAuth redirect_uri that
receives the authorization code. This serves a table of routes (path -> function) on
127.0.0.1 with the standard library's threading HTTP server, and records every request, so
a test can both show a page and read what the browser sent back.

    with LocalWebServer({"/cb": lambda request: WebResponse("<p>done</p>")}) as web:
        await page.goto(f"{web.url}/start")
        callback = await web.wait_for_request_async("/cb")
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class WebRequest:
    """One request the server received: method, path, query, headers and raw body."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body as a dict (last value wins), for form posts."""
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}

    def param(self, name: str) -> str | None:
        """One query parameter, or None."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class WebResponse:
    """What a route answers: HTML by default."""

    body: str | bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Route = Callable[[WebRequest], WebResponse]


class LocalWebServer:
    """Serve `routes` on 127.0.0.1 (a free port) in a daemon thread; 404 for anything else."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        self._requests: list[WebRequest] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = WebRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                server._record(request)
                route = server.routes.get(parts.path)
                response = route(request) if route else WebResponse("not found", status=404)
                body = response.body.encode() if isinstance(response.body, str) else response.body
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads `requests`, not stderr."""

        return Handler

    def _record(self, request: WebRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    @property
    def requests(self) -> list[WebRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._changed:
            return list(self._requests)

    def wait_for_request(self, path: str, timeout: float = 10) -> WebRequest:
        """The first request to `path`; waits up to `timeout` seconds for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for request in self._requests:
                    if request.path == path:
                        return request
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [r.path for r in self._requests]
                    raise AssertionError(f"no request to {path} within {timeout} s; saw {seen}")
                self._changed.wait(remaining)

    async def wait_for_request_async(self, path: str, timeout: float = 10) -> WebRequest:
        """`wait_for_request` for async tests: waits in a thread, so the loop keeps running."""
        return await asyncio.to_thread(self.wait_for_request, path, timeout)

    def __enter__(self) -> LocalWebServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
