"""Continuous evaluation at introspection (RFC 7662): checks installed into the OAuth part
(`oauth.introspection_checks`), asked after the token's signature, expiry and revocation.

- `RevokedSessions` (with `[[events.transmitters]]`): a token whose subject's session was
  revoked by an event (`subject_revocation`) and that was issued (`iat`) until then is
  inactive.
- `ApprovalsStand` (with `oauth.introspection_reevaluates`): a token issued under approvals
  is inactive once one of them is revoked or has ended.
- `PolicyStillPermits` (with `oauth.introspection_reevaluates`): the token's access is asked
  of the PDP again, as the token endpoint asked it: its `authorization_details`, `scope` and
  resources planned through the deployment's mapping (`pdp.mapping`) for its `sub` (of
  `oauth.client_subject_type` when it is its `client_id` with no `act`, else of
  `oauth.introspection_subject_type`), `act`, `client_id` and DPoP key, with the approvals it
  was issued under in `context.approval`. The token issuance mapping's gate (which decided
  the grant, over by now) is not asked again. Any denial, or a question that cannot be asked
  any more (the client is gone), makes the token inactive for good: its `jti` is revoked, the
  audit trail records `token_deactivated`, and the transmitter sends CAEP
  `token-claims-change` with what the policies still permit. A PDP that gives no answer
  makes the token inactive for that introspection only.

An answer is reused for `oauth.introspection_cache_seconds`, and only while the policy
store's version (`policy_version`, a digest of its files) stays the one it was given under:
a policy edit is seen at the next introspection. A remote PDP says no version: its answers
are reused for the time alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..authzen.errors import PDPError
from ..authzen.models import Decision
from ..authzen.pdp import PDP, policy_version
from ..errors import OAuthError
from ..oauth.access_decision import AccessDecision
from ..oauth.clients import ClientRegistry
from ..oauth.form import Form
from ..oauth.grants.base import Principal, subject_with_actor
from ..oauth.grants.client_credentials import GRANT_TYPE as CLIENT_CREDENTIALS
from ..oauth.grants.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from ..oauth.issuance import audience
from ..oauth.pdp_mapping import AskedToken
from ..oauth.requested_access import read_asked_access
from ..rar.profiles import ProfileSet
from ..rar.translate import PlannedEvaluation
from ..settings import Settings
from ..store.contract import ApprovalRecord, AuditStore, ReplayCache, RevocationStore
from ..store.contract.events import SubjectStore
from . import event_audit

log = logging.getLogger("bridge.events")

MAX_CACHED = 10_000
DEACTIVATED = "ssf-token-deactivated"


class RevokedSessions:
    def __init__(self, store: SubjectStore) -> None:
        self._store = store

    async def active(self, claims: dict[str, Any]) -> bool:
        until = await self._store.subject_revoked_until(str(claims.get("sub")))
        iat = claims.get("iat")
        return until is None or (isinstance(iat, int | float) and iat > until)


class ApprovalsStand:
    def __init__(self, store: SubjectStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def active(self, claims: dict[str, Any]) -> bool:
        now = self._clock()
        approvals = await self._store.approvals_of_token(str(claims.get("jti")))
        return all(a.revoked_at is None and a.approved_until > now for a in approvals)


class Store(SubjectStore, RevocationStore, ReplayCache, AuditStore, Protocol):
    """The approvals of a token, its revocation, and the audit of it."""


class PolicyStillPermits:
    def __init__(
        self,
        settings: Settings,
        decision: AccessDecision,
        registry: ClientRegistry,
        profiles: ProfileSet,
        pdp: PDP,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._decision = decision
        self._registry = registry
        self._profiles = profiles
        self._pdp = pdp
        self._store = store
        self._clock = clock
        self._ttl = settings.oauth.introspection_cache_seconds
        self._cache: OrderedDict[tuple[str, str | None], tuple[bool, float]] = OrderedDict()

    async def active(self, claims: dict[str, Any]) -> bool:
        jti = str(claims.get("jti"))
        version = policy_version(self._pdp)
        now = self._clock()
        cached = self._cache.get((jti, version))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            permitted, remaining = await self._ask(claims)
        except PDPError as exc:
            log.warning("introspection could not ask the PDP again: %s", exc)
            return False
        if not permitted:
            await self._deactivate(claims, version, remaining, now)
        if self._ttl > 0:
            self._cache[(jti, version)] = (permitted, now + self._ttl)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return permitted

    async def _ask(self, claims: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(still permitted, the access the policies still permit)."""
        client = self._registry.get(str(claims.get("client_id")))
        if client is None:
            return False, {}
        sub = str(claims.get("sub"))
        act = claims.get("act") if isinstance(claims.get("act"), dict) else None
        own = sub == client.client_id and act is None
        oauth = self._settings.oauth
        principal = Principal(
            subject=subject_with_actor(
                oauth.client_subject_type if own else oauth.introspection_subject_type, sub, act
            ),
            token_sub=sub,
            act=act,
        )
        details = claims.get("authorization_details") or []
        scope = claims.get("scope")
        pairs = [("authorization_details", json.dumps(details))] if details else []
        if isinstance(scope, str) and scope:
            pairs.append(("scope", scope))
        pairs += [("resource", r) for r in _resources(claims, details, self._settings.issuer)]
        try:
            access = read_asked_access(
                Form(pairs),
                client,
                self._profiles,
                max_entries=self._decision.limits.max_authorization_details,
                max_evaluations=self._decision.limits.max_evaluations,
                allow_none=self._decision.mapping.allows_no_access,
            )
            cnf = claims.get("cnf")
            jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
            asked = AskedToken(
                CLIENT_CREDENTIALS if own else TOKEN_EXCHANGE,
                client,
                principal,
                access,
                jkt if isinstance(jkt, str) else None,
            )
            planned = [p for p in self._decision.plan(asked) if p.source != "gate"]
        except OAuthError as exc:
            log.info("a token's access can no longer be asked about: %s", exc)
            return False, {}
        if not planned:
            return True, {}
        planned = _with_approvals(planned, await self._store.approvals_of_token(str(claims["jti"])))
        decisions = await self._decision.decide(planned)
        permitted = all(d.decision for d in decisions)
        return permitted, _remaining(claims, planned, decisions)

    async def _deactivate(
        self, claims: dict[str, Any], version: str | None, remaining: dict[str, Any], now: float
    ) -> None:
        """Revoke the token for good; the first process to find it records and tells it."""
        jti, exp = str(claims.get("jti")), float(claims.get("exp") or now)
        await self._store.revoke_access_token(jti, exp)
        if await self._store.use_once(DEACTIVATED, jti, exp + 1):
            await self._store.audit_append(
                [event_audit.token_deactivated(claims, version, remaining, now)]
            )
            log.info("access token %s is no longer permitted by the policies: revoked", jti)


