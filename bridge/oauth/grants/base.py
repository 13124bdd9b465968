"""What every grant receives and returns, and the common shape of grants that name a
principal.

A grant is one module exporting a class with its `grant_type`, the form `parameters` it
reads and a `token()` handler; the token endpoint hands it only those parameters (plus client
authentication's and the extensions'), and has no special case for any grant. A grant whose
parameters would change an earlier request (a poll may not carry `scope`) lists them in
`refused`: the endpoint answers `invalid_request` when one is sent.

Most grants only say who the token is for (`PrincipalGrant.principal`); what that principal
may have is then asked of the PDP (`AccessDecision`), the same way for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ...authzen.models import Subject
from ..clients import Client
from ..dpop import DPoPProof
from ..form import Form

# What a token request may ask for (RFC 9396, RFC 6749 §3.3, RFC 8707): read by every grant
# whose access the PDP decides.
ACCESS_PARAMETERS = frozenset({"authorization_details", "scope", "resource"})


@dataclass(frozen=True)
class TokenRequest:
    form: Form  # the declared parameters only
    client: Client
    proof: DPoPProof | None


@dataclass(frozen=True)
class Principal:
    """Who the token acts as, and for whom it is decided.

    `subject` goes to the PDP (with `properties.act` when someone acts for the principal);
    `token_sub` and `act` become the access token's `sub` and `act` claims.
    """

    subject: Subject
    token_sub: str
    act: dict[str, Any] | None = None
    # What an earlier grant fixed (refresh): the request may keep or narrow it, never widen.
    granted_details: list[dict[str, Any]] | None = None
    granted_scope: list[str] | None = None
    granted_resource: list[str] | None = None
    refresh: RefreshContext | None = None
    # The refresh token family a first grant starts, when its grant must know it (a code's
    # second use revokes the family its first use started, RFC 6749 §4.1.2).
    family_id: str | None = None
    # How the subject authenticated (`acr`, `amr`, `auth_time`), where a token says so.
    authentication: dict[str, Any] | None = None
    # A token exchange's second party and presented tokens (and an ID-JAG's redemption).
    delegation: Delegation | None = None


@dataclass(frozen=True)
class Delegation:
    """What a token exchange (RFC 8693) adds to the question "may this principal have
    this?": a requesting party whose own authority is at stake, and the presented tokens
    (the AuthZEN token exchange binding, §4.2, §4.5). The redemption of an ID-JAG is one too:
    its requesting party is the client redeeming it (binding §5.3).

    `requesting_party` is the actor token's party, None for the client. `subject_claims`
    are the validated claims of the subject token the PDP may see, never the token itself.
    `expires_at` is when the subject token ends, which bounds what is issued from it
    (binding §10.2). `requested_token_type` None means an access token.
    """

    requesting_party: Subject | None = None
    subject_token_type: str | None = None
    actor_token_type: str | None = None
    subject_claims: dict[str, Any] = field(default_factory=dict)
    requested_token_type: str | None = None
    audience: tuple[str, ...] = ()
    expires_at: float | None = None


@dataclass(frozen=True)
class RefreshContext:
    token_hash: str
    family_id: str
    expires_at: float
    jkt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Grant(Protocol):
    @property
    def grant_type(self) -> str: ...

    @property
    def parameters(self) -> frozenset[str]: ...

    @property
    def refused(self) -> frozenset[str]: ...

    @property
    def extensible(self) -> bool:
        """Whether token endpoint extensions (DTR's `completion_mode`) ride on this grant."""
        ...

    async def token(self, request: TokenRequest) -> dict[str, Any]:
        """The token response body, or raise the `OAuthError` to answer."""
        ...


class Decider(Protocol):
    """What a principal may have (`AccessDecision`): decided, then issued or refused."""

    async def issue_for(
        self, request: TokenRequest, grant_type: str, principal: Principal
    ) -> dict[str, Any]: ...


class PrincipalGrant:
    """A grant that names a principal; the access is then decided for it.

    Subclasses set `grant_type` and `own_parameters`, and implement `principal`, e.g.

        class ClientCredentialsGrant(PrincipalGrant):
            grant_type = "client_credentials"

            async def principal(self, request: TokenRequest) -> Principal:
                return Principal(subject=..., token_sub=request.client.client_id)
    """

    grant_type: str
    own_parameters: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    extensible = True
    decider: Decider | None = None  # set by the OAuth assembly

    @property
    def parameters(self) -> frozenset[str]:
        return self.own_parameters | ACCESS_PARAMETERS

    async def principal(self, request: TokenRequest) -> Principal:
        raise NotImplementedError

    async def token(self, request: TokenRequest) -> dict[str, Any]:
        if self.decider is None:
            raise RuntimeError(f"{self.grant_type}: no access decision is wired in")
        principal = await self.principal(request)
        return await self.decider.issue_for(request, self.grant_type, principal)


def subject_with_actor(subject_type: str, subject_id: str, act: dict[str, Any] | None) -> Subject:
    """The AuthZEN subject; an actor goes in `properties.act` (AROP §2)."""
    return Subject(
        type=subject_type, id=subject_id, properties={"act": act} if act is not None else None
    )


# How the subject authenticated, as tokens say it (RFC 9068 §2.2.1), with the JSON type each
# must have to be passed on.
AUTHENTICATION_CLAIMS = {"acr": str, "amr": list, "auth_time": int}


def authentication_of(claims: dict[str, Any]) -> dict[str, Any] | None:
    """`acr`, `amr` and `auth_time` of a validated token, those of the right type."""
    found = {
        name: claims[name]
        for name, kind in AUTHENTICATION_CLAIMS.items()
        if isinstance(claims.get(name), kind) and not isinstance(claims.get(name), bool)
    }
    if "amr" in found and not all(isinstance(m, str) for m in found["amr"]):
        del found["amr"]
    return found or None
