"""HTTP for the access request service, under `/access/v1` of the default store.

Requesters (the store's PEPs): `POST /requests` (submission, `Idempotency-Key`),
`GET /requests/{id}` (status), `POST|DELETE /requests/{id}/cancel`.
Approvers (bearer JWTs): `GET /approvals` (their inbox), `GET /approvals/{id}`,
`POST /approvals/{id}` (`{"decision", "items"?, "justification"?, "approved_until"?}`),
`POST /approvals/{id}/review` (confirm an emergency approval, `{"justification"?}`),
`POST /approvals/{approval id}/revoke` (withdraw a granted approval, `{"reason"?}`).

Every refusal is `application/problem+json`; a failure inside is a 500 problem, never a
stack trace. Nothing here is cacheable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..authzen.errors import AuthZENError, PDPError
from ..authzen.transport import read_json_object
from .auth import ApproverAuthenticator, RequesterAuthenticator
from .problems import AccessRequestProblem, BadRequest, from_authzen, status_problem
from .responses import problem_response
from .service import AccessRequestService
from .times import parse_rfc3339, rfc3339

log = logging.getLogger("bridge.access_requests")

API_PATH = "/access/v1"
NO_STORE = {"Cache-Control": "no-store"}
_MAX_KEY = 255

Handler = Callable[[Request], Awaitable[Response]]


def access_request_routes(
    service: AccessRequestService,
    requesters: RequesterAuthenticator,
    approvers: ApproverAuthenticator,
    *,
    max_body_bytes: int,
) -> list[Route]:
    api = _API(service, requesters, approvers, max_body_bytes)
    base = API_PATH
    return [
        Route(f"{base}/requests", _Endpoint(api.submit), methods=["POST"]),
        Route(f"{base}/requests/{{task_id}}", _Endpoint(api.status), methods=["GET"]),
        Route(
            f"{base}/requests/{{task_id}}/cancel", _Endpoint(api.cancel), methods=["POST", "DELETE"]
        ),
        Route(f"{base}/approvals", _Endpoint(api.inbox), methods=["GET"]),
        # One route for both methods, so a 405 there lists both in `Allow`.
        Route(
            f"{base}/approvals/{{task_id}}",
            _Endpoint(_by_method({"GET": api.inspect, "POST": api.decide})),
            methods=["GET", "POST"],
        ),
        Route(f"{base}/approvals/{{task_id}}/review", _Endpoint(api.review), methods=["POST"]),
        Route(f"{base}/approvals/{{approval_id}}/revoke", _Endpoint(api.revoke), methods=["POST"]),
    ]


def _by_method(handlers: dict[str, Handler]) -> Handler:
    async def handler(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return handler


class _API:
    def __init__(
        self,
        service: AccessRequestService,
        requesters: RequesterAuthenticator,
        approvers: ApproverAuthenticator,
        max_body_bytes: int,
    ) -> None:
        self.service = service
        self.requesters = requesters
        self.approvers = approvers
        self.max_body = max_body_bytes

    async def submit(self, request: Request) -> Response:
        requester, proof = await self.requesters.caller(request)
        key = request.headers.get("idempotency-key")
        if key is not None and not (0 < len(key) <= _MAX_KEY and key.isprintable()):
            raise BadRequest(f"Idempotency-Key must be 1 to {_MAX_KEY} printable characters")
        body = await read_json_object(request, self.max_body)
        view = await self.service.submit(body, requester, key, proof=proof)
        headers = {**NO_STORE, "Location": self.service.urls.status(view.id)}
        return JSONResponse(view.to_json(self.service.urls), status_code=202, headers=headers)

    async def status(self, request: Request) -> Response:
        requester = await self.requesters.identify(request)
        view = await self.service.status(request.path_params["task_id"], requester)
        return JSONResponse(view.to_json(self.service.urls), headers=NO_STORE)

    async def cancel(self, request: Request) -> Response:
        requester = await self.requesters.identify(request)
        view = await self.service.cancel(request.path_params["task_id"], requester)
        return JSONResponse(view.to_json(self.service.urls), headers=NO_STORE)

    async def inbox(self, request: Request) -> Response:
        approver = await self.approvers.identify(request)
        tasks = await self.service.tasks_for(approver)
        return JSONResponse({"access_requests": tasks}, headers=NO_STORE)

    async def inspect(self, request: Request) -> Response:
        approver = await self.approvers.identify(request)
        task = await self.service.task_for(request.path_params["task_id"], approver)
        return JSONResponse({"access_request": task}, headers=NO_STORE)

    async def decide(self, request: Request) -> Response:
        approver = await self.approvers.identify(request)
        body = await read_json_object(request, self.max_body)
        until = body.get("approved_until")
        until_at = None if until is None else parse_rfc3339(until)
        if until is not None and until_at is None:
            raise BadRequest("approved_until must be an RFC 3339 date-time")
        justification = body.get("justification")
        task_id = request.path_params["task_id"]
        await self.service.decide(
            task_id,
            approver,
            body.get("decision", ""),  # the service checks the members' types
            body.get("items"),
            justification,
            until_at,
        )
        task = await self.service.task_for(task_id, approver)
        return JSONResponse({"access_request": task}, headers=NO_STORE)

    async def review(self, request: Request) -> Response:
        approver = await self.approvers.identify(request)
        body = await self._optional_body(request)
        task_id = request.path_params["task_id"]
        await self.service.review(task_id, approver, _text(body, "justification"))
        task = await self.service.task_for(task_id, approver)
        return JSONResponse({"access_request": task}, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        approver = await self.approvers.identify(request)
        body = await self._optional_body(request)
        approval = await self.service.revoke(
            request.path_params["approval_id"], approver, _text(body, "reason")
        )
        revoked = {
            "id": approval.id,
            "access_request": approval.task_id,
            "status": "revoked",
            "approved_until": rfc3339(approval.approved_until),
        }
        return JSONResponse({"approval": revoked}, headers=NO_STORE)

    async def _optional_body(self, request: Request) -> dict[str, object]:
        """A JSON object body, or nothing at all (no Content-Length and no body)."""
        if request.headers.get("content-length") in (None, "0") and not request.headers.get(
            "transfer-encoding"
        ):
            return {}
        return await read_json_object(request, self.max_body)


def _text(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


class _Endpoint:
    """An endpoint as a plain ASGI app whose every refusal is a problem document."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except AccessRequestProblem as problem:
            response = problem_response(problem)
        except AuthZENError as error:
            response = problem_response(from_authzen(error))
        except PDPError as error:
            log.error("no decision for %s: %s", request.url.path, error)
            response = problem_response(status_problem(500, "no decision could be made"))
        except Exception:
            log.exception("access request endpoint %s failed", request.url.path)
            response = problem_response(status_problem(500, "the request could not be processed"))
        await response(scope, receive, send)