def _resources(claims: dict[str, Any], details: list[dict[str, Any]], issuer: str) -> list[str]:
    """The RFC 8707 resources the token was asked with: its `aud`, unless that is what the
    bridge gives a token asked without any (the locations' origins, or itself)."""
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
    return [] if named == audience([], details, issuer) else named


def _with_approvals(
    planned: list[PlannedEvaluation], approvals: Sequence[ApprovalRecord]
) -> list[PlannedEvaluation]:
    """Each evaluation with the approval granted for its resource and action, if any, in
    `context.approval` (the decision point checks it as it checks a PEP's)."""
    out = []
    for item in planned:
        request = item.request
        for approval in approvals:
            binding = approval.binding if isinstance(approval.binding, dict) else {}
            if binding.get("resource") == request.resource.model_dump(
                exclude_none=True
            ) and binding.get("action") == request.action.model_dump(exclude_none=True):
                context = {**(request.context or {}), "approval": {"id": approval.id}}
                request = request.model_copy(update={"context": context})
                break
        out.append(replace(item, request=request))
    return out


def _remaining(
    claims: dict[str, Any], planned: Sequence[PlannedEvaluation], decisions: Sequence[Decision]
) -> dict[str, Any]:
    """The token's access as the policies still permit it: the entries and scope values
    whose every evaluation is permitted."""
    denied_entries = {
        p.entry_index for p, d in zip(planned, decisions, strict=False) if not d.decision
    }
    denied_scopes = {p.scope for p, d in zip(planned, decisions, strict=False) if not d.decision}
    remaining: dict[str, Any] = {}
    details = claims.get("authorization_details")
    if isinstance(details, list):
        remaining["authorization_details"] = [
            entry for n, entry in enumerate(details) if n not in denied_entries
        ]
    scope = claims.get("scope")
    if isinstance(scope, str):
        remaining["scope"] = " ".join(s for s in scope.split(" ") if s and s not in denied_scopes)
    return remaining
