"""The provider's public signing keys, read from its `jwks_uri` and kept.

A provider rotates keys by publishing a new one and signing with it: an ID token whose `kid`
the kept set lacks makes the set be read again, once, and at most every `min_refresh_seconds`
(so a run of tokens naming unknown keys cannot turn into a run of fetches).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .errors import KeysUnavailable
from .provider_http import ProviderHTTP, ProviderHTTPError

# More keys than any provider publishes at once (current, next and a few retired ones).
MAX_KEYS = 50
# Key types that can verify an asymmetric signature; `oct` keys (HMAC) are never used.
_PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class ProviderKeys:
    def __init__(
        self,
        fetcher: ProviderHTTP,
        *,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._uri: str | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, jwks_uri: str, kid: str | None) -> KeySet:
        """The keys to verify a token naming `kid` (None: the token names none)."""
        async with self._lock:
            unknown_kid = (
                self._keys is not None
                and kid is not None
                and not _holds(self._keys, kid)
                and self._clock() - self._fetched_at >= self._min_refresh
            )
            if self._keys is None or self._uri != jwks_uri or unknown_kid:
                await self._fetch(jwks_uri)
            assert self._keys is not None
            return self._keys

    async def _fetch(self, jwks_uri: str) -> None:
        try:
            document = await self._fetcher.get_json(jwks_uri)
        except ProviderHTTPError as exc:
            raise KeysUnavailable(f"the provider's keys could not be read: {exc}") from None
        finally:
            self._fetched_at = self._clock()
        self._keys, self._uri = _public_key_set(document), jwks_uri


def _public_key_set(document: Any) -> KeySet:
    """The verification keys of a JWKS: public asymmetric keys meant for signatures. Keys of
    other types or uses are left out rather than failing the set (RFC 7517 §5)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable("the provider's jwks_uri does not hold a JWK Set")
    keys: list[dict[str, Any]] = []
    for key in document["keys"][:MAX_KEYS]:
        if not isinstance(key, dict) or key.get("kty") not in _PUBLIC_KEY_TYPES:
            continue
        if key.get("use", "sig") != "sig" or "d" in key:
            continue  # an encryption key, or a private key published by mistake
        keys.append(key)
    if not keys:
        raise KeysUnavailable("the provider's JWK Set holds no public signing key")
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise KeysUnavailable(f"the provider's JWK Set cannot be used: {exc}") from None


def _holds(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
