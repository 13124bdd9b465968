"""A JSON Web Key Set from configuration or from a `jwks_uri`, cached.

A key set fetched by URI is refreshed when a token names a `kid` it does not hold (the issuer
has rotated), at most once per `min_refresh_seconds` so a flood of made-up `kid`s cannot turn
the bridge into a fetching loop.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from joserfc.jwk import KeySet


class JWKSError(Exception):
    """The key set could not be had (unreachable URI, not a JWKS)."""


class JWKSource:
    def __init__(
        self,
        *,
        jwks: dict[str, Any] | None = None,
        uri: str | None = None,
        http: httpx.AsyncClient | None = None,
        min_refresh_seconds: float = 30.0,
    ) -> None:
        if (jwks is None) == (uri is None):
            raise ValueError("give exactly one of jwks and uri")
        self._uri = uri
        self._http = http
        self._keys = KeySet.import_key_set(jwks) if jwks is not None else None  # type: ignore[arg-type]
        self._fetched_at = 0.0
        self._min_refresh = min_refresh_seconds

    async def key_set(self, kid: str | None) -> KeySet:
        if self._keys is not None and (self._uri is None or _holds(self._keys, kid)):
            return self._keys
        if self._keys is None or time.monotonic() - self._fetched_at >= self._min_refresh:
            await self._fetch()
        assert self._keys is not None
        return self._keys

    async def _fetch(self) -> None:
        assert self._uri is not None
        http = self._http or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        try:
            response = await http.get(self._uri, headers={"Accept": "application/json"})
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, TypeError, KeyError) as exc:
            raise JWKSError(f"cannot load the key set from {self._uri}: {exc}") from exc
        finally:
            self._fetched_at = time.monotonic()
            if self._http is None:
                await http.aclose()


def _holds(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(key.kid == kid for key in keys.keys)
