"""The authorization request (RFC 6749 §4.1.1, with RFC 7636, RFC 9396, RFC 8707,
RFC 9449 §10 and RFC 9470 §4's `acr_values`), read and checked once, the same way at
`/authorize` and at `/par`.

Two steps, because they fail differently (§4.1.2.1): `redirect_target` finds the client and
the exact registered redirect URI — failing, nobody is redirected; `read_authorization_request`
checks the rest — failing, the error goes to that redirect URI.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidRequest, UnauthorizedClient, UnsupportedResponseType
from ..oauth.clients import GRANT_AUTHORIZATION_CODE, Client, ClientRegistry
from ..oauth.completion_mode import defers
from ..oauth.form import Form
from ..oauth.requested_access import read_asked_access
from ..rar.profiles import ProfileSet
from .errors import NotRedirectable, RequestNotSupported
from .pkce import check_challenge
from .step_up import read_acr_values

RESPONSE_MODES = ("query", "form_post")
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url SHA-256 JWK thumbprint (RFC 7638)
_MAX_STATE = 1024


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    code_challenge: str
    response_mode: str = "query"
    state: str | None = None
    scope: list[str] = field(default_factory=list)
    authorization_details: list[dict[str, Any]] = field(default_factory=list)
    resource: list[str] = field(default_factory=list)
    dpop_jkt: str | None = None
    # DTR §5.2: `completion_mode=deferred` rode on the request as a hint; the token request
    # must then say it too. With direct deferral on, it is also the client's opt-in to a
    # deferral code in the authorization response (DTR PR #47).
    deferral_hint: bool = False
    # RFC 9470 §4 (OpenID Connect Core §3.1.2.1): the sign-ins the client asks for, after a
    # step-up refused its token (`step_up`).
    acr_values: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(**data)


def redirect_target(form: Form, registry: ClientRegistry) -> tuple[Client, str]:
    """The client and the redirect URI its request names, registered exactly (RFC 9700
    §4.1.3: exact string matching; no pattern, no prefix, no default)."""
    client_id = form.get("client_id")
    if client_id is None:
        raise NotRedirectable("The request names no client (client_id is missing).")
    client = registry.get(client_id)
    if client is None or not client.enabled:
        raise NotRedirectable("The application that sent you here is not known to the bridge.")
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is None:
        raise NotRedirectable("The request names no redirect_uri.")
    if redirect_uri not in client.redirect_uris:
        raise NotRedirectable(
            "The address the application asked to return you to is not registered for it."
        )
    return client, redirect_uri


def response_mode_for_errors(form: Form) -> str:
    """The mode an error goes back with: the requested one when it is one we serve."""
    mode = form.get("response_mode")
    return mode if mode in RESPONSE_MODES else "query"


def read_authorization_request(
    form: Form,
    client: Client,
    redirect_uri: str,
    profiles: ProfileSet,
    *,
    max_entries: int,
    max_evaluations: int,
) -> AuthorizationRequest:
    """Every check after the redirect URI is trusted; raises the `OAuthError` to redirect."""
    response_type = form.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        # OAuth 2.1 keeps only the code flow: no implicit, no hybrid.
        raise UnsupportedResponseType(f"response_type {response_type} is not supported")
    mode = form.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        raise InvalidRequest(f"response_mode {mode} is not supported")
    if "request" in form:
        raise RequestNotSupported("request objects are not supported; push the request to /par")
    if not client.allows_grant(GRANT_AUTHORIZATION_CODE):
        raise UnauthorizedClient("the client may not use the authorization code grant")
    state = form.get("state")
    if state is not None and len(state) > _MAX_STATE:
        raise InvalidRequest(f"state is longer than {_MAX_STATE} characters")
    challenge = check_challenge(form.get("code_challenge"), form.get("code_challenge_method"))
    access = read_asked_access(
        form, client, profiles, max_entries=max_entries, max_evaluations=max_evaluations
    )
    dpop_jkt = form.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT.match(dpop_jkt):
        raise InvalidRequest("dpop_jkt is not a base64url SHA-256 JWK thumbprint")
    acr_values = read_acr_values(form.get("acr_values"))
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        response_mode=mode,
        state=state,
        scope=access.scope,
        authorization_details=access.details,
        resource=access.resource,
        dpop_jkt=dpop_jkt,
        deferral_hint=defers(form.get("completion_mode")),
        acr_values=acr_values,
    )
