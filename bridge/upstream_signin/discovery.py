"""The provider's metadata (OpenID Connect Discovery 1.0), read once and kept for a while.

Discovery decides where the person is sent and where the code (and the client secret) goes,
so the document is refused unless it is the configured provider's (§4.3: its `issuer` is
exactly the configured one) and describes what the sign-in needs: the `code` response type,
PKCE with `S256` when it lists PKCE methods, the configured client authentication, and
absolute http(s) URLs for the endpoints. Whether each URL may be called is checked when it is
called (`provider_http`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import DiscoveryFailed
from .provider_http import MAX_DETAIL, ProviderHTTP, ProviderHTTPError

WELL_KNOWN_PATH: Final = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    # RFC 9207: the provider names itself in every authorization response.
    iss_parameter_supported: bool
    id_token_signing_algorithms: frozenset[str]


def well_known_url(issuer: str) -> str:
    """Discovery §4: the well-known path is appended to the issuer, after its own path."""
    return issuer.rstrip("/") + WELL_KNOWN_PATH


def read_metadata(document: Any, *, issuer: str, auth_method: str) -> ProviderMetadata:
    """The parts of a metadata document the sign-in uses; `DiscoveryFailed` when it is not the
    configured provider's or lacks what the sign-in needs."""
    if not isinstance(document, dict):
        raise DiscoveryFailed("the provider's metadata is not a JSON object")
    named = document.get("issuer")
    if named != issuer:
        shown = repr(named[:MAX_DETAIL]) if isinstance(named, str) else "no issuer"
        raise DiscoveryFailed(
            f"the provider's metadata names {shown}, not the configured issuer {issuer!r}"
        )
    response_types = _strings(document, "response_types_supported", default=["code"])
    if "code" not in response_types:
        raise DiscoveryFailed("the provider does not offer the authorization code flow")
    pkce = _optional_strings(document, "code_challenge_methods_supported")
    if pkce is not None and "S256" not in pkce:
        # Listing methods without S256 means PKCE as the sign-in sends it would be ignored.
        raise DiscoveryFailed("the provider does not offer PKCE with S256")
    methods = _strings(
        document, "token_endpoint_auth_methods_supported", default=["client_secret_basic"]
    )
    if auth_method not in methods:
        raise DiscoveryFailed(
            f"the provider does not offer {auth_method} at its token endpoint "
            f"(it offers {', '.join(m[:50] for m in methods[:10])})"
        )
    iss_supported = document.get("authorization_response_iss_parameter_supported", False)
    if not isinstance(iss_supported, bool):
        raise DiscoveryFailed("authorization_response_iss_parameter_supported is not a boolean")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint"),
        token_endpoint=_endpoint(document, "token_endpoint"),
        jwks_uri=_endpoint(document, "jwks_uri"),
        iss_parameter_supported=iss_supported,
        id_token_signing_algorithms=frozenset(
            _strings(document, "id_token_signing_alg_values_supported", default=[])
        ),
    )


def _endpoint(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise DiscoveryFailed(f"the provider's metadata has no {name}")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise DiscoveryFailed(f"the provider's {name} is not an absolute http(s) URL")
    return value


def _strings(document: dict[str, Any], name: str, *, default: list[str]) -> list[str]:
    found = _optional_strings(document, name)
    return default if found is None else found


def _optional_strings(document: dict[str, Any], name: str) -> list[str] | None:
    if name not in document:
        return None
    value = document[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DiscoveryFailed(f"the provider's {name} is not a list of strings")
    return value


class Discovery:
    """The configured provider's metadata, read on first use and again after `max_age`."""

    def __init__(
        self,
        fetcher: ProviderHTTP,
        *,
        issuer: str,
        auth_method: str,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._issuer = issuer
        self._auth_method = auth_method
        self._max_age = max_age_seconds
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._read_at = 0.0
        # One reading at a time: a burst of sign-ins after a restart reads the document once.
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        if self._fresh():
            assert self._metadata is not None
            return self._metadata
        async with self._lock:
            if not self._fresh():
                await self._read()
        assert self._metadata is not None
        return self._metadata

    def _fresh(self) -> bool:
        return self._metadata is not None and self._clock() - self._read_at < self._max_age

    async def _read(self) -> None:
        url = well_known_url(self._issuer)
        try:
            document = await self._fetcher.get_json(url)
        except ProviderHTTPError as exc:
            raise DiscoveryFailed(f"the provider's metadata could not be read: {exc}") from None
        metadata = read_metadata(document, issuer=self._issuer, auth_method=self._auth_method)
        self._metadata, self._read_at = metadata, self._clock()
