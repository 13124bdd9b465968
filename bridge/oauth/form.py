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
        pairs = form_pairs(body)
    except ValueError:  # UnicodeDecodeError among them
        raise InvalidRequest("the request body is not valid form data") from None
    return Form(pairs)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a form body, blank values kept, exactly as `parse_qsl`
    reads the body decoded as UTF-8 (strictly); a ValueError for a body that is not UTF-8.

    `parse_qsl` percent-decodes in a Python loop, one escape at a time, and the JSON of an
    `authorization_details` value is mostly escapes: a third of a form's cost. Here each
    `%XX` becomes a backslash escape `\\xXX` (every backslash of the body doubled first, so
    no other escape exists) that the `unicode_escape` codec decodes in C. A `%` that is not
    followed by two hex digits, which `parse_qsl` keeps as it is, sends the whole body
    through `parse_qsl`.
    """
    try:
        return [
            (_unquote(name), _unquote(value))
            for name, _, value in (field.partition(b"=") for field in body.split(b"&") if field)
        ]
    except ValueError:  # a malformed escape, or not UTF-8 (which parse_qsl refuses too)
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")


def _unquote(raw: bytes) -> str:
    if b"%" in raw or b"+" in raw:
        escaped = raw.replace(b"+", b" ").replace(b"\\", b"\\\\").replace(b"%", b"\\x")
        # Escapes decode to code points 0-255 and raw bytes to themselves: Latin-1 gives the
        # bytes back, read as UTF-8 strictly, as parse_qsl reads each run of escapes.
        raw = escaped.decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8")
