"""What a token request asks for: `authorization_details` (RFC 9396), `scope` and RFC 8707
`resource` indicators — read, checked against the client and, on refresh, against what was
granted before (a refresh may keep or narrow, never widen)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidRequest, InvalidScope
from ..grammar import is_scope_token, is_uri
from ..rar.authorization_details import parse_authorization_details
from ..rar.errors import InvalidAuthorizationDetails
from ..rar.narrowing import is_narrowing
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation, TokenRequestContext, plan_evaluations
from .clients import Client
from .errors import InvalidTarget
from .form import Form
from .grants.base import Principal


@dataclass(frozen=True)
class RequestedAccess:
    details: list[dict[str, Any]]
    scope: list[str]
    resource: list[str]
    profiles: ProfileSet
    # locations times actions multiply: one request may not ask for more than a batch holds.
    max_evaluations: int

    def plan(
        self, principal: Principal, client: Client, *, jkt: str | None = None
    ) -> list[PlannedEvaluation]:
        """The evaluations to ask for; `jkt` is the DPoP key the token will be bound to (the
        proof's, or an authorization request's `dpop_jkt`)."""
        context = TokenRequestContext(
            subject=principal.subject,
            client_id=client.client_id,
            dpop_jkt=jkt,
            resource=self.resource,
        )
        return plan_evaluations(
            self.details, self.scope, context, self.profiles, max_evaluations=self.max_evaluations
        )


def read_requested_access(
    form: Form,
    client: Client,
    principal: Principal,
    profiles: ProfileSet,
    *,
    max_entries: int,
    max_evaluations: int,
    allow_none: bool = False,
) -> RequestedAccess:
    return read_asked_access(
        form,
        client,
        profiles,
        max_entries=max_entries,
        max_evaluations=max_evaluations,
        principal=principal,
        allow_none=allow_none,
    )


def read_asked_access(
    form: Form,
    client: Client,
    profiles: ProfileSet,
    *,
    max_entries: int,
    max_evaluations: int,
    principal: Principal | None = None,
    allow_none: bool = False,
) -> RequestedAccess:
    """What is asked for, checked against the client (and, on refresh, against what the
    principal was granted). Also read by the authorization endpoint, before anyone is
    signed in: the same rules at `/authorize`, `/par` and `/token` (RFC 9396 §3).
    `allow_none`: a request may ask for neither (the token issuance mapping's gate alone
    decides it)."""
    raw_details = form.get("authorization_details")
    details = (
        parse_authorization_details(
            raw_details,
            profiles,
            allowed_types=frozenset(client.authorization_details_types),
            max_entries=max_entries,
        )
        if raw_details is not None
        else []
    )
    raw_scope = form.get("scope")
    # Tokens separated by spaces (extra spaces tolerated); a tab or line break is no separator.
    tokens = [t for t in raw_scope.split(" ") if t] if raw_scope is not None else []
    scope = list(dict.fromkeys(tokens))
    for value in scope:
        if not is_scope_token(value):
            # RFC 6749 §3.3: tokens of printable ASCII, separated by single spaces.
            raise InvalidScope(f"scope {value!r} is not a scope token")
        if value not in client.scopes:
            raise InvalidScope(f"scope {value} is not allowed for this client")
    resource = [_resource_indicator(value) for value in form.all("resource")]

    if principal is not None and principal.refresh is not None:
        granted = principal.granted_details or []
        if raw_details is None:
            details = granted
        elif not is_narrowing(details, granted):
            raise InvalidAuthorizationDetails("a refresh cannot ask for more than was granted")
        granted_scope = principal.granted_scope or []
        if raw_scope is None:
            scope = granted_scope
        elif not set(scope) <= set(granted_scope):
            raise InvalidScope("a refresh cannot ask for more scope than was granted")
        granted_resource = principal.granted_resource or []
        if not resource:
            resource = granted_resource
        elif not set(resource) <= set(granted_resource):
            raise InvalidTarget("a refresh cannot ask for other resources than were granted")

    if not details and not scope and not allow_none:
        raise InvalidRequest("authorization_details or scope is required")
    return RequestedAccess(details, scope, resource, profiles, max_evaluations)


def _resource_indicator(value: str) -> str:
    """RFC 8707 §2: an absolute URI without a fragment."""
    parts = urlsplit(value)
    if not is_uri(value) or not parts.netloc or parts.fragment or "#" in value:
        raise InvalidTarget(f"resource {value!r} is not an absolute URI without a fragment")
    return value
