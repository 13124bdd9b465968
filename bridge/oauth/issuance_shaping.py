"""`context.issuance`: how a PDP shapes the token it permits (token issuance profile §6).

A permit may come with `granted_scope`, `token_lifetime`, `audience`,
`authorization_details`, `claims` and `crit`. Each may only narrow (§6.3): a value that
would broaden the token, a reserved claim, two items disagreeing on a claim, or a `crit`
claim the bridge does not carry make the decision unusable, and an unusable decision is no
token (§8, §11.1: fail closed, never a permit by default). A member of `issuance` the
bridge does not know is unusable too: ignoring it could mean a broader token than the PDP
authorized (§6.2), and the bridge cannot tell. Members outside `issuance` are ignored, and
so is all of it on a denied item (§6.5).

Per item the PDP speaks for itself; across the batch the values combine (§6.5): the
smallest lifetime, the union of granted scopes and of returned entries (then checked and
intersected by the caller), the merge of claims, the union of `crit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..authzen.errors import PDPError
from ..authzen.models import Decision, EvaluationRequest
from ..grammar import is_scope_token
from ..rar.token_issuance import AUDIENCE, GATE_PREFIX, gate_token_type

# Claims the AS alone is authoritative for (§6.4.5 table, with the reasons there).
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "iat",
        "jti",
        "sub",
        "aud",
        "exp",
        "nbf",
        "scope",
        "client_id",
        "cnf",
        "act",
        "authorization_details",
        "may_act",
    }
)
MEMBERS = frozenset(
    {"granted_scope", "token_lifetime", "audience", "authorization_details", "claims", "crit"}
)


class UnusableIssuance(PDPError):
    """The PDP permitted, but shaped the token in a way the AS may not apply (§6.3, §8):
    treated as a denial of the whole request, and reported as the PDP failing to decide,
    since neither the client nor a retry can change it. The message is for the operator."""


class NotAsApproved(Exception):
    """At the redemption of a deferred request, the decision would narrow what was
    approved; a deferred request is granted whole or not at all (AROP §2)."""


@dataclass(frozen=True)
class ItemIssuance:
    """One permitted item's `context.issuance`, checked on its own."""

    granted_scope: tuple[str, ...] | None = None
    token_lifetime: int | None = None
    audience: tuple[str, ...] | None = None
    authorization_details: tuple[Any, ...] | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    crit: tuple[str, ...] = ()

    @property
    def denies(self) -> bool:
        """§6.4.2: a lifetime of 0 is a denial, not an already expired token."""
        return self.token_lifetime == 0

    @property
    def withdraws(self) -> bool:
        """§6.4.3: an empty `audience` withholds the target this item was about."""
        return self.audience == ()


@dataclass(frozen=True)
class Shaping:
    """The items' shaping combined (§6.5); None members: no item said anything."""

    token_lifetime: int | None = None
    granted_scope: frozenset[str] | None = None
    authorization_details: list[Any] | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    crit: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TokenShape:
    """What the token issuance mapping fixes of a token beyond what it grants: its
    audience (the surviving targets), a lifetime ceiling (the PDP's and the subject
    token's end), the PDP's claims, the `jti` the PDP was told, and which kind of token
    (`access_token`, or `id_jag` for an Identity Assertion JWT Authorization Grant)."""

    audience: tuple[str, ...]
    token_lifetime: int | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    jti: str | None = None
    expires_at: float | None = None
    token_type: str = "access_token"


def read_issuance(request: EvaluationRequest, decision: Decision) -> ItemIssuance | None:
    """The shaping of a permitted item; None for a denied one (§6.5) or one without."""
    if not decision.decision or decision.context is None:
        return None
    issuance = decision.context.get("issuance")
    if issuance is None:
        return None
    if not isinstance(issuance, dict):
        raise UnusableIssuance("context.issuance is not an object")
    unknown = sorted(set(issuance) - MEMBERS)
    if unknown:
        raise UnusableIssuance(f"context.issuance.{unknown[0]} is not understood")
    return ItemIssuance(
        granted_scope=_granted_scope(issuance),
        token_lifetime=_token_lifetime(issuance),
        audience=_audience(issuance, request.resource.id),
        authorization_details=_array(issuance, "authorization_details"),
        claims=_claims(issuance),
        crit=_crit(issuance),
    )


def combine(items: Iterable[ItemIssuance]) -> Shaping:
    """§6.5's aggregation; two items giving one claim different values is unusable."""
    lifetimes: list[int] = []
    scopes: set[str] | None = None
    details: list[Any] | None = None
    claims: dict[str, Any] = {}
    crit: set[str] = set()
    for item in items:
        if item.token_lifetime is not None:
            lifetimes.append(item.token_lifetime)
        if item.granted_scope is not None:
            scopes = (scopes or set()) | set(item.granted_scope)
        if item.authorization_details is not None:
            details = [*(details or []), *item.authorization_details]
        for name, value in item.claims.items():
            if name in claims and claims[name] != value:
                # No general narrowing merge of JSON values: choosing one could broaden.
                raise UnusableIssuance(f"items return different values for claim {name!r}")
            claims[name] = value
        crit |= set(item.crit)
    return Shaping(
        token_lifetime=min(lifetimes) if lifetimes else None,
        granted_scope=frozenset(scopes) if scopes is not None else None,
        authorization_details=details,
        claims=claims,
        crit=frozenset(crit),
    )


