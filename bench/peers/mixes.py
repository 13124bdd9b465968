"""The varied request mixes, each request with the decision the store's policies give it.

- The 40 AuthZEN interop requests of the todo application (interop scenario todo 1.1): the
  first 40 evaluation cases of `policies/todo/tests.json`, which holds them as store tests.
- Requests with `properties` on the `default` store: its own test cases that carry
  properties (payments, approvals of access requests; none that claims an approval), and
  payments of amounts on either
  side of each limit, in euros and in dollars, by a person and by the demo agent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.harness import REPO

INTEROP_CASES = 40


@dataclass(frozen=True)
class Case:
    request: dict[str, Any]
    decision: bool

    def body(self) -> str:
        return json.dumps(self.request, separators=(",", ":"))


def _store_cases(store: str) -> list[Case]:
    cases = json.loads((REPO / "policies" / store / "tests.json").read_text())["cases"]
    return [
        Case(case["request"], bool(case["expect"]["decision"]))
        for case in cases
        if case["kind"] == "evaluation"
    ]


def todo_interop() -> list[Case]:
    cases = _store_cases("todo")[:INTEROP_CASES]
    assert len(cases) == INTEROP_CASES, len(cases)
    return cases


def default_store() -> list[Case]:
    """The evaluation test cases of the `default` store, but those whose context claims an
    approval: over HTTP the bridge looks a claimed approval up in its database and drops it
    when it does not know it (the store tests' approvals exist only in the tests)."""
    return [
        case
        for case in _store_cases("default")
        if "approval" not in (case.request.get("context") or {})
    ]


def _has_properties(case: Case) -> bool:
    return any("properties" in case.request[member] for member in ("subject", "resource"))


# The demo policies: euro payments up to 1,000.00 are permitted; up to 100,000.00 they need
# the finance team's approval (a denial); above that, or in another currency, a plain denial.
AMOUNTS_MINOR = (1, 99_999, 100_000, 100_001, 2_500_000, 10_000_000, 10_000_001)


def _payment(subject: dict[str, str], amount: int, currency: str) -> Case:
    request = {
        "subject": subject,
        "action": {"name": "initiate"},
        "resource": {
            "type": "Payment",
            "id": f"pay-{amount}-{currency}",
            "properties": {"amount_minor": amount, "currency": currency},
        },
    }
    return Case(request, currency == "EUR" and amount <= 100_000)


def default_with_properties() -> list[Case]:
    cases = [case for case in default_store() if _has_properties(case)]
    subjects = ({"type": "user", "id": "alice"}, {"type": "client", "id": "demo-agent"})
    cases += [
        _payment(subject, amount, currency)
        for subject in subjects
        for amount in AMOUNTS_MINOR
        for currency in ("EUR", "USD")
    ]
    return cases
