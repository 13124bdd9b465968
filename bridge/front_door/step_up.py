"""Step-up: a PDP's `step-up` obligation (the AuthZEN obligations profile) carried out by
sending the person back to sign in, the way RFC 9470 (OAuth 2.0 Step Up Authentication
Challenge) has a client ask for a stronger authentication.

At /token (the code grant, and refreshes of what it issued): the person's sign-in meets the
obligation (its `acr` is the `acr_value`, its `amr` holds every `amr_values`) → honoured;
it does not, and a sign-in method of this bridge can reach it →
`insufficient_user_authentication` with `acr_values` (the client sends the person to
/authorize asking for it); no method can, or another grant → the obligation cannot be
complied with, and the decision is a denial.

At /authorize, `acr_values` (OpenID Connect Core §3.1.2.1, space-separated, by preference):
a session meeting none of them signs in again, offered only the methods that can reach one
(a local password when `LOCAL_PASSWORD_ACR` is listed; the organisation's provider, asked
for the `acr_values` and its ID token's `acr` checked on return). When none can, or the
provider answered with another `acr`: `unmet_authentication_requirements` to the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..authzen.obligations import STEP_UP, MalformedObligation, Obligation, StepUp, step_up_of
from ..errors import InvalidRequest, OAuthError
from ..oauth.clients import GRANT_AUTHORIZATION_CODE
from ..oauth.grants.refresh_token import GRANT_TYPE as GRANT_REFRESH_TOKEN
from ..oauth.obligations import BaseObligationHandler, CannotComply, Enforcement
from .person import Person

# What a local account's password sign-in is: the bridge's own name for it, and the
# method (RFC 8176 `pwd`). Policies asking for more send the person to the provider.
LOCAL_PASSWORD_ACR = "urn:authzen-bridge:acr:password"
LOCAL_PASSWORD_AMR = ("pwd",)
# Grants whose person can be sent to sign in again: a new authorization request gives the
# client a new code.
_RESUMABLE = frozenset({GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN})
_MAX_ACR_VALUES = 10
_MAX_ACR = 200


class InsufficientUserAuthentication(OAuthError):
    """RFC 9470 §3's error: the authentication behind the request does not meet what is
    required. The bridge answers it at the token endpoint when a step-up obligation asks
    more of the person's sign-in than it had; `acr_values` (§3) names what to ask for at
    the authorization endpoint (§4)."""

    error = "insufficient_user_authentication"

    def __init__(self, acr_value: str) -> None:
        super().__init__(
            "the policy asks for a stronger sign-in: send the person to the authorization "
            "endpoint with these acr_values"
        )
        self.acr_values = acr_value

    def body(self) -> dict[str, Any]:
        return {**super().body(), "acr_values": self.acr_values}


class UnmetAuthenticationRequirements(OAuthError):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0: the
    authorization server cannot authenticate the person as the client asked (here, with
    one of its `acr_values`)."""

    error = "unmet_authentication_requirements"


def read_acr_values(value: str | None) -> list[str]:
    """The `acr_values` parameter: space-separated, in order of preference."""
    if value is None:
        return []
    values = list(dict.fromkeys(value.split()))
    if not values:
        raise InvalidRequest("acr_values is empty")
    if len(values) > _MAX_ACR_VALUES or any(
        len(v) > _MAX_ACR or not v.isprintable() for v in values
    ):
        raise InvalidRequest("acr_values is not a short list of acr values")
    return values


def meets(person: Person, acr_values: Sequence[str]) -> bool:
    """Whether the person's sign-in is one the request asked for (any, when it named none)."""
    return not acr_values or person.acr in acr_values


def local_password_reaches(acr_values: Sequence[str]) -> bool:
    return not acr_values or LOCAL_PASSWORD_ACR in acr_values


def satisfied(authentication: Mapping[str, Any] | None, step_up: StepUp) -> bool:
    """The profile's step-up is met: the `acr_value` reached, with every `amr_values`."""
    found = authentication or {}
    amr = found.get("amr") or []
    return found.get("acr") == step_up.acr_value and set(step_up.amr_values) <= set(amr)


class StepUpHandler(BaseObligationHandler):
    """The `step-up` obligation at the token endpoint, installed by the front door."""

    obligation_type = STEP_UP

    def __init__(self, *, local_accounts: bool, upstream: bool) -> None:
        self._local_accounts = local_accounts
        self._upstream = upstream

    async def check(self, obligation: Obligation, enforcement: Enforcement) -> None:
        try:
            step_up = step_up_of(obligation)
        except MalformedObligation as malformed:
            raise CannotComply(str(malformed)) from None
        if satisfied(enforcement.principal.authentication, step_up):
            return
        if enforcement.grant_type not in _RESUMABLE:
            raise CannotComply(f"nobody can sign in again on a {enforcement.grant_type} grant")
        if not self._reachable(step_up):
            raise CannotComply(f"no sign-in method of this bridge gives {step_up.acr_value!r}")
        raise CannotComply(
            f"the sign-in is not {step_up.acr_value!r}",
            answer=InsufficientUserAuthentication(step_up.acr_value),
        )

    def _reachable(self, step_up: StepUp) -> bool:
        """A local password gives its own acr and `pwd`; the provider is asked for the acr
        (whether it gives it, and which `amr`, its ID token tells on return)."""
        local = (
            self._local_accounts
            and step_up.acr_value == LOCAL_PASSWORD_ACR
            and set(step_up.amr_values) <= set(LOCAL_PASSWORD_AMR)
        )
        return local or self._upstream
