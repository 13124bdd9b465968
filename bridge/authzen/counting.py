"""A PDP that counts its decisions for the operators' metrics (`bridge_decisions`), by the
policy store that decides (or `remote`) and outcome: permit, deny, or error when none could
be had. Searches are not decisions and pass through uncounted."""

from __future__ import annotations

from collections.abc import Sequence

from ..metrics import DECISIONS
from .errors import PDPError
from .models import (
    ActionSearchRequest,
    Decision,
    EvaluationRequest,
    EvaluationsSemantic,
    ResourceSearchRequest,
    SearchResult,
    SubjectSearchRequest,
)
from .pdp import PDP, policy_version


class CountedPDP:
    def __init__(self, pdp: PDP, store: str) -> None:
        self._pdp = pdp
        self._permit = DECISIONS.labels(store, "permit")
        self._deny = DECISIONS.labels(store, "deny")
        self._error = DECISIONS.labels(store, "error")

    def policy_version(self) -> str | None:
        """The counted PDP's (continuous evaluation keys its answers by it)."""
        return policy_version(self._pdp)

    async def evaluate(self, request: EvaluationRequest) -> Decision:
        try:
            decision = await self._pdp.evaluate(request)
        except PDPError:
            self._error.inc()
            raise
        (self._permit if decision.decision else self._deny).inc()
        return decision

    async def evaluations(
        self,
        requests: Sequence[EvaluationRequest],
        semantic: EvaluationsSemantic = EvaluationsSemantic.execute_all,
    ) -> list[Decision]:
        try:
            decisions = await self._pdp.evaluations(requests, semantic)
        except PDPError:
            self._error.inc(len(requests))
            raise
        permits = sum(1 for d in decisions if d.decision)
        # A counter's increment takes a lock: only the ones that change.
        if permits:
            self._permit.inc(permits)
        if permits < len(decisions):
            self._deny.inc(len(decisions) - permits)
        return decisions

    async def search_subject(self, request: SubjectSearchRequest) -> SearchResult:
        return await self._pdp.search_subject(request)

    async def search_resource(self, request: ResourceSearchRequest) -> SearchResult:
        return await self._pdp.search_resource(request)

    async def search_action(self, request: ActionSearchRequest) -> SearchResult:
        return await self._pdp.search_action(request)
