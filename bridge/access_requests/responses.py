"""How the access request endpoints answer an error: RFC 9457 problem details, never cached."""

from __future__ import annotations

from starlette.responses import JSONResponse

from .problems import PROBLEM_MEDIA_TYPE, AccessRequestProblem


def problem_response(problem: AccessRequestProblem) -> JSONResponse:
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers={"Cache-Control": "no-store", **problem.headers},
        media_type=PROBLEM_MEDIA_TYPE,
    )
