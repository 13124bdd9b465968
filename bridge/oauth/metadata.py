"""RFC 8414 authorization server metadata, built from configuration (never from request
headers) so a proxy in front cannot change what clients are told."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..jose.signing_keys import JWKS_PATH
from ..settings import Settings
from .client_auth import ASSERTION_ALGORITHMS
from .extensions import TokenExtension

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
REVOCABLE = ["access_token", "refresh_token"]

TOKEN_PATH = "/token"
INTROSPECTION_PATH = "/introspect"
REVOCATION_PATH = "/revoke"
METADATA_PATH = "/.well-known/oauth-authorization-server"


def authorization_server_metadata(
    settings: Settings,
    rar_types: list[str],
    scopes: list[str],
    grant_types: Iterable[str],
    extensions: Sequence[TokenExtension],
) -> dict[str, Any]:
    issuer = settings.issuer
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        # No authorization endpoint: every grant served here is a direct token request.
        "response_types_supported": [],
        "grant_types_supported": list(grant_types),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        # Introspection shows what tokens carry: only confidential clients may ask.
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "authorization_details_types_supported": rar_types,
        "scopes_supported": scopes,
        "dpop_signing_alg_values_supported": settings.oauth.dpop.algorithms,
        "revocation_endpoint_token_type_values_supported": [
            *REVOCABLE,
            *(t for e in extensions for t in e.revocable_token_types()),
        ],
    }
    for extension in extensions:
        metadata.update(extension.metadata())
    return metadata
