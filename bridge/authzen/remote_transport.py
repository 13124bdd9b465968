"""The HTTP exchange with a remote AuthZEN PDP: one pooled client, retries, status handling.

Kept apart from the API logic in `remote.py` because everything here is about getting a 200
with a strict JSON body out of an unreliable network, whatever the request means:

- every request carries the configured credential and an `X-Request-ID`;
- transport failures and 5xx answers (except 501) are retried with exponential backoff and
  jitter; a 4xx, a redirect or a 501 is final;
- every failure ends in a `PDPError` whose message is free of the configured secrets and of
  user info or query strings in URLs, because these messages reach logs and PEPs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..jose import strict_json
from ..request_id import current_request_id, new_request_id
from ..settings import RemotePDPSettings
from .errors import PDPError, PDPProtocolError, PDPRequestRejected, PDPUnavailable
from .models import JSONObject

# The name the retry warnings have always been logged under.
logger = logging.getLogger("bridge.authzen.remote")

# Longest piece of text from the PDP (or a value of its) quoted in a message.
MAX_DETAIL: Final = 200

# Statuses worth another try: the PDP or something in front of it is briefly unwell.
# Other 5xx are retried as well, except 501 (the PDP says it does not do this at all).
_RETRY_STATUSES: Final = frozenset({502, 503, 504})
# An X-Request-ID we pass on: visible ASCII only, so it cannot break the header block.
_SAFE_REQUEST_ID: Final = re.compile(r"[\x21-\x7e]{1,200}")
# An Authorization value must be visible ASCII plus space/tab (RFC 9110 field value).
_SAFE_HEADER_VALUE: Final = re.compile(r"[\x20-\x7e\t]+")

_sleep = asyncio.sleep  # replaced in tests that time the backoff


class RemoteConnection:
    """Requests to one remote PDP over a pooled `httpx` client; only a 200 comes back."""

    def __init__(
        self,
        settings: RemotePDPSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self.display = display_url(str(settings.url))
        self._secrets = [
            secret.get_secret_value()
            for secret in (settings.bearer_token, settings.api_key)
            if secret is not None and secret.get_secret_value()
        ]
        self._authorization = _authorization(settings)
        self._client = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            timeout=httpx.Timeout(settings.timeout_seconds),
            follow_redirects=False,
        )
        self._closed = False

    async def aclose(self) -> None:
        """Close the connection pool. Later requests raise `PDPUnavailable`."""
        self._closed = True
        await self._client.aclose()

    def ensure_open(self) -> None:
        if self._closed:
            raise PDPUnavailable(f"the client for the PDP at {self.display} is closed")

    async def post(self, url: str, what: str, payload: JSONObject) -> object:
        """POST `payload` as JSON; the answer's body, parsed strictly."""
        try:
            content = json.dumps(
                payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise PDPError(f"{what} request cannot be sent as JSON: {exc}") from exc
        response = await self.send("POST", url, what, content)
        return self.parse(response, what, url)

    async def send(self, method: str, url: str, what: str, content: bytes | None) -> httpx.Response:
        """One request with retries; returns only a 200 response, raises `PDPError` otherwise."""
        self.ensure_open()
        shown = display_url(url)
        headers = self._headers(json_body=content is not None)
        attempts = self._settings.retries + 1
        cause = ""
        for attempt in range(attempts):
            if attempt:
                delay = backoff_delay(self._settings.backoff_seconds, attempt - 1)
                logger.warning(
                    "remote PDP %s %s: %s; retry %d of %d in %.3fs",
                    what,
                    shown,
                    cause,
                    attempt,
                    attempts - 1,
                    delay,
                )
                await _sleep(delay)
            try:
                response = await self._client.request(method, url, content=content, headers=headers)
            except httpx.TransportError as exc:
                cause = self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
                continue
            except httpx.DecodingError as exc:
                raise PDPProtocolError(
                    f"{what} answer from {shown} cannot be decoded: {self._scrub(str(exc))}"
                ) from None
            except httpx.RequestError as exc:
                raise PDPProtocolError(
                    f"{what} request to {shown} failed: {self._scrub(str(exc))}"
                ) from None
            status = response.status_code
            if status == 200:
                return response
            detail = self._detail(response)
            if status == 501:
                raise PDPRequestRejected(
                    f"{what} is not supported by the PDP at {shown} (HTTP 501){detail}", 501
                )
            if status in _RETRY_STATUSES or status >= 500:
                cause = f"HTTP {status}{detail}"
                continue
            if 400 <= status < 500:
                raise PDPRequestRejected(
                    f"{what} request rejected by the PDP at {shown}: HTTP {status}{detail}",
                    status,
                )
            if 300 <= status < 400:
                raise PDPProtocolError(
                    f"{what} answer from {shown} is a redirect (HTTP {status}), not followed"
                )
            raise PDPProtocolError(f"{what} answer from {shown} has HTTP status {status}")
        raise PDPUnavailable(
            f"{what} at the PDP {shown} failed after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}: {cause}"
        )

    def parse(self, response: httpx.Response, what: str, url: str) -> object:
        """The body as JSON, strictly: UTF-8, unique member names, no NaN or Infinity."""
        try:
            return strict_json.loads(response.content)
        except strict_json.StrictJSONError as exc:
            raise PDPProtocolError(
                f"{what} answer from {display_url(url)} is not valid JSON "
                f"({self._scrub(str(exc))[:MAX_DETAIL]})"
            ) from None

    def _headers(self, *, json_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        current = current_request_id()
        if current is not None and _SAFE_REQUEST_ID.fullmatch(current):
            headers["X-Request-ID"] = current
        else:
            headers["X-Request-ID"] = new_request_id()
        return headers

    def _detail(self, response: httpx.Response) -> str:
        """The PDP's own error message, if it gave one, shortened and without our secrets."""
        message: object = None
        try:
            # Leniently: an error body is only read for its message, never trusted.
            body = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            content_type = response.headers.get("content-type", "")
            if content_type.lower().startswith("text/plain"):
                message = response.content.decode("utf-8", errors="replace")
        else:
            if isinstance(body, str):
                message = body
            elif isinstance(body, dict):
                error = body.get("error")
                if isinstance(error, dict):
                    message = error.get("message")
                elif isinstance(error, str):
                    message = error
                else:
                    message = body.get("message")
        if not isinstance(message, str):
            return ""
        text = " ".join(self._scrub(message).split())
        if not text:
            return ""
        if len(text) > MAX_DETAIL:
            text = text[: MAX_DETAIL - 3] + "..."
        return f" ({text})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def backoff_delay(base: float, retry: int) -> float:
    """Delay before retry number `retry + 1`: `base * 2**retry` plus up to 10 % jitter."""
    delay: float = base * (2**retry)
    return delay + random.uniform(0.0, delay * 0.1)


def display_url(url: str) -> str:
    """A URL fit for messages and logs: no user info, no query, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _authorization(settings: RemotePDPSettings) -> str | None:
    if settings.bearer_token is not None:
        value, name = f"Bearer {settings.bearer_token.get_secret_value()}", "bearer_token"
    elif settings.api_key is not None:
        value, name = settings.api_key.get_secret_value(), "api_key"
    else:
        return None
    if not _SAFE_HEADER_VALUE.fullmatch(value):
        # Said without the value: an HTTP library would otherwise quote it in its error.
        raise ValueError(f"{name} contains characters that cannot go into an HTTP header")
    return value
