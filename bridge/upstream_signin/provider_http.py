"""Requests to the provider: its metadata, its keys and its token endpoint.

The provider is the operator's choice, but the URLs of its endpoints come from its metadata
document, so each one goes through `bridge.outbound.check_target` before it is called: https
only (plain http to loopback only when private networks are allowed, for local testing), no
user info, never an unspecified or multicast address, and public addresses only unless the
operator allows private ones. Redirects are not followed, environment proxies are not used (the
caller's client decides), every exchange has a finite total time, answers are read up to a
bound and parsed as strict JSON.

Unlike the callbacks of `bridge.outbound.OutboundPoster`, the connection is not pinned to the
address that was checked: it goes through the caller's pooled client, because the provider is
configured by the operator rather than registered by a stranger, and the pool saves a TLS
handshake per sign-in. The check still keeps a metadata document from pointing the bridge at
addresses it must not call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..jose import strict_json
from ..outbound import Resolver, TargetRefused, check_target

# Larger than any metadata document, key set or token response a provider sends.
MAX_RESPONSE_BYTES: Final = 256 * 1024
# Longest piece of an answer quoted in a log detail.
MAX_DETAIL: Final = 200


class ProviderHTTPError(Exception):
    """The exchange failed; the message says how (for the log, never a secret)."""


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    status: int
    body: Any  # strict JSON, or None when the answer was not JSON


def display_url(url: str) -> str:
    """`url` without user info, query or fragment: what a log line may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ProviderHTTP:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        allow_private: bool,
        timeout_seconds: float,
        resolver: Resolver,
    ) -> None:
        self._http = http
        self._allow_private = allow_private
        self._timeout = timeout_seconds
        self._resolver = resolver

    async def get_json(self, url: str) -> Any:
        """GET `url`; its 200 answer's body as strict JSON."""
        answer = await self._exchange("GET", url, {"Accept": "application/json"}, None)
        if answer.status != 200:
            raise ProviderHTTPError(f"{display_url(url)} answered HTTP {answer.status}")
        if answer.body is None:
            raise ProviderHTTPError(f"{display_url(url)} did not answer with JSON")
        return answer.body

    async def post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> ProviderAnswer:
        """POST `form` urlencoded; the status and body whatever the status."""
        sent = {"Accept": "application/json", **headers}
        return await self._exchange("POST", url, sent, dict(form))

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        form: dict[str, str] | None,
    ) -> ProviderAnswer:
        shown = display_url(url)
        try:
            # One bound for the whole exchange, lookup and reading included, so a provider
            # that accepts the connection and then says nothing cannot hold a sign-in.
            async with asyncio.timeout(self._timeout):
                await check_target(url, allow_private=self._allow_private, resolver=self._resolver)
                request = self._http.build_request(
                    method,
                    url,
                    headers=headers,
                    data=form,
                    timeout=httpx.Timeout(self._timeout),
                )
                response = await self._http.send(request, stream=True, follow_redirects=False)
                try:
                    content = await _bounded(response)
                finally:
                    await response.aclose()
        except TargetRefused as exc:
            raise ProviderHTTPError(f"{shown} may not be called: {exc}") from None
        except TimeoutError:
            raise ProviderHTTPError(f"{shown} did not answer within {self._timeout:g} s") from None
        except OSError as exc:  # the host does not resolve
            raise ProviderHTTPError(f"{shown} cannot be reached: {exc.strerror or exc}") from None
        except httpx.HTTPError as exc:
            cause = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise ProviderHTTPError(f"{shown} cannot be reached ({cause[:MAX_DETAIL]})") from None
        body: Any = None
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        # application/json, or a JSON-based type such as application/jwk-set+json.
        if media_type == "application/json" or media_type.endswith("+json"):
            try:
                body = strict_json.loads(content)
            except strict_json.StrictJSONError as exc:
                raise ProviderHTTPError(
                    f"{shown} answered with invalid JSON ({str(exc)[:MAX_DETAIL]})"
                ) from None
        return ProviderAnswer(response.status_code, body)


async def _bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ProviderHTTPError(
                f"{display_url(str(response.url))} answered more than {MAX_RESPONSE_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
