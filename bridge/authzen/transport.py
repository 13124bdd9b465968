"""The HTTPS JSON binding of the AuthZEN API (API 1.0 §10): what a body must be, how errors look."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..jose.json_text import dumps
from ..jose.strict_json import DuplicateMemberError, NotUTF8Error, StrictJSONError, loads
from .errors import AuthZENError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from .models import JSONObject

JSON_MEDIA_TYPE = "application/json"


async def read_json_object(request: Request, max_bytes: int) -> JSONObject:
    """The request body as a JSON object, or an `AuthZENError` saying what is wrong with it."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType("Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    if declared is not None and declared.isdigit():
        body = await request.body()  # the server has already bounded it by Content-Length
    else:
        body = await _read_bounded(request, max_bytes)
    if not body.strip():
        raise BadRequest("the request body is empty")
    try:
        data = loads(body)
    except NotUTF8Error:
        raise BadRequest("the request body is not UTF-8") from None
    except DuplicateMemberError as dup:
        raise BadRequest(f"member {dup.name!r} appears twice in one object") from None
    except StrictJSONError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


async def _read_bounded(request: Request, max_bytes: int) -> bytes:
    """A body of unknown length (chunked), read until it passes the limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    return bytes(body)


def json_response(body: JSONObject, status: int = 200) -> Response:
    if status == 200 and body in _PLAIN_DECISIONS:
        # The two most frequent answers, serialised once.
        return Response(_PLAIN_DECISIONS_BYTES[body["decision"]], media_type=JSON_MEDIA_TYPE)
    return Response(dumps(body), status_code=status, media_type=JSON_MEDIA_TYPE)


_PLAIN_DECISIONS: list[JSONObject] = [{"decision": True}, {"decision": False}]
_PLAIN_DECISIONS_BYTES = {True: b'{"decision":true}', False: b'{"decision":false}'}


def error_response(error: AuthZENError) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": error.status, "message": error.message}},
        status_code=error.status,
        headers=error.headers,
    )
