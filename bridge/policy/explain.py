"""`bridge policy explain`: why the store decides a request the way it does.

For each decision: permit or deny, the determining policies by `@id` with their effect,
`@approval` and position (so an editor can jump there), the evaluation errors Cedar skipped
policies for, and for a denial whether it is requestable and with which template. A batch
request is explained item by item, after merging its defaults as the endpoint does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..authzen.cedar.store import PolicyStore
from ..authzen.errors import AuthZENError, PDPError
from ..authzen.models import EvaluationRequest, JSONObject
from ..authzen.requests import parse_evaluations, parse_model
from .approval import APPROVAL, Requestability, requestability
from .client import StoreClient
from .locate import PolicyFile

_POLICY_IN_ERROR = re.compile(r"policy `([^`]+)`")


@dataclass(frozen=True)
class PolicyAt:
    policy_id: str
    effect: str
    where: str  # file:line:column
    approval: str | None

    def to_json(self) -> JSONObject:
        out: JSONObject = {"id": self.policy_id, "effect": self.effect, "at": self.where}
        if self.approval is not None:
            out["approval"] = self.approval
        return out

    def __str__(self) -> str:
        note = f' @approval("{self.approval}")' if self.approval is not None else ""
        return f"{self.policy_id} ({self.effect}{note}) at {self.where}"


@dataclass(frozen=True)
class Explanation:
    decision: bool | None  # None: no decision (the reason is in `failure`)
    determining: list[PolicyAt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requestable: Requestability | None = None
    failure: str | None = None

    def to_json(self) -> JSONObject:
        if self.decision is None:
            return {"error": self.failure}
        out: JSONObject = {
            "decision": self.decision,
            "determining_policies": [p.to_json() for p in self.determining],
            "evaluation_errors": self.errors,
        }
        if self.requestable is not None:
            out["requestable"] = self.requestable.to_json()
        return out

    def lines(self) -> list[str]:
        if self.decision is None:
            return [f"decision: none ({self.failure})"]
        out = [f"decision: {'permit' if self.decision else 'deny'}"]
        if self.determining:
            out += ["determining policies:", *(f"  {p}" for p in self.determining)]
        else:
            out.append("determining policies: none (no policy permits the request)")
        if self.errors:
            out += ["evaluation errors:", *(f"  {e}" for e in self.errors)]
        else:
            out.append("evaluation errors: none")
        if self.requestable is not None:
            r = self.requestable
            answer = f'yes, template "{r.template}"' if r.template else f"no ({r.reason})"
            out.append(f"requestable: {answer}")
        return out


class Explainer:
    def __init__(self, store: PolicyStore) -> None:
        self.client = StoreClient(store)
        self.store = store
        self._files: dict[str, PolicyFile] = {}

    async def explain(self, body: JSONObject) -> list[tuple[str, Explanation]]:
        """(label, explanation) per decision: one for an evaluation, one per batch item.

        Raises `AuthZENError` when the request itself is refused."""
        items = body.get("evaluations")
        if not isinstance(items, list) or not items:
            request = parse_model(EvaluationRequest, body)
            return [("", await self._one(request))]
        parsed = parse_evaluations(body, self.client.max_batch_items)
        assert not isinstance(parsed, EvaluationRequest)
        out = []
        for n, item in enumerate(parsed[0]):
            label = f"evaluations[{n}]"
            if isinstance(item, str):
                out.append((label, Explanation(None, failure=f"not evaluated: {item}")))
            else:
                out.append((label, await self._one(item)))
        return out

    async def _one(self, request: EvaluationRequest) -> Explanation:
        try:
            decision = await self.client.explaining.evaluate(request)
        except PDPError as exc:
            return Explanation(None, failure=str(exc))
        context = decision.context or {}
        ids: list[str] = sorted(context.get("determining_policies", []))
        errors = [self._with_position(e) for e in context.get("evaluation_errors", [])]
        found = None if decision.decision else requestability(self.store, decision)
        return Explanation(decision.decision, [self._policy(i) for i in ids], errors, found)

    def _policy(self, policy_id: str) -> PolicyAt:
        record = self.store.policy(policy_id)
        if record is None:  # cannot happen for ids Cedar reports from this store
            return PolicyAt(policy_id, "?", "?", None)
        return PolicyAt(
            policy_id,
            record.effect,
            self._where(record.file, record.line),
            record.annotations.get(APPROVAL),
        )

    def _where(self, rel: str, line: int | None) -> str:
        if line is None:
            return rel
        source = self._files.get(rel)
        if source is None:
            source = self._files[rel] = PolicyFile.read(rel, Path(rel).read_text(encoding="utf-8"))
        statement = source.statement_at(line)
        return f"{rel}:{line}:{statement.column if statement else 1}"

    def _with_position(self, error: str) -> str:
        named = _POLICY_IN_ERROR.search(error)
        record = self.store.policy(named.group(1)) if named else None
        if record is None:
            return error
        return f"{self._where(record.file, record.line)}: {error}"


def refused(error: AuthZENError) -> str:
    return f"the request is refused ({error.status}): {error.message}"
