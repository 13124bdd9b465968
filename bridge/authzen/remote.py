"""A remote AuthZEN PDP, reached over HTTP(S), offered as a `PDP` (Authorization API 1.0).

Whatever goes wrong on the way (no connection, a timeout, an error status, a body that is
not what the API defines) ends in a `PDPError`; nothing here turns a failure into a decision,
least of all a permit.

- Discovery reads `/.well-known/authzen-configuration` (inserted between host and path of the
  PDP identifier), checks `policy_decision_point` and uses the endpoint URLs it lists; an
  absent endpoint member means "not supported". Without discovery the default paths under
  the configured URL are used.
- Access Evaluations goes out as one batch request when the PDP has the endpoint, otherwise
  it is emulated with concurrent single evaluations. Either way the short-circuit semantic is
  applied locally as well.
- Searches follow `page.next_token` to the end and return every result in one list.
- Transport failures and 5xx answers are retried with exponential backoff; a 4xx is not.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..request_id import current_request_id, new_request_id
from ..settings import RemotePDPSettings
from .batch import stops_here, truncate
from .errors import PDPError, PDPProtocolError, PDPRequestRejected, PDPUnavailable
from .models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    JSONObject,
    ResourceSearchRequest,
    SearchResult,
    SubjectSearchRequest,
)

logger = logging.getLogger(__name__)

WELL_KNOWN_PATH: Final = "/.well-known/authzen-configuration"

DEFAULT_PATHS: Final[dict[str, str]] = {
    "access_evaluation_endpoint": "/access/v1/evaluation",
    "access_evaluations_endpoint": "/access/v1/evaluations",
    "search_subject_endpoint": "/access/v1/search/subject",
    "search_resource_endpoint": "/access/v1/search/resource",
    "search_action_endpoint": "/access/v1/search/action",
}

SearchKind = Literal["subject", "resource", "action"]

# Statuses worth another try: the PDP or something in front of it is briefly unwell.
# Other 5xx are retried as well, except 501 (the PDP says it does not do this at all).
_RETRY_STATUSES: Final = frozenset({502, 503, 504})
# Concurrent single evaluations while emulating a batch.
_EMULATION_CONCURRENCY: Final = 16
# An X-Request-ID we pass on: visible ASCII only, so it cannot break the header block.
_SAFE_REQUEST_ID: Final = re.compile(r"[\x21-\x7e]{1,200}")
# An Authorization value must be visible ASCII plus space/tab (RFC 9110 field value).
_SAFE_HEADER_VALUE: Final = re.compile(r"[\x20-\x7e\t]+")
_MAX_DETAIL: Final = 200


@dataclass(frozen=True, slots=True)
class RemoteCapabilities:
    """What the remote PDP offers, read from its metadata (or the defaults without discovery).

    An endpoint that is None is not supported. `capabilities` holds the registered capability
    URNs the PDP advertises (e.g. `urn:openid:authzen:capability:access-request`).
    """

    policy_decision_point: str
    access_evaluation_endpoint: str
    access_evaluations_endpoint: str | None
    search_subject_endpoint: str | None
    search_resource_endpoint: str | None
    search_action_endpoint: str | None
    capabilities: frozenset[str]

    @property
    def batch(self) -> bool:
        return self.access_evaluations_endpoint is not None

    def search_endpoint(self, kind: SearchKind) -> str | None:
        if kind == "subject":
            return self.search_subject_endpoint
        if kind == "resource":
            return self.search_resource_endpoint
        return self.search_action_endpoint

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


def well_known_url(identifier: str) -> str:
    """The metadata URL of a PDP identifier: the well-known segment goes between host and path.

    `https://h` -> `https://h/.well-known/authzen-configuration`;
    `https://h/stores/x` -> `https://h/.well-known/authzen-configuration/stores/x`.
    """
    parts = urlsplit(identifier)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN_PATH + path, "", ""))


class RemotePDP:
    """The `PDP` interface over HTTP to a remote AuthZEN PDP, with one pooled client."""

    # Most pages one search follows before the PDP is taken to be looping.
    max_search_pages: int = 1000

    def __init__(
        self,
        settings: RemotePDPSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._identifier = str(settings.url)
        self._base = self._identifier.rstrip("/")
        self._display = _display_url(self._identifier)
        self._secure = urlsplit(self._identifier).scheme == "https"
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
        self._lock = asyncio.Lock()
        self._document: JSONObject | None = None
        self._view: RemoteCapabilities | None = None
        self._expires_at: float | None = None  # monotonic; None = for the client's life
        if not settings.discovery:
            document: JSONObject = {"policy_decision_point": self._identifier}
            document.update({member: self._base + path for member, path in DEFAULT_PATHS.items()})
            self._document = document
            self._view = self._read_view(document)

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool. Later calls raise `PDPUnavailable`."""
        self._closed = True
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- metadata ----------------------------------------------------------------------------

    async def metadata(self) -> JSONObject:
        """The PDP's metadata document (a copy); synthesised from the defaults without discovery."""
        await self._current_view()
        assert self._document is not None
        return copy.deepcopy(self._document)

    async def capabilities(self) -> RemoteCapabilities:
        """Which endpoints and capabilities the PDP offers."""
        return await self._current_view()

    async def _current_view(self) -> RemoteCapabilities:
        if self._closed:
            raise PDPUnavailable(f"the client for the PDP at {self._display} is closed")
        view = self._fresh_view()
        if view is not None:
            return view
        async with self._lock:
            view = self._fresh_view()
            if view is not None:
                return view
            document, max_age = await self._fetch_metadata()
            view = self._read_view(document)
            self._document, self._view = document, view
            self._expires_at = None if max_age is None else time.monotonic() + max_age
            return view

    def _fresh_view(self) -> RemoteCapabilities | None:
        if self._view is None:
            return None
        if self._expires_at is not None and time.monotonic() >= self._expires_at:
            return None
        return self._view

    async def _fetch_metadata(self) -> tuple[JSONObject, float | None]:
        url = well_known_url(self._identifier)
        what = "metadata"
        response = await self._send("GET", url, what, None)
        document = self._parse(response, what, url)
        if not isinstance(document, dict):
            raise PDPProtocolError(f"{what} from {_display_url(url)} is not a JSON object")
        claimed = document.get("policy_decision_point")
        if not isinstance(claimed, str) or claimed.rstrip("/") != self._base:
            raise PDPProtocolError(
                f"{what} from {_display_url(url)} names policy_decision_point "
                f"{_quote(claimed)}, not {self._display}; the document is not used"
            )
        return document, _max_age(response.headers.get("cache-control"))

    def _read_view(self, document: JSONObject) -> RemoteCapabilities:
        evaluation = self._endpoint(document, "access_evaluation_endpoint")
        if evaluation is None:
            raise PDPProtocolError(
                f"metadata of the PDP at {self._display} lacks access_evaluation_endpoint"
            )
        urns = document.get("capabilities")
        if urns is None:
            urns = []
        if not isinstance(urns, list) or not all(isinstance(urn, str) for urn in urns):
            raise PDPProtocolError(
                f"metadata of the PDP at {self._display}: capabilities is not an array of strings"
            )
        return RemoteCapabilities(
            policy_decision_point=self._identifier,
            access_evaluation_endpoint=evaluation,
            access_evaluations_endpoint=self._endpoint(document, "access_evaluations_endpoint"),
            search_subject_endpoint=self._endpoint(document, "search_subject_endpoint"),
            search_resource_endpoint=self._endpoint(document, "search_resource_endpoint"),
            search_action_endpoint=self._endpoint(document, "search_action_endpoint"),
            capabilities=frozenset(urns),
        )

    def _endpoint(self, document: JSONObject, member: str) -> str | None:
        """An endpoint URL from the metadata, None when absent; a bad value is an error."""
        value = document.get(member)
        if value is None:
            return None
        problem = _url_problem(value, require_https=self._secure)
        if problem:
            raise PDPProtocolError(f"metadata of the PDP at {self._display}: {member} {problem}")
        assert isinstance(value, str)
        return value

    # -- the PDP interface -------------------------------------------------------------------

    async def evaluate(self, request: EvaluationRequest) -> Decision:
        """One decision from the PDP's Access Evaluation endpoint."""
        view = await self._current_view()
        url = view.access_evaluation_endpoint
        what = "evaluation"
        answer = await self._post(url, what, request.model_dump(exclude_none=True))
        return _decision(answer, f"{what} answer from {_display_url(url)}")

    async def evaluations(
        self,
        requests: Sequence[EvaluationRequest],
        semantic: EvaluationsSemantic = EvaluationsSemantic.execute_all,
    ) -> list[Decision]:
        """Decisions in request order, truncated after the item that short-circuits."""
        if not requests:
            return []
        # A plain string would slip past the identity checks in `batch.stops_here`.
        semantic = EvaluationsSemantic(semantic)
        view = await self._current_view()
        if view.access_evaluations_endpoint is None:
            return await self._emulate(requests, semantic)
        url = view.access_evaluations_endpoint
        where = f"evaluations answer from {_display_url(url)}"
        body: JSONObject = {"evaluations": [r.model_dump(exclude_none=True) for r in requests]}
        if semantic != EvaluationsSemantic.execute_all:
            body["options"] = {"evaluations_semantic": semantic.value}
        answer = await self._post(url, "evaluations", body)
        items = answer.get("evaluations") if isinstance(answer, dict) else None
        if items is None:
            # A plain Decision is what a batch of one may come back as.
            if len(requests) != 1:
                raise PDPProtocolError(f"{where} has no evaluations array")
            return [_decision(answer, where)]
        if not isinstance(items, list):
            raise PDPProtocolError(f"{where}: evaluations is not an array")
        if not items:
            raise PDPProtocolError(f"{where}: evaluations is empty for {len(requests)} requests")
        if len(items) > len(requests):
            raise PDPProtocolError(f"{where}: {len(items)} decisions for {len(requests)} requests")
        decisions = truncate(
            [_decision(item, f"{where}, item {i}") for i, item in enumerate(items)], semantic
        )
        if len(decisions) < len(requests) and not stops_here(decisions[-1], semantic):
            # Fewer answers than questions, and nothing that allowed stopping early.
            raise PDPProtocolError(
                f"{where}: {len(decisions)} decisions for {len(requests)} requests "
                f"without a short circuit under {semantic.value}"
            )
        return decisions

    async def _emulate(
        self, requests: Sequence[EvaluationRequest], semantic: EvaluationsSemantic
    ) -> list[Decision]:
        gate = asyncio.Semaphore(_EMULATION_CONCURRENCY)

        async def one(request: EvaluationRequest) -> Decision:
            async with gate:
                return await self.evaluate(request)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(request)) for request in requests]
        except ExceptionGroup as failed:
            # The first failure stands for the batch; the other calls were cancelled.
            raise failed.exceptions[0] from None
        return truncate([task.result() for task in tasks], semantic)

    async def search_subject(self, request: SubjectSearchRequest) -> SearchResult:
        return await self._search("subject", request.model_dump(exclude_none=True))

    async def search_resource(self, request: ResourceSearchRequest) -> SearchResult:
        return await self._search("resource", request.model_dump(exclude_none=True))

    async def search_action(self, request: ActionSearchRequest) -> SearchResult:
        return await self._search("action", request.model_dump(exclude_none=True))

    async def _search(self, kind: SearchKind, original: JSONObject) -> SearchResult:
        view = await self._current_view()
        url = view.search_endpoint(kind)
        if url is None:
            raise PDPRequestRejected(
                f"{kind} search is not supported by the PDP at {self._display}", 501
            )
        what = f"{kind} search"
        where = f"{what} answer from {_display_url(url)}"
        page = original.get("page")
        page = dict(page) if isinstance(page, dict) else {}
        token = page.get("token")
        seen: set[str] = {token} if isinstance(token, str) and token else set()
        results: list[JSONObject] = []
        known: set[tuple[str, ...]] = set()
        body = original
        for _ in range(self.max_search_pages):
            answer = await self._post(url, what, body)
            items, next_token = _search_page(answer, kind, where)
            for item in items:
                key = tuple(item.values())
                if key not in known:  # pages carry no snapshot guarantee: drop repeats
                    known.add(key)
                    results.append(item)
            if not next_token:
                return SearchResult(results=results)
            if next_token in seen:
                raise PDPProtocolError(f"{where}: page token repeated, the PDP is looping")
            seen.add(next_token)
            # Follow-ups repeat the original request unchanged, with only page.token added.
            body = {**original, "page": {**page, "token": next_token}}
        raise PDPProtocolError(f"{where}: more than {self.max_search_pages} pages")

    # -- HTTP --------------------------------------------------------------------------------

    async def _post(self, url: str, what: str, payload: JSONObject) -> object:
        try:
            content = json.dumps(
                payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise PDPError(f"{what} request cannot be sent as JSON: {exc}") from exc
        response = await self._send("POST", url, what, content)
        return self._parse(response, what, url)

    async def _send(
        self, method: str, url: str, what: str, content: bytes | None
    ) -> httpx.Response:
        """One request with retries; returns only a 200 response, raises `PDPError` otherwise."""
        if self._closed:
            raise PDPUnavailable(f"the client for the PDP at {self._display} is closed")
        shown = _display_url(url)
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

    def _parse(self, response: httpx.Response, what: str, url: str) -> object:
        """The body as JSON, strictly: UTF-8, unique member names, no NaN or Infinity."""
        try:
            text = response.content.decode("utf-8")
            return json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "too deeply nested" if isinstance(exc, RecursionError) else str(exc)
            raise PDPProtocolError(
                f"{what} answer from {_display_url(url)} is not valid JSON "
                f"({self._scrub(reason)[:_MAX_DETAIL]})"
            ) from None

    def _detail(self, response: httpx.Response) -> str:
        """The PDP's own error message, if it gave one, shortened and without our secrets."""
        message: object = None
        try:
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
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 3] + "..."
        return f" ({text})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# -- helpers ---------------------------------------------------------------------------------