def carried_claims(shaping: Shaping, allowed: frozenset[str]) -> dict[str, Any]:
    """The claims the token carries: those the deployment lets a PDP add (the others are
    advisory, §6.4.5, and dropped); a `crit` claim it does not carry refuses (§6.4.6)."""
    kept = {name: value for name, value in shaping.claims.items() if name in allowed}
    for name in sorted(shaping.crit):
        if name not in kept:
            raise UnusableIssuance(f"crit names claim {name!r}, which tokens do not carry")
    return kept


def redeemed_shape(
    evaluations: Sequence[EvaluationRequest],
    decisions: Sequence[Decision],
    *,
    scope: Sequence[str],
    details: Sequence[dict[str, Any]],
    allowed_claims: frozenset[str],
) -> TokenShape | None:
    """The shape of a token redeemed after an approval, from the evaluations decided again
    (all permitted). None for evaluations without a gate: the access request mapping's,
    which knows no `context.issuance`.

    A deferred request is all-or-nothing (AROP §2): shaping that would narrow what was
    asked (a withdrawn target, fewer scopes, other entries, a lifetime of 0) raises
    `NotAsApproved`, for the caller to answer as it answers a denial.
    """
    gates = [r for r in evaluations if is_gate(r)]
    if not gates:
        return None
    items = [read_issuance(r, d) for r, d in zip(evaluations, decisions, strict=True)]
    found = [item for item in items if item is not None]
    if any(item.denies or item.withdraws for item in found):
        raise NotAsApproved("the decision narrows what was approved")
    shaping = combine(found)
    if scope and shaping.granted_scope is not None and shaping.granted_scope != set(scope):
        raise NotAsApproved("the decision grants other scopes than were approved")
    if shaping.authorization_details is not None and _canonical_set(
        shaping.authorization_details
    ) != _canonical_set(details):
        raise NotAsApproved("the decision grants other authorization_details than were approved")
    context = gates[0].context or {}
    subject_token = context.get("subject_token")
    exp = subject_token.get("exp") if isinstance(subject_token, dict) else None
    return TokenShape(
        audience=tuple(dict.fromkeys(r.resource.id for r in gates)),
        token_lifetime=shaping.token_lifetime,
        claims=carried_claims(shaping, allowed_claims),
        expires_at=float(exp) if isinstance(exp, int | float) else None,
        token_type=gate_token_type(gates[0].action.name),
    )


def is_gate(request: EvaluationRequest) -> bool:
    """A gate tuple, told by its shape: only gates have an `issue:` action on an
    `audience` (§5.3.1, §5.3.4)."""
    return request.resource.type == AUDIENCE and request.action.name.startswith(GATE_PREFIX)


def _granted_scope(issuance: dict[str, Any]) -> tuple[str, ...] | None:
    value = issuance.get("granted_scope")
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnusableIssuance("granted_scope is not a string")
    tokens = tuple(t for t in value.split(" ") if t)
    if not all(is_scope_token(t) for t in tokens):
        raise UnusableIssuance("granted_scope holds something that is not a scope token")
    return tokens


def _token_lifetime(issuance: dict[str, Any]) -> int | None:
    value = issuance.get("token_lifetime")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UnusableIssuance("token_lifetime is not a non-negative integer")
    return value


def _audience(issuance: dict[str, Any], resource_id: str) -> tuple[str, ...] | None:
    value = _array(issuance, "audience")
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise UnusableIssuance("audience is not an array of strings")
    if any(v != resource_id for v in value):
        # §6.4.3: an item speaks for its own target, never for another.
        raise UnusableIssuance("audience names another target than its evaluation's")
    return tuple(dict.fromkeys(value))


def _claims(issuance: dict[str, Any]) -> dict[str, Any]:
    value = issuance.get("claims")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UnusableIssuance("claims is not an object")
    reserved = sorted(set(value) & RESERVED_CLAIMS)
    if reserved:
        raise UnusableIssuance(f"claims sets the reserved claim {reserved[0]!r}")
    return value


def _crit(issuance: dict[str, Any]) -> tuple[str, ...]:
    value = _array(issuance, "crit")
    if value is None:
        return ()
    if not all(isinstance(v, str) for v in value):
        raise UnusableIssuance("crit is not an array of strings")
    return tuple(value)


def _array(issuance: dict[str, Any], member: str) -> tuple[Any, ...] | None:
    value = issuance.get(member)
    if value is None:
        return None
    if not isinstance(value, list):
        raise UnusableIssuance(f"{member} is not an array")
    return tuple(value)


def _canonical_set(entries: Iterable[Any]) -> set[str]:
    return {json.dumps(e, sort_keys=True, separators=(",", ":")) for e in entries}
