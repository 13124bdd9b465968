"""A remote AuthZEN PDP whose answers a test writes: a stand-in for a PDP product, served
over real HTTP (`tests.conftest.ServerThread`), for what the embedded Cedar engine does not
say (obligations in decision contexts, failing or odd searches).

It publishes its metadata (evaluation, evaluations and resource search endpoints, and the
capabilities it is given), answers every evaluation with `decide(item)` (default: a bare
permit) and every resource search with `search(body)` (default: no results), and records
what it was asked:

    pdp = ScriptedPDP()
    pdp.decide = lambda item: {"decision": True, "context": {"obligations": [...]}}
    with ServerThread(pdp.app) as thread:
        pdp.url = thread.url
        ...  # a bridge with [pdp.remote] url = thread.url
    assert pdp.calls[0][0] == "evaluations"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Answer = dict[str, Any]


def permit(item: Answer) -> Answer:
    return {"decision": True}


def nothing_found(body: Answer) -> Answer:
    return {"results": []}


class ScriptedPDP:
    def __init__(self, capabilities: tuple[str, ...] = ()) -> None:
        self.url = ""
        self.capabilities = list(capabilities)
        self.decide: Callable[[Answer], Answer] = permit
        self.search: Callable[[Answer], Answer] = nothing_found
        self.calls: list[tuple[str, Answer]] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/authzen-configuration", self._metadata),
                Route("/access/v1/evaluation", self._evaluation, methods=["POST"]),
                Route("/access/v1/evaluations", self._evaluations, methods=["POST"]),
                Route("/access/v1/search/resource", self._search, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        self.decide, self.search = permit, nothing_found
        self.calls.clear()

    def asked(self, kind: str) -> list[Answer]:
        """The bodies of the calls of one kind ("evaluation", "evaluations", "search")."""
        return [body for where, body in self.calls if where == kind]

    async def _metadata(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "policy_decision_point": self.url,
                "access_evaluation_endpoint": self.url + "/access/v1/evaluation",
                "access_evaluations_endpoint": self.url + "/access/v1/evaluations",
                "search_resource_endpoint": self.url + "/access/v1/search/resource",
                "capabilities": self.capabilities,
            }
        )

    async def _evaluation(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(("evaluation", body))
        return JSONResponse(self.decide(body))

    async def _evaluations(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(("evaluations", body))
        return JSONResponse({"evaluations": [self.decide(item) for item in body["evaluations"]]})

    async def _search(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(("search", body))
        answer = self.search(body)
        status = answer.pop("status", 200) if isinstance(answer, dict) else 200
        return JSONResponse(answer, status_code=status)