_sleep = asyncio.sleep  # replaced in tests that time the backoff


def backoff_delay(base: float, retry: int) -> float:
    """Delay before retry number `retry + 1`: `base * 2**retry` plus up to 10 % jitter."""
    delay: float = base * (2**retry)
    return delay + random.uniform(0.0, delay * 0.1)


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


def _display_url(url: str) -> str:
    """A URL fit for messages and logs: no user info, no query, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _url_problem(value: object, *, require_https: bool) -> str:
    """Why `value` is not a usable endpoint URL ("" when it is)."""
    if not isinstance(value, str):
        return "is not a string"
    try:
        parts = urlsplit(value)
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an absolute http(s) URL"
    if require_https and parts.scheme != "https":
        return "is not an https URL"
    return ""


def _max_age(cache_control: str | None) -> float | None:
    """Seconds from `Cache-Control: max-age=N`; None when absent or unreadable."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            if argument.isdigit():
                return float(int(argument))
    return None


def _quote(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:_MAX_DETAIL])
    return "nothing" if value is None else f"a {type(value).__name__}"


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key[:_MAX_DETAIL]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decision(value: object, where: str) -> Decision:
    if not isinstance(value, dict):
        raise PDPProtocolError(f"{where} is not a JSON object")
    decision = value.get("decision")
    if not isinstance(decision, bool):
        raise PDPProtocolError(f"{where} has no boolean decision")
    context = value.get("context")
    if context is not None and not isinstance(context, dict):
        raise PDPProtocolError(f"{where}: context is not an object")
    return Decision(decision, context)


def _search_page(answer: object, kind: SearchKind, where: str) -> tuple[list[JSONObject], str]:
    """The results of one page, reduced to their identifying members, and the next token."""
    if not isinstance(answer, dict):
        raise PDPProtocolError(f"{where} is not a JSON object")
    items = answer.get("results")
    if not isinstance(items, list):
        raise PDPProtocolError(f"{where} has no results array")
    results: list[JSONObject] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PDPProtocolError(f"{where}: result {i} is not an object")
        if kind == "action":
            name = item.get("name")
            if not isinstance(name, str):
                raise PDPProtocolError(f"{where}: result {i} has no string name")
            results.append({"name": name})
        else:
            type_, id_ = item.get("type"), item.get("id")
            if not isinstance(type_, str) or not isinstance(id_, str):
                raise PDPProtocolError(f"{where}: result {i} needs string type and id")
            results.append({"type": type_, "id": id_})
    page = answer.get("page")
    if page is None:
        return results, ""
    if not isinstance(page, dict):
        raise PDPProtocolError(f"{where}: page is not an object")
    next_token = page.get("next_token")
    if next_token is None:
        return results, ""
    if not isinstance(next_token, str):
        raise PDPProtocolError(f"{where}: page.next_token is not a string")
    return results, next_token
