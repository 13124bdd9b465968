"""The OpenID AuthZEN token issuance profile as the bridge's mapping (`pdp.mapping =
"token_issuance"`), with its token exchange binding.

plan: who the token represents (the subject; for a token exchange also the requesting
party, the actor token's or else the client, binding §4.2) → the gate action
`issue:<token-type>:<grant-type>` (§5.3.1) → the requested targets (`resource`, a token
exchange's `audience`; else the AS's default audience: the origins of the requested
locations, else the issuer, as a token's `aud` always was) → the context keys (§5.4:
`client_id`, `acr`, `amr`, `auth_time`, `cnf`, `jti`; binding §4.5: `subject_token_type`,
`actor_token_type`, `subject_token`, `act`, `may_act`) → the tuples (`rar.token_issuance`),
bounded (§5.5.3). An ID-JAG is asked on two levels (binding §4.4.1): its authorization
server, then the RFC 8707 resources behind it.

grant: each permitted item's `context.issuance` read (`issuance_shaping`) → a lifetime of
0 is a denial, an empty `audience` withdraws its target → the narrowing (§5.5.4 to §5.5.6) →
the errors (§8; binding §7): a token exchange whose gate is denied → `invalid_request`,
whichever party's it was; a two-level evaluation denied at level 1 → `invalid_target`; no
target left → `invalid_target`; no scope left of those asked → `invalid_scope`; no entry
left → `invalid_authorization_details` → the shaping combined: `granted_scope`, returned
`authorization_details` (checked, intersected), claims and `crit`, the smallest lifetime,
capped by the subject token's end (binding §10.2).

Descriptions are the bridge's words: a PDP's reasons never reach the client (§8), and
which of an exchange's gates was denied only reaches the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..authzen.models import Decision, Subject
from ..errors import InvalidRequest, InvalidScope, OAuthError, ServerError
from ..randomness import token_urlsafe
from ..rar.errors import InvalidAuthorizationDetails
from ..rar.profiles import ProfileSet
from ..rar.token_issuance import (
    IssuanceQuestion,
    TooManyEvaluations,
    check_returned_details,
    form_batch,
    gate_action,
    gate_token_type,
    grant_short_name,
    narrow,
    token_type_short_name,
)
from ..rar.translate import PlannedEvaluation
from .errors import InvalidTarget
from .grants.token_exchange import ACCESS_TOKEN_TYPE, ID_JAG_TOKEN_TYPE
from .issuance import audience
from .issuance_shaping import (
    ItemIssuance,
    Shaping,
    TokenShape,
    UnusableIssuance,
    carried_claims,
    combine,
    read_issuance,
)
from .pdp_mapping import AskedToken, Granted, Hints

log = logging.getLogger("bridge.oauth.issuance")

# The subject token's claims a PDP is shown (binding §4.5: validated claims only, never the
# token, and only what policies use); `act` and `may_act` have context keys of their own.
SUBJECT_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "acr", "amr", "auth_time")

_TOO_MANY: dict[str, type[OAuthError]] = {
    "resource": InvalidTarget,
    "scope": InvalidScope,
    "authorization_details": InvalidAuthorizationDetails,
}


class TokenIssuanceMapping:
    name = "token_issuance"
    lone_evaluation = True
    allows_no_access = True

    def __init__(
        self,
        profiles: ProfileSet,
        *,
        issuer: str,
        client_subject_type: str,
        max_evaluations: int,
        token_claims: frozenset[str] = frozenset(),
    ) -> None:
        self._profiles = profiles
        self._issuer = issuer
        self._client_subject_type = client_subject_type
        self._max_evaluations = max_evaluations
        self._token_claims = token_claims

    # -- the request (§5) -----------------------------------------------------------------

    def plan(self, asked: AskedToken) -> list[PlannedEvaluation]:
        access = asked.access
        try:
            return form_batch(
                self.question(asked),
                access.details,
                access.scope,
                self._profiles,
                max_evaluations=self._max_evaluations,
            )
        except TooManyEvaluations as exc:
            # §5.5.3: the error of the parameter that overran the bound.
            raise _TOO_MANY[exc.parameter](str(exc)) from None

    def question(self, asked: AskedToken) -> IssuanceQuestion:
        principal, access = asked.principal, asked.access
        delegation = principal.delegation
        token_type = (delegation.requested_token_type if delegation else None) or (
            ACCESS_TOKEN_TYPE
        )
        try:
            action = gate_action(
                token_type_short_name(token_type), grant_short_name(asked.grant_type)
            )
        except KeyError:
            raise ServerError(f"{asked.grant_type} has no name for a gate") from None
        targets: tuple[str, ...] = tuple(access.resource)
        resources: tuple[str, ...] = ()
        if delegation is not None and _two_level(asked):
            # Binding §4.4.1: the grant's own audience first, the resources behind it second.
            targets, resources = delegation.audience, tuple(access.resource)
        elif delegation is not None:
            targets = tuple(dict.fromkeys((*delegation.audience, *access.resource)))
        if not targets:
            targets = tuple(audience([], access.details, self._issuer))
        requesting_party = None
        if delegation is not None:
            requesting_party = delegation.requesting_party or Subject(
                type=self._client_subject_type, id=asked.client.client_id
            )
        return IssuanceQuestion(
            subject=principal.subject,
            gate_action=action,
            targets=targets,
            context=self._context(asked),
            requesting_party=requesting_party,
            resources=resources,
        )

    def _context(self, asked: AskedToken) -> dict[str, Any]:
        context: dict[str, Any] = {"client_id": asked.client.client_id}
        context.update(asked.principal.authentication or {})
        if asked.jkt is not None:
            context["cnf"] = {"jkt": asked.jkt}
        # §5.4.1: the `jti` of the token to be minted, so the PDP's log and the token join.
        context["jti"] = token_urlsafe(16)
        delegation = asked.principal.delegation
        if delegation is not None:
            claims = delegation.subject_claims
            for key, value in (
                ("subject_token_type", delegation.subject_token_type),
                ("actor_token_type", delegation.actor_token_type),
            ):
                if value is not None:
                    context[key] = value
            context["subject_token"] = {
                name: claims[name] for name in SUBJECT_TOKEN_CLAIMS if name in claims
            }
            for name in ("act", "may_act"):
                if isinstance(claims.get(name), dict):
                    context[name] = claims[name]
        return context

    # -- the decisions (§5.5, §6, §8) --------------------------------------------------------

    def grant(
        self,
        asked: AskedToken,
        planned: Sequence[PlannedEvaluation],
        decisions: Sequence[Decision],
        hints: Hints,
    ) -> Granted:
        access, delegation = asked.access, asked.principal.delegation
        items = [read_issuance(p.request, d) for p, d in zip(planned, decisions, strict=True)]
        permitted = [
            d.decision and not (i is not None and i.denies)
            for d, i in zip(decisions, items, strict=True)
        ]
        withdrawn = frozenset(
            p.target or ""
            for p, i in zip(planned, items, strict=True)
            if i is not None and i.withdraws and p.source != "authorization_details"
        )
        for n, (p, i) in enumerate(zip(planned, items, strict=True)):
            if i is not None and i.withdraws and p.source == "authorization_details":
                permitted[n] = False  # a cell's own location withheld
        two_level = _two_level(asked)
        narrowed = narrow(
            access.details, access.scope, planned, permitted, withdrawn, two_level=two_level
        )
        words = _hints(decisions, hints)
        if narrowed.level_one_denied:
            _log_gates(planned, permitted)
            raise InvalidTarget(_said("the grant cannot be issued for this audience", words))
        if delegation is not None and narrowed.gate_denied:
            # Binding §7: never which gate, the subject's or the requesting party's.
            _log_gates(planned, permitted)
            raise InvalidRequest(_said("the token exchange is not permitted", words))
        if not narrowed.targets:
            raise InvalidTarget(_said("no requested target is permitted", words))
        counted = [
            item
            for item, ok, reaching in zip(items, permitted, narrowed.reaching, strict=True)
            if ok and reaching and item is not None
        ]
        shaping = combine(counted)
        scope = self._scope(asked, narrowed.scopes, shaping)
        if access.scope and not scope:
            raise InvalidScope(_said("no requested scope is permitted", words))
        details = narrowed.details
        if shaping.authorization_details is not None:
            at = list(access.resource) if two_level else narrowed.targets
            checked = check_returned_details(
                shaping.authorization_details, access.details, at, narrowed.cells, self._profiles
            )
            if checked is None:
                raise UnusableIssuance("authorization_details is not narrower than the request")
            details = checked
        if access.details and not details:
            raise InvalidAuthorizationDetails(
                _said("no requested authorization_details entry is permitted", words)
            )
        resource = (
            list(access.resource)
            if two_level
            else [r for r in access.resource if r in narrowed.targets]
        )
        jti = (planned[0].request.context or {}).get("jti")
        return Granted(
            details,
            scope,
            resource,
            TokenShape(
                audience=tuple(narrowed.targets),
                token_lifetime=shaping.token_lifetime,
                claims=carried_claims(shaping, self._token_claims),
                jti=jti if isinstance(jti, str) else None,
                expires_at=delegation.expires_at if delegation is not None else None,
                token_type=gate_token_type(planned[0].action),
            ),
        )

    def _scope(self, asked: AskedToken, surviving: list[str], shaping: Shaping) -> list[str]:
        """§6.4.1: `granted_scope` narrows what would be granted: the surviving scopes, or,
        for a request naming none, the client's registered scopes (the bridge's default
        set). Without it a request naming none gets none: what no PDP named is not
        granted."""
        if shaping.granted_scope is None:
            return surviving
        would = asked.access.scope or list(asked.client.scopes)
        if not shaping.granted_scope <= set(would):
            raise UnusableIssuance("granted_scope names a scope that would not be granted")
        base = surviving if asked.access.scope else would
        return [value for value in base if value in shaping.granted_scope]


def _two_level(asked: AskedToken) -> bool:
    """An ID-JAG naming RFC 8707 resources: its own audience is one level, the resources
    behind it another (binding §4.4.1); without resources there is one level."""
    delegation = asked.principal.delegation
    return (
        delegation is not None
        and delegation.requested_token_type == ID_JAG_TOKEN_TYPE
        and bool(asked.access.resource)
    )


def _hints(decisions: Sequence[Decision], hints: Hints) -> list[str]:
    said: dict[str, None] = {}
    for decision in decisions:
        if not decision.decision:
            said.update(dict.fromkeys(hints(decision)))
    return list(said)


def _said(text: str, hints: list[str]) -> str:
    return "; ".join([text, *hints])


def _log_gates(planned: Sequence[PlannedEvaluation], permitted: Sequence[bool]) -> None:
    """For the operator, which party's gate was denied (binding §7)."""
    for item, ok in zip(planned, permitted, strict=True):
        if item.source == "gate" and not ok:
            subject = item.request.subject
            log.info(
                "gate %s denied for %s %s at %s", item.action, subject.type, subject.id, item.target
            )


__all__ = ["ItemIssuance", "TokenIssuanceMapping"]
