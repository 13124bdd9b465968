"""`bridge policy test`: run a store's cases and report each failure as a readable diff.

Only what a case expects is compared: an evaluation case that gives no
`determining_policies` passes whichever policies decided. Lists that are sets (determining
policies, search results) are sorted on both sides first, so the diff shows real
differences, not order.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..authzen.cedar.store import PolicyStore
from ..authzen.errors import AuthZENError, PDPError
from ..authzen.models import JSONObject
from .approval import requestability
from .cases import Case
from .client import StoreClient, error_body


@dataclass(frozen=True)
class Outcome:
    case: Case
    expected: JSONObject
    actual: JSONObject

    @property
    def passed(self) -> bool:
        return self.expected == self.actual

    def report(self) -> list[str]:
        """One line naming the case and where it is, then the indented diff."""
        head = f"{self.case.where}: case {json.dumps(self.case.name)} ({self.case.kind}) failed"
        diff = difflib.unified_diff(
            _pretty(self.expected), _pretty(self.actual), "expected", "actual", lineterm=""
        )
        return [head, *(f"    {line}" for line in diff)]


async def run_cases(store: PolicyStore, cases: Sequence[Case]) -> list[Outcome]:
    client = StoreClient(store)
    return [await _run(client, case) for case in cases]


async def _run(client: StoreClient, case: Case) -> Outcome:
    expected = dict(case.expect)
    try:
        if case.kind == "evaluation":
            if "determining_policies" in expected:
                expected["determining_policies"] = sorted(expected["determining_policies"])
            actual = await _evaluation(client, case)
        elif case.kind == "evaluations":
            actual = await client.evaluations(case.request)
        else:
            expected["results"] = _sorted_results(expected["results"])
            kind = case.kind.removeprefix("search_")
            actual = {"results": _sorted_results(await client.search(kind, case.request))}
    except (AuthZENError, PDPError) as exc:
        actual = error_body(exc)
    return Outcome(case, expected, actual)


async def _evaluation(client: StoreClient, case: Case) -> JSONObject:
    decision = await client.evaluation(case.request)
    actual: JSONObject = {"decision": decision.decision}
    determining = sorted((decision.context or {}).get("determining_policies", []))
    if "determining_policies" in case.expect:
        actual["determining_policies"] = determining
    if "requestable" in case.expect:
        actual["requestable"] = requestability(client.store, decision).to_json()
    return actual


def _sorted_results(results: list[JSONObject]) -> list[JSONObject]:
    return sorted(
        results,
        key=lambda r: (str(r.get("type", "")), str(r.get("id", "")), str(r.get("name", ""))),
    )


def _pretty(value: JSONObject) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()
