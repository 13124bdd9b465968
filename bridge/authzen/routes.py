"""The AuthZEN Authorization API endpoints of one policy store, and its metadata document.

Each endpoint is the same short pipeline: authenticate the PEP, read the JSON body, parse the
request, ask the PDP, answer. Anything refused along the way is an `AuthZENError`; a PDP
that cannot decide answers 500, never a permit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..settings import LimitsSettings
from .errors import AuthZENError, PDPError
from .evaluations import answer_evaluations
from .models import (
    ActionSearchRequest,
    EvaluationRequest,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from .pdp import PDP
from .pep_auth import PEPAuthenticator
from .requests import parse_model
from .transport import error_response, json_response, read_json_object

log = logging.getLogger("bridge.authzen")

API_PATH = "/access/v1"
WELL_KNOWN = "/.well-known/authzen-configuration"


@dataclass(frozen=True)
class StoreEndpoints:
    """Where one store's API lives: its PDP identifier and the paths under it."""

    name: str
    public_url: str
    # Capability URNs the store advertises of its own (e.g. the token issuance profile's).
    capabilities: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return "" if self.name == "default" else f"/stores/{self.name}"

    @property
    def pdp_id(self) -> str:
        return self.public_url + self.prefix

    @property
    def metadata_path(self) -> str:
        # The well-known segment goes between host and path (as RFC 8414 does it).
        return WELL_KNOWN + self.prefix

    def url(self, endpoint: str) -> str:
        return f"{self.pdp_id}{API_PATH}/{endpoint}"

    def metadata(self) -> dict[str, object]:
        return {
            "policy_decision_point": self.pdp_id,
            "access_evaluation_endpoint": self.url("evaluation"),
            "access_evaluations_endpoint": self.url("evaluations"),
            "search_subject_endpoint": self.url("search/subject"),
            "search_resource_endpoint": self.url("search/resource"),
            "search_action_endpoint": self.url("search/action"),
            "capabilities": list(self.capabilities),
        }


Handler = Callable[[Request], Awaitable[Response]]


class StoreAPI:
    def __init__(
        self,
        endpoints: StoreEndpoints,
        pdp: PDP,
        auth: PEPAuthenticator,
        limits: LimitsSettings,
        metadata: dict[str, object] | None = None,
    ) -> None:
        # Metadata may be extended by other parts (ARAP adds its endpoint and capability).
        self._metadata = metadata if metadata is not None else endpoints.metadata()
        self.endpoints = endpoints
        self.pdp = pdp
        self.auth = auth
        self.limits = limits

    def routes(self) -> list[Route]:
        base = self.endpoints.prefix + API_PATH
        post = ["POST"]
        return [
            Route(f"{base}/evaluation", _Endpoint(self.evaluation), methods=post),
            Route(f"{base}/evaluations", _Endpoint(self.evaluations), methods=post),
            Route(f"{base}/search/subject", _Endpoint(self.search_subject), methods=post),
            Route(f"{base}/search/resource", _Endpoint(self.search_resource), methods=post),
            Route(f"{base}/search/action", _Endpoint(self.search_action), methods=post),
            Route(self.endpoints.metadata_path, self.metadata, methods=["GET"]),
        ]

    async def _body(self, request: Request) -> dict[str, object]:
        await self.auth.authenticate(request)
        return await read_json_object(request, self.limits.max_body_bytes)

    async def evaluation(self, request: Request) -> Response:
        evaluation = parse_model(EvaluationRequest, await self._body(request))
        decision = await self.pdp.evaluate(evaluation)
        return json_response(decision.to_json())

    async def evaluations(self, request: Request) -> Response:
        body = await self._body(request)
        return json_response(await answer_evaluations(self.pdp, body, self.limits.max_batch_items))

    async def search_subject(self, request: Request) -> Response:
        search = parse_model(SubjectSearchRequest, await self._body(request))
        return json_response((await self.pdp.search_subject(search)).to_json())

    async def search_resource(self, request: Request) -> Response:
        search = parse_model(ResourceSearchRequest, await self._body(request))
        return json_response((await self.pdp.search_resource(search)).to_json())

    async def search_action(self, request: Request) -> Response:
        search = parse_model(ActionSearchRequest, await self._body(request))
        return json_response((await self.pdp.search_action(search)).to_json())

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(self._metadata, headers={"Cache-Control": "max-age=300"})


class _Endpoint:
    """An endpoint as a plain ASGI app: refusals become AuthZEN error responses, a failed
    PDP a 500. (Plain ASGI skips a layer of Starlette's per-request wrapping; these
    endpoints handle their own errors.)"""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except AuthZENError as error:
            response = error_response(error)
        except PDPError as error:
            log.error("no decision for %s: %s", request.url.path, error)
            response = JSONResponse(
                {"error": {"status": 500, "message": "no decision could be made"}},
                status_code=500,
            )
        await response(scope, receive, send)
