"""How an OAuth endpoint answers: JSON bodies and errors that are never cached (RFC 6749
§5.1, §5.2)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from ..errors import OAuthError
from ..jose.json_text import dumps

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_response(error: OAuthError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, headers={**NO_STORE, **error.headers}
    )


def json_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(body), media_type="application/json", headers={**NO_STORE, **(headers or {})}
    )
