"""Authorization claims from AuthZEN resource searches (openid/authzen
`profiles/authzen-oauth/authzen-oauth-authorization-claims-1_0.md`): `groups`, `roles`,
`entitlements` (RFC 9068 §2.2.3.1), or a deployment's own, in the access token.

Per bound claim (`pdp.authorization_claims`), one Resource Search (§6): the subject of the
decision (the gate's, the token's `sub`; a token exchange's subject, never its requesting
party), the binding's action and resource type (§5.2: `group`/`member`, `role`/`assignee`,
`entitlement`/`holder`), the context the evaluations carried plus `audience`, the token's
targets (§6.3, advisory) → every page followed (§9) → the claim is the array of the
results' `id`s, deduplicated and sorted (§8.3), `[]` when there are none (§8.4).

The searches are asked only once the decision permitted the token, and their results are
only ever rendered as claims (§7): never a scope, an audience or an entry, never a reason
to issue. A search that fails (an error, a result of another type, too many pages, no
search endpoint) renders no claim, never an empty one (§10); the binding's `on_failure`
then says whether the token is issued without it (`omit`) or not at all (`refuse`:
`server_error`, HTTP 500, naming no claim, §12).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..authzen.errors import PDPError
from ..authzen.models import (
    Action,
    Page,
    ResourceSearchRequest,
    SearchedEntity,
    Subject,
)
from ..authzen.pdp import PDP
from ..errors import ServerError

log = logging.getLogger("bridge.oauth.claims")

# §5.2's registered bindings: claim → (resource type, action).
REGISTERED_BINDINGS: dict[str, tuple[str, str]] = {
    "groups": ("group", "member"),
    "roles": ("role", "assignee"),
    "entitlements": ("entitlement", "holder"),
}
# §9: a bound on the pages followed for one claim; past it the search has failed.
MAX_PAGES = 50

OnFailure = Literal["omit", "refuse"]


@dataclass(frozen=True)
class ClaimBinding:
    """One bound claim: the search that enumerates it, and what a failed search means."""

    claim: str
    resource_type: str
    action: str
    on_failure: OnFailure


class SearchFailed(Exception):
    """§10: the claim's search did not give a usable result set."""


class AuthorizationClaims:
    def __init__(self, pdp: PDP, bindings: Sequence[ClaimBinding]) -> None:
        self._pdp = pdp
        self.bindings = tuple(bindings)

    async def render(
        self,
        subject: Subject,
        context: Mapping[str, Any] | None,
        audience: Sequence[str],
    ) -> dict[str, list[str]]:
        """The bound claims of a token permitted for `subject`: each searched (all at once,
        their latencies do not add up), a failed one left out, or the token refused when its
        binding says so."""
        if not self.bindings:
            return {}
        search_context = {**(context or {}), "audience": list(audience)}
        outcomes = await asyncio.gather(
            *(self._search(b, subject, search_context) for b in self.bindings),
            return_exceptions=True,
        )
        claims: dict[str, list[str]] = {}
        for binding, outcome in zip(self.bindings, outcomes, strict=True):
            if isinstance(outcome, list):
                claims[binding.claim] = outcome
                continue
            if not isinstance(outcome, SearchFailed | PDPError):
                raise outcome
            log.warning("claim %s not rendered for %s: %s", binding.claim, subject.id, outcome)
            if binding.on_failure == "refuse":
                # §12: a fault of the bridge's dependencies, not of the request; which claim
                # failed is for the log only.
                raise ServerError("the token cannot be issued now")
        return claims

    async def _search(
        self, binding: ClaimBinding, subject: Subject, context: dict[str, Any]
    ) -> list[str]:
        ids: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            result = await self._pdp.search_resource(
                ResourceSearchRequest(
                    subject=subject,
                    action=Action(name=binding.action),
                    resource=SearchedEntity(type=binding.resource_type),
                    context=context,
                    page=Page(token=token) if token else None,
                )
            )
            for item in result.results:
                if item.get("type") != binding.resource_type or not isinstance(item.get("id"), str):
                    # §8.2: a result of another type fails the search, it is not filtered.
                    raise SearchFailed(f"a result is not a {binding.resource_type!r}")
                ids.add(item["id"])
            token = result.page.next_token if result.page is not None else None
            if not token:
                # §8.3: a set, in an order stable across issuances.
                return sorted(ids)
        raise SearchFailed(f"more than {MAX_PAGES} pages")
