"""Checking a submission against the denials it echoes (ARAP §3, §6).

Each denial must carry the `binding_token` the bridge's PDP signed. Items with their own
denial are checked with the single-item hash; a top-level denial covers the items without
one (a single request, or a whole bundle in the bundle form of §5). `evaluation_id` alone
binds nothing here: the PDP records no denials, so there is nothing to resolve it against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .binding import binding_hash, bundle_binding_hash
from .binding_token import SKEW_SECONDS, BindingTokens, DenialBinding
from .problems import InvalidDenialBinding
from .submission import Submission, SubmittedItem
from .tasks import PENDING
from .times import rfc3339


@dataclass(frozen=True)
class BoundItems:
    pdp: str
    items: list[dict[str, Any]]  # the task's items, pending
    jtis: list[tuple[str, float]]  # binding token ids spent, and until when they count


async def bind_items(tokens: BindingTokens, submission: Submission) -> BoundItems:
    s = submission

    def single(item: SubmittedItem) -> Any:
        return lambda members: binding_hash(
            s.subject, item.resource, item.action, s.context, members
        )

    shared: DenialBinding | None = None
    if any(item.denial is None for item in s.items):
        assert s.denial is not None  # parse_submission saw to it
        if s.bundle:
            pairs = [(item.resource, item.action) for item in s.items]

            def bundle(members: Sequence[str]) -> str:
                return bundle_binding_hash(s.subject, pairs, s.context, members)

            shared = await _verify(tokens, s.denial, bundle)
        else:
            shared = await _verify(tokens, s.denial, single(s.items[0]))
    bindings = []
    for item in s.items:
        if item.denial is None:
            assert shared is not None
            bindings.append(shared)
        else:
            bindings.append(await _verify(tokens, item.denial, single(item)))
    pdps = {b.pdp for b in bindings}
    if len(pdps) != 1:
        raise InvalidDenialBinding("the items were denied by different decision points")
    jtis = {b.jti: b.deadline + SKEW_SECONDS for b in bindings}
    return BoundItems(
        pdp=pdps.pop(),
        items=[_item(item, b) for item, b in zip(s.items, bindings, strict=True)],
        jtis=list(jtis.items()),
    )


async def _verify(tokens: BindingTokens, denial: dict[str, Any], recompute: Any) -> DenialBinding:
    if "binding_token" not in denial:
        raise InvalidDenialBinding(
            "this service binds denials by binding_token: echo the denial's binding_token"
        )
    return await tokens.verify(denial["binding_token"], denial.get("expires_at"), recompute)


def _item(item: SubmittedItem, binding: DenialBinding) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": item.resource, "action": item.action}
    if item.requested_access is not None:
        out["requested_access"] = item.requested_access
    out["status"] = PENDING
    out["template"] = binding.template
    out["denial"] = {
        "evaluation_id": binding.evaluation_id,
        "reason": binding.reason,
        "binding_hash": binding.binding_hash,
        "members": binding.members,
        "expires_at": rfc3339(binding.deadline),
    }
    return out
