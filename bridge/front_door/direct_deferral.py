"""Direct deferral at the authorization endpoint (DTR PR #47), as the front door sees it: an
extension point the deferral part fills (`deferral.direct.DirectDeferral`), so that the front
door knows nothing of deferral codes beyond the members it sends back.

At consent, when the deployment allows it (`front_door.direct_deferral`) and the client
opted in (`completion_mode=deferred` on its authorization request), the consent is handed to
the installed `AuthorizationDeferral`. When what was asked needs an approval it answers with
the deferral, and the client's redirect URI receives `deferral_code`, `state`, `expires_in`,
`interval` and `iss` instead of a `code`; otherwise it answers None and a code is issued as
usual (the deferral hint then holds at `/token`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .authorization_request import AuthorizationRequest
from .person import Person


@dataclass(frozen=True)
class DeferredAuthorization:
    deferral_code: str
    expires_in: int
    interval: int


class AuthorizationDeferral(Protocol):
    async def defer(
        self, asked: AuthorizationRequest, person: Person
    ) -> DeferredAuthorization | None:
        """The deferral instead of a code, for what `person` consented to; None when the
        request needs no approval, or cannot be deferred here (then a code is issued).
        Raises `OAuthError` to send an error back to the client, `PDPError` when no
        decision could be had."""
        ...
