"""The one interface every decision point of the bridge offers.

The embedded Cedar PDP and the remote HTTP client both implement it, so the token endpoint,
the AuthZEN routes and the tests can use either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    ResourceSearchRequest,
    SearchResult,
    SubjectSearchRequest,
)


class PDP(Protocol):
    async def evaluate(self, request: EvaluationRequest) -> Decision:
        """One decision. Raises `PDPError` when none can be had."""
        ...

    async def evaluations(
        self,
        requests: Sequence[EvaluationRequest],
        semantic: EvaluationsSemantic = EvaluationsSemantic.execute_all,
    ) -> list[Decision]:
        """Decisions in request order, truncated after the item that short-circuits."""
        ...

    async def search_subject(self, request: SubjectSearchRequest) -> SearchResult: ...

    async def search_resource(self, request: ResourceSearchRequest) -> SearchResult: ...

    async def search_action(self, request: ActionSearchRequest) -> SearchResult: ...


def policy_version(pdp: PDP) -> str | None:
    """The version of the policies `pdp` decides with now, when it knows one (the embedded
    engine: a digest of its store's files); None for a PDP that does not say (remote)."""
    version = getattr(pdp, "policy_version", None)
    return version() if callable(version) else None
