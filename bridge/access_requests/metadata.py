"""What a store's AuthZEN metadata says about access requests (ARAP §1)."""

from __future__ import annotations

CAPABILITY = "urn:openid:authzen:capability:access-request"


def with_access_requests(
    metadata: dict[str, object], *, endpoint: str, jwks_uri: str
) -> dict[str, object]:
    """`metadata` plus `access_request_endpoint`, `jwks_uri` (where binding tokens and
    callback tokens are verified) and the access-request capability."""
    capabilities = metadata.get("capabilities")
    listed = list(capabilities) if isinstance(capabilities, list) else []
    if CAPABILITY not in listed:
        listed.append(CAPABILITY)
    return {
        **metadata,
        "access_request_endpoint": endpoint,
        "jwks_uri": jwks_uri,
        "capabilities": listed,
    }
