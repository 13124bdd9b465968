"""A remote AuthZEN PDP, reached over HTTP(S), offered as a `PDP` (Authorization API 1.0).

Whatever goes wrong on the way (no connection, a timeout, an error status, a body that is
not what the API defines) ends in a `PDPError`; nothing here turns a failure into a decision,
least of all a permit.

This module holds what the requests mean; where they go is `remote_discovery.py` and how they
travel (credentials, retries, status codes) is `remote_transport.py`.

- Access Evaluations goes out as one batch request when the PDP has the endpoint, otherwise
  it is emulated with concurrent single evaluations. Either way the short-circuit semantic is
  applied locally as well.
- Searches follow `page.next_token` to the end and return every result in one list; a
  result that carries obligations is left out (the bridge carries none out on results).
- Every answer is checked against the shape the API defines before it is believed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self

import httpx

from ..settings import RemotePDPSettings
from .batch import stops_here, truncate
from .errors import PDPProtocolError, PDPRequestRejected
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
from .remote_discovery import (
    DEFAULT_PATHS,
    WELL_KNOWN_PATH,
    RemoteCapabilities,
    RemoteMetadata,
    SearchKind,
    well_known_url,
)
from .remote_transport import RemoteConnection, backoff_delay, display_url

__all__ = [
    "DEFAULT_PATHS",
    "WELL_KNOWN_PATH",
    "RemoteCapabilities",
    "RemotePDP",
    "SearchKind",
    "backoff_delay",
    "well_known_url",
]

# Concurrent single evaluations while emulating a batch.
_EMULATION_CONCURRENCY: Final = 16


class RemotePDP:
    """The `PDP` interface over HTTP to a remote AuthZEN PDP, with one pooled client."""

    # Most pages one search follows before the PDP is taken to be looping.
    max_search_pages: int = 1000

    def __init__(
        self,
        settings: RemotePDPSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        required_capabilities: frozenset[str] = frozenset(),
    ) -> None:
        """`required_capabilities`: URNs the PDP's metadata must advertise, or no request
        is sent (discovery must be on for them to be read)."""
        self._connection = RemoteConnection(settings, transport=transport)
        self._display = self._connection.display
        self._metadata = RemoteMetadata(
            self._connection,
            str(settings.url),
            discovery=settings.discovery,
            required=required_capabilities,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool. Later calls raise `PDPUnavailable`."""
        await self._connection.aclose()

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
        return await self._metadata.document()

    async def capabilities(self) -> RemoteCapabilities:
        """Which endpoints and capabilities the PDP offers."""
        return await self._metadata.view()

    # -- the PDP interface -------------------------------------------------------------------

    async def evaluate(self, request: EvaluationRequest) -> Decision:
        """One decision from the PDP's Access Evaluation endpoint."""
        view = await self._metadata.view()
        url = view.access_evaluation_endpoint
        what = "evaluation"
        answer = await self._connection.post(url, what, request.model_dump(exclude_none=True))
        return _decision(answer, f"{what} answer from {display_url(url)}")

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
        view = await self._metadata.view()
        if view.access_evaluations_endpoint is None:
            return await self._emulate(requests, semantic)
        url = view.access_evaluations_endpoint
        where = f"evaluations answer from {display_url(url)}"
        body: JSONObject = {"evaluations": [r.model_dump(exclude_none=True) for r in requests]}
        if semantic != EvaluationsSemantic.execute_all:
            body["options"] = {"evaluations_semantic": semantic.value}
        answer = await self._connection.post(url, "evaluations", body)
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
        view = await self._metadata.view()
        url = view.search_endpoint(kind)
        if url is None:
            raise PDPRequestRejected(
                f"{kind} search is not supported by the PDP at {self._display}", 501
            )
        what = f"{kind} search"
        where = f"{what} answer from {display_url(url)}"
        page = original.get("page")
        page = dict(page) if isinstance(page, dict) else {}
        token = page.get("token")
        seen: set[str] = {token} if isinstance(token, str) and token else set()
        results: list[JSONObject] = []
        known: set[tuple[str, ...]] = set()
        body = original
        for _ in range(self.max_search_pages):
            answer = await self._connection.post(url, what, body)
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


# -- answer shapes ----------------------------------------------------------------------------


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
            if _has_obligations(item):
                # The obligations profile's Search rule: a result whose obligations the PEP
                # cannot comply with is left out, and the bridge carries none out on results.
                continue
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


def _has_obligations(item: JSONObject) -> bool:
    """A search result carrying obligations: as a member (the merged draft), or in its
    `context` (the first draft)."""
    context = item.get("context")
    inner = context.get("obligations") if isinstance(context, dict) else None
    return bool(item.get("obligations") or inner)
