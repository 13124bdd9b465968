"""Search pagination (API 1.0 §8.2): opaque, signed `next_token`s.

A token carries the offset of the next page and a fingerprint of the request it belongs to,
under an HMAC. A follow-up request must repeat the original request unchanged; a token from
another request, another endpoint or another key is refused with 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from pydantic import BaseModel

from .errors import BadRequest
from .models import JSONObject, SearchPage, SearchResult

_FINGERPRINT_BYTES = 16
_MAC_BYTES = 16


class Paginator:
    def __init__(self, secret: bytes | None, max_page_size: int) -> None:
        self._key = secret or secrets.token_bytes(32)
        self.max_page_size = max_page_size

    def page(self, scope: str, request: BaseModel, results: list[JSONObject]) -> SearchResult:
        """The page of `results` that `request` asks for.

        Without `page.limit`, `page.token` and with no more results than the largest page,
        everything comes back and `page` is omitted.
        """
        page = getattr(request, "page", None)
        limit = page.limit if page is not None and page.limit else None
        token = page.token if page is not None else None
        if limit is None and not token and len(results) <= self.max_page_size:
            return SearchResult(results)
        size = min(limit or self.max_page_size, self.max_page_size)
        fingerprint = _fingerprint(scope, request)
        offset = self._open(token, fingerprint) if token else 0
        chunk = results[offset : offset + size]
        end = offset + len(chunk)
        next_token = self._seal(end, fingerprint) if end < len(results) else ""
        return SearchResult(chunk, SearchPage(next_token, len(chunk), len(results)))

    def _seal(self, offset: int, fingerprint: bytes) -> str:
        body = offset.to_bytes(8, "big") + fingerprint
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    def _open(self, token: str, fingerprint: bytes) -> int:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise BadRequest("page.token is not a token this PDP issued") from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(body) != 8 + _FINGERPRINT_BYTES or not hmac.compare_digest(mac, expected):
            raise BadRequest("page.token is not a token this PDP issued")
        if not hmac.compare_digest(body[8:], fingerprint):
            raise BadRequest("page.token belongs to a different request; resend it unchanged")
        return int.from_bytes(body[:8], "big")


def _fingerprint(scope: str, request: BaseModel) -> bytes:
    data: Any = request.model_dump(exclude_none=True)
    page = data.get("page")
    if isinstance(page, dict):
        page.pop("token", None)
        if not page:
            # A first request without `page` and its follow-up with only a token are one request.
            del data["page"]
    canonical = json.dumps([scope, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).digest()[:_FINGERPRINT_BYTES]
