"""What the front door adds to the authorization server metadata (RFC 8414), as an OAuth
extension so that `/.well-known/oauth-authorization-server` stays one document."""

from __future__ import annotations

from typing import Any

from ..oauth.extensions import NoExtension

AUTHORIZE_PATH = "/authorize"
PAR_PATH = "/par"


class FrontDoorMetadata(NoExtension):
    def __init__(
        self, issuer: str, require_pushed_requests: bool, *, direct_deferral: bool = False
    ) -> None:
        self._issuer = issuer
        self._require_pushed = require_pushed_requests
        self._direct_deferral = direct_deferral

    def metadata(self) -> dict[str, Any]:
        members: dict[str, Any] = {
            "authorization_endpoint": self._issuer + AUTHORIZE_PATH,
            "pushed_authorization_request_endpoint": self._issuer + PAR_PATH,
            "require_pushed_authorization_requests": self._require_pushed,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self._direct_deferral:
            # DTR PR #47 (its default is false): a `deferral_code` may come back instead of
            # a `code`.
            members["deferred_authorization_endpoint_supported"] = True
        return members
