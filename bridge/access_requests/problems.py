"""ARAP errors (ARAP §13) as RFC 9457 problem details, one class per problem type.

The service raises these; the routes render them as `application/problem+json`
(`responses.problem_response`). Errors that
ARAP does not name (a body that is not JSON, a missing credential, a forbidden approver) are
problems too, with `type` `about:blank` and the HTTP status's title, so every answer of the
access request endpoints has one shape. Details say what is wrong with the request, never
which policy or which approver decided.
"""

from __future__ import annotations

from http import HTTPStatus

from ..authzen.errors import AuthZENError

URN = "urn:openid:authzen:access-request:error:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class AccessRequestProblem(Exception):
    type = "about:blank"
    title = "Bad Request"
    status = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


class NotRequestable(AccessRequestProblem):
    type = URN + "not_requestable"
    title = "Access is not requestable"


class ExpiredDenial(AccessRequestProblem):
    type = URN + "expired_denial"
    title = "The denial has expired"
    status = 410


class InvalidDenialBinding(AccessRequestProblem):
    type = URN + "invalid_denial_binding"
    title = "The denial binding is invalid"


class DuplicateRequest(AccessRequestProblem):
    type = URN + "duplicate_request"
    title = "Idempotency-Key reused with a different request"
    status = 409


class UnknownTask(AccessRequestProblem):
    type = URN + "unknown_task"
    title = "Unknown access request"
    status = 404


class TaskExpired(AccessRequestProblem):
    type = URN + "task_expired"
    title = "The access request has expired"
    status = 410


class InvalidTaskState(AccessRequestProblem):
    type = URN + "invalid_task_state"
    title = "Not possible in the access request's current state"
    status = 409


class BadRequest(AccessRequestProblem):
    """A body or parameter that is not what the endpoint takes (no ARAP type applies)."""


class Unauthorized(AccessRequestProblem):
    title = "Unauthorized"
    status = 401


class Forbidden(AccessRequestProblem):
    title = "Forbidden"
    status = 403


def from_authzen(error: AuthZENError) -> AccessRequestProblem:
    """An AuthZEN transport refusal (bad JSON, 401, 413, 415) as a problem of the same status."""
    problem = AccessRequestProblem(error.message, headers=error.headers)
    problem.status = error.status
    problem.title = HTTPStatus(error.status).phrase
    return problem


def status_problem(status: int, detail: str) -> AccessRequestProblem:
    """A plain problem for a routing status (404 path, 405 method)."""
    problem = AccessRequestProblem(detail)
    problem.status = status
    problem.title = HTTPStatus(status).phrase
    return problem
