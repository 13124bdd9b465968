"""A store asked in process exactly the way its HTTP endpoints ask it.

Tests and explanations are only worth something if they decide what the server decides, so
requests go through the same parsing functions as the routes (`parse_model`,
`parse_evaluations` with its defaults and semantics) to the same `CedarPDP`, with the
server's default limits. Batches use a PDP without explanations, because that is what
interop clients see: each item exactly `{"decision": b}`.
"""

from __future__ import annotations

from ..authzen.cedar.engine import CedarPDP
from ..authzen.cedar.reload import StoreHolder
from ..authzen.cedar.store import PolicyStore
from ..authzen.errors import AuthZENError, PDPError
from ..authzen.evaluations import answer_evaluations
from ..authzen.models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    JSONObject,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from ..authzen.pagination import Paginator
from ..authzen.requests import parse_model
from ..settings import LimitsSettings


class StoreClient:
    def __init__(self, store: PolicyStore) -> None:
        limits = LimitsSettings()
        holder = StoreHolder(store)
        paginator = Paginator(None, limits.max_page_size)
        self.store = store
        self.max_batch_items = limits.max_batch_items
        self.explaining = CedarPDP(holder, paginator, explanations=True)
        self.plain = CedarPDP(holder, paginator, explanations=False)

    async def evaluation(self, body: JSONObject) -> Decision:
        """Raises `AuthZENError` for a request the endpoint refuses, `PDPError` for none."""
        return await self.explaining.evaluate(parse_model(EvaluationRequest, body))

    async def evaluations(self, body: JSONObject) -> JSONObject:
        """The batch endpoint's response body, built as the endpoint builds it."""
        return await answer_evaluations(self.plain, body, self.max_batch_items)

    async def search(self, kind: str, body: JSONObject) -> list[JSONObject]:
        """The `results` of a search (`kind` is subject, resource or action)."""
        if kind == "subject":
            found = await self.plain.search_subject(parse_model(SubjectSearchRequest, body))
        elif kind == "resource":
            found = await self.plain.search_resource(parse_model(ResourceSearchRequest, body))
        else:
            found = await self.plain.search_action(parse_model(ActionSearchRequest, body))
        return found.results


def error_body(error: Exception) -> JSONObject:
    """What the endpoint would answer instead of a decision."""
    if isinstance(error, AuthZENError):
        return {"error": {"status": error.status, "message": error.message}}
    if isinstance(error, PDPError):
        return {"error": {"status": 500, "message": str(error)}}
    raise error
