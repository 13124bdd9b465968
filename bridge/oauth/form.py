"""The `application/x-www-form-urlencoded` body of OAuth endpoint requests (RFC 6749 §3.2).

Parameters must not repeat (RFC 6749 §3.1), except those defined to repeat (RFC 8707
`resource`); a parameter sent without a value counts as omitted.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from ..errors import InvalidRequest

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_REPEATABLE = frozenset({"resource"})


async def _read_bounded(request: Request, max_bytes: int) -> bytes:
    """A body of unknown length (chunked), read until it passes the limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise InvalidRequest(f"the request body is larger than {max_bytes} bytes", status=413)
    return bytes(body)


class Form:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            if value == "":
                continue
            self._values.setdefault(name, []).append(value)
        for name, values in self._values.items():
            if len(values) > 1 and name not in _REPEATABLE:
                raise InvalidRequest(f"parameter {name} is repeated")

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise InvalidRequest(f"parameter {name} is required")
        return value

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def only(self, names: frozenset[str] | set[str]) -> Form:
        """The same form without the parameters not in `names` (dropped, not refused)."""
        kept = Form([])
        kept._values = {n: v for n, v in self._values.items() if n in names}
        return kept

    def pairs(self, without: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """Every (name, value), in order of name, but the names in `without`."""
        return [(n, v) for n, values in self._values.items() if n not in without for v in values]

    def as_dict(self) -> dict[str, str]:
        """Single-valued view (what client authentication reads)."""
        return {name: values[0] for name, values in self._values.items()}


async def read_form(request: Request, max_bytes: int) -> Form:
    if request.scope.get("query_string"):  # `request.url.query`, without building the URL
        # Credentials and grants in a URL end up in access logs, proxies and browser
        # histories: RFC 6749 §3.2 and §2.3.1 put them in the body.
        raise InvalidRequest("parameters must be sent in the request body, not in the URL")
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_MEDIA_TYPE}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise InvalidRequest(f"the request body is larger than {max_bytes} bytes", status=413)
    if declared is not None and declared.isdigit():
        body = await request.body()  # the server has already bounded it by Content-Length
    else:
        body = await _read_bounded(request, max_bytes)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not valid form data") from None
    return Form(pairs)
