"""Transmitter Configuration Metadata (SSF 1.0 §7.1), served at
`/.well-known/ssf-configuration` (and, for an issuer with a path, at that path after it,
§7.2): the issuer its SETs carry, its keys, the delivery methods, the management endpoints,
how receivers authenticate and what a new stream carries by default.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..jose.signing_keys import JWKS_PATH
from ..settings import Settings
from .streams import POLL, PUSH

WELL_KNOWN = "/.well-known/ssf-configuration"


def well_known_paths(issuer: str) -> list[str]:
    """Where the metadata is served: the well-known path, and with the issuer's path."""
    path = urlsplit(issuer).path.rstrip("/")
    return [WELL_KNOWN] + ([WELL_KNOWN + path] if path else [])


def metadata(settings: Settings) -> dict[str, Any]:
    base = settings.server.public_url.rstrip("/") + "/ssf"
    return {
        "spec_version": "1_0",
        "issuer": settings.issuer,
        "jwks_uri": settings.issuer + JWKS_PATH,
        "delivery_methods_supported": [PUSH, POLL],
        "configuration_endpoint": base + "/streams",
        "status_endpoint": base + "/status",
        "add_subject_endpoint": base + "/subjects:add",
        "remove_subject_endpoint": base + "/subjects:remove",
        "verification_endpoint": base + "/verify",
        # Bearer JWTs of a trusted issuer (RFC 6750), with the management API's audience.
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": settings.events.transmitter.default_subjects,
    }
