"""`binding_token`: the signed, self-contained denial binding (ARAP §3).

The bridge's PDP and its access request service share a database, but the PDP keeps no
record of its denials (a denial must stay a cheap read-only answer). Each requestable denial
instead carries a compact JWS, signed with the bridge's active signing key, that states what
was denied as a `binding_hash` (§5) over the subject, resource, action and the
`binding_context_members` it names. The service recomputes the hash from the submission.

`typ` is `arap-binding+jwt`, so a binding token is never mistaken for an access token (and
the other way round), although both are signed with the same keys and listed in `/jwks`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from ..jose.compact import parse_compact
from ..jose.signing_keys import SigningKeys
from .binding import CanonicalizationError
from .problems import ExpiredDenial, InvalidDenialBinding
from .times import parse_rfc3339, rfc3339

TYP = "arap-binding+jwt"
# Clock skew tolerated on the denial's deadline (ARAP §3: typically 30 s, never above 60 s).
SKEW_SECONDS = 30


@dataclass(frozen=True, slots=True)
class DenialBinding:
    """A verified binding token: the denial the submission may rely on."""

    jti: str
    pdp: str  # the store (PDP identifier) whose policies denied
    template: str
    evaluation_id: str
    reason: str
    binding_hash: str
    members: list[str]
    deadline: float  # the earlier of `exp` and `denial_expires_at`


class BindingTokens:
    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience  # the access request endpoint
        self._clock = clock

    async def issue(
        self,
        *,
        pdp: str,
        template: str,
        evaluation_id: str,
        binding_hash: str,
        members: Sequence[str],
        issued_at: int,
        expires_at: int,
    ) -> str:
        signing = await self._keys.active()
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued_at,
            "exp": expires_at,
            "jti": secrets.token_urlsafe(16),
            "evaluation_id": evaluation_id,
            "denial_expires_at": rfc3339(expires_at),
            "binding_context_members": list(members),
            "binding_hash": binding_hash,
            "template": template,
            "reason": "approval_required",
            "pdp": pdp,
        }
        header = {"typ": TYP, "alg": signing.alg, "kid": signing.kid}
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return jws.serialize_compact(header, payload, signing.key, algorithms=[signing.alg])

    async def verify(
        self,
        token: object,
        echoed_expires_at: object,
        recompute: Callable[[Sequence[str]], str],
    ) -> DenialBinding:
        """ARAP §3 steps: signature and key, `iss` and `aud`, the binding itself (`recompute`
        gives the submission's hash over the token's members), then freshness."""
        claims = await self._claims(token)
        binding = _binding(claims)
        echoed = parse_rfc3339(echoed_expires_at)
        denial_expires_at = parse_rfc3339(claims.get("denial_expires_at"))
        if echoed is None or denial_expires_at is None or echoed != denial_expires_at:
            raise InvalidDenialBinding("denial.expires_at is not the one the denial gave")
        try:
            matches = recompute(binding.members) == binding.binding_hash
        except CanonicalizationError:
            matches = False
        if not matches:
            raise InvalidDenialBinding("the submission does not match the denial it echoes")
        if self._clock() > binding.deadline + SKEW_SECONDS:
            raise ExpiredDenial("the denial can no longer be submitted")
        return binding

    async def _claims(self, token: object) -> dict[str, Any]:
        unverifiable = InvalidDenialBinding("the binding_token does not verify")
        if not isinstance(token, str):
            raise InvalidDenialBinding("denial.binding_token must be a string")
        try:
            header = parse_compact(token).header
        except (JoseError, ValueError, UnicodeError):
            raise unverifiable from None
        kid = header.get("kid")
        if header.get("typ") != TYP or not isinstance(kid, str):
            raise unverifiable
        signing = await self._keys.verification_key(kid)
        if signing is None or header.get("alg") != signing.alg:
            raise unverifiable
        try:
            claims = dict(jwt.decode(token, signing.key, algorithms=[signing.alg]).claims)
        except (JoseError, ValueError):
            raise unverifiable from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self._issuer or self._audience not in audiences:
            raise InvalidDenialBinding("the binding_token was issued for another service")
        return claims


def _binding(claims: dict[str, Any]) -> DenialBinding:
    members = claims.get("binding_context_members")
    exp = claims.get("exp")
    denial_expires_at = parse_rfc3339(claims.get("denial_expires_at"))
    strings = ("jti", "pdp", "template", "evaluation_id", "binding_hash")
    if (
        not all(isinstance(claims.get(name), str) for name in strings)
        or not isinstance(members, list)
        or not all(isinstance(m, str) for m in members)
        or not isinstance(exp, int)
        or denial_expires_at is None
    ):
        raise InvalidDenialBinding("the binding_token lacks a required claim")
    reason = claims.get("reason")
    return DenialBinding(
        jti=claims["jti"],
        pdp=claims["pdp"],
        template=claims["template"],
        evaluation_id=claims["evaluation_id"],
        reason=reason if isinstance(reason, str) else "approval_required",
        binding_hash=claims["binding_hash"],
        members=members,
        deadline=min(float(exp), denial_expires_at),
    )
