"""The answer to an Access Evaluations request (API 1.0 §7), given a PDP.

Shared by the HTTP endpoint and the policy test runner, so store tests check exactly what
PEPs receive: failed items as errors in place, short-circuit semantics applied after the
PDP decided the valid items in one call.
"""

from __future__ import annotations

from .batch import truncate
from .models import Decision, EvaluationRequest, EvaluationsSemantic, JSONObject
from .pdp import PDP
from .requests import parse_evaluations


async def answer_evaluations(pdp: PDP, body: JSONObject, max_items: int) -> JSONObject:
    parsed = parse_evaluations(body, max_items)
    if isinstance(parsed, EvaluationRequest):
        # No items: the request behaves exactly like Access Evaluation.
        return (await pdp.evaluate(parsed)).to_json()
    items, semantic = parsed
    valid = [item for item in items if isinstance(item, EvaluationRequest)]
    decided = iter(await pdp.evaluations(valid, EvaluationsSemantic.execute_all))
    decisions = [
        next(decided) if isinstance(item, EvaluationRequest) else Decision.failed(400, item)
        for item in items
    ]
    return {"evaluations": [d.to_json() for d in truncate(decisions, semantic)]}
