"""`grant_type=authorization_code` (RFC 6749 §4.1.3, with RFC 7636 §4.6 and RFC 9449 §10).

code and code_verifier present → redeem the code once → the code's client and redirect URI
→ the PKCE verifier → the DPoP key the code was bound to → a deferral hint at /authorize is
repeated here (DTR §5.2) → the principal is the person who consented, the client acts for
them (AROP §2) → the PDP decides again, on what was consented (a requestable denial with
`completion_mode=deferred` becomes a Deferred Token Response, as for every grant) →
remember what was issued, so that a second use of the code revokes it.

RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server
MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based
on that authorization code."
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import Any

from ..errors import InvalidGrant, InvalidRequest
from ..oauth.clients import GRANT_AUTHORIZATION_CODE
from ..oauth.completion_mode import defers
from ..oauth.form import Form
from ..oauth.grants.base import Principal, PrincipalGrant, TokenRequest
from ..store.contract import Store
from .authorization_codes import code_hash
from .authorization_request import AuthorizationRequest
from .person import Person, subject_for
from .pkce import check_verifier

log = logging.getLogger("bridge.front_door.code")


class AuthorizationCodeGrant(PrincipalGrant):
    grant_type = GRANT_AUTHORIZATION_CODE
    own_parameters = frozenset({"code", "redirect_uri", "code_verifier"})
    # What the code carries is what was consented; a token request may not change it.
    refused = frozenset({"authorization_details", "scope", "resource"})
    # The token endpoint's extensions ride on it: DTR's `completion_mode`.
    extensible = True

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def parameters(self) -> frozenset[str]:
        return self.own_parameters

    async def token(self, request: TokenRequest) -> dict[str, Any]:
        if self.decider is None:
            raise RuntimeError("authorization_code: no access decision is wired in")
        form = request.form
        code = form.require("code")
        # Both required before the code is spent: a malformed request costs the client
        # nothing (OAuth 2.1 §4.1.3 makes code_verifier mandatory).
        verifier = form.require("code_verifier")
        redirect_uri = form.require("redirect_uri")
        hashed = code_hash(code)
        now = time.time()
        used = await self._store.use_authorization_code(hashed, now)
        if used is None:
            raise InvalidGrant("the authorization code is not valid")
        record, use = used
        if use == "again":
            await self._revoke_first_use(record.refresh_family_id, record)
            raise InvalidGrant("the authorization code is not valid")
        grant = json.loads(record.grant)
        asked = AuthorizationRequest.from_json(grant["request"])
        person = Person.from_json(grant["person"])
        if record.client_id != request.client.client_id:
            raise InvalidGrant("the authorization code is not valid")
        if redirect_uri != asked.redirect_uri:
            raise InvalidGrant("redirect_uri is not the one of the authorization request")
        check_verifier(verifier, asked.code_challenge)
        if asked.dpop_jkt is not None and (
            request.proof is None or request.proof.jkt != asked.dpop_jkt
        ):
            raise InvalidGrant("the code is bound to another DPoP key (dpop_jkt)")
        if asked.deferral_hint and not defers(form.get("completion_mode")):
            # DTR §5.2: "the AS MUST reject the token request with invalid_request".
            raise InvalidRequest(
                "the authorization request said completion_mode=deferred: say it here too"
            )
        family = secrets.token_urlsafe(16)
        principal = Principal(
            subject=subject_for(person, record.client_id),
            token_sub=person.name,
            family_id=family,
            # How they signed in: what a step-up obligation is checked against (step_up).
            authentication=person.authentication() or None,
        )
        # What was consented, with what the extensions read of this request (completion_mode).
        consented = TokenRequest(
            Form(consented_access(asked) + form.pairs(without=self.own_parameters)),
            request.client,
            request.proof,
        )
        body = await self.decider.issue_for(consented, self.grant_type, principal)
        jti, exp = _jti_and_expiry(body["access_token"])
        recorded = await self._store.record_code_tokens(
            hashed,
            refresh_family_id=family if "refresh_token" in body else None,
            access_token_jti=jti,
            access_token_expires_at=exp,
        )
        if not recorded:
            # The code came back while this redemption was issuing: nothing it issued lives.
            await self._store.revoke_refresh_family(family, time.time())
            await self._store.revoke_access_token(jti, exp)
            raise InvalidGrant("the authorization code is not valid")
        return body

    async def _revoke_first_use(self, family: str | None, record: Any) -> None:
        log.warning("authorization code of client %s used again: revoking", record.client_id)
        if family is not None:
            await self._store.revoke_refresh_family(family, time.time())
        if record.access_token_jti is not None and record.access_token_expires_at is not None:
            await self._store.revoke_access_token(
                record.access_token_jti, record.access_token_expires_at
            )


def consented_access(asked: AuthorizationRequest) -> list[tuple[str, str]]:
    """What was consented, as the access parameters (form pairs) the decision reads."""
    pairs: list[tuple[str, str]] = []
    if asked.authorization_details:
        pairs.append(("authorization_details", json.dumps(asked.authorization_details)))
    if asked.scope:
        pairs.append(("scope", " ".join(asked.scope)))
    pairs += [("resource", value) for value in asked.resource]
    return pairs


def _jti_and_expiry(token: str) -> tuple[str, float]:
    """Of a token this bridge has just minted (so no verification is needed)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"]), float(claims["exp"])
