"""The ARAP decision point around the real Cedar PDP: requestable denials out, approvals in.

Cedar's policy (tests/test_arap_support.py) reads `context.approval.template`, so a permit
shows that Cedar saw the approval the bridge verified, with the stored template, and a
denial shows that a forged, foreign or stale approval never reached it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.access_requests.binding import request_binding_hash
from bridge.access_requests.problems import InvalidTaskState
from bridge.access_requests.times import parse_rfc3339
from bridge.authzen.models import EvaluationRequest, ResourceSearchRequest
from tests.test_arap_support import (
    DORA,
    ENDPOINT,
    MARIA,
    PDP_ID,
    Harness,
    harness,
    report,
    secret_doc,
)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    found: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return found


async def approved(h: Harness, request: dict[str, Any], approver: Any = MARIA) -> dict[str, Any]:
    """The `result.approval` of an approved access request for `request`."""
    task = await h.service.submit(await h.submission(request), "pep:anonymous", None)
    done = await h.service.decide(task.id, approver, "approve")
    approval: dict[str, Any] = done.to_json(h.ars.urls)["result"]["approval"]
    return approval


async def test_a_requestable_denial_has_the_arap_shape(tmp_path: Path) -> None:
    async with harness(tmp_path, denial_lifetime_seconds=300) as h:
        decision = (await h.deny(secret_doc())).to_json()
        assert decision["decision"] is False
        context = decision["context"]
        assert set(context) == {"evaluation_id", "evaluated_at", "reason", "access_request"}
        assert context["reason"] == "approval_required"
        assert context["evaluation_id"].startswith("eval_")
        assert parse_rfc3339(context["evaluated_at"]) == int(h.clock())
        ar = context["access_request"]
        assert set(ar) == {"endpoint", "template", "expires_at", "binding_token"}
        assert (ar["endpoint"], ar["template"]) == (ENDPOINT, "manager")
        assert parse_rfc3339(ar["expires_at"]) == int(h.clock()) + 300
        claims = claims_of(ar["binding_token"])
        assert claims["evaluation_id"] == context["evaluation_id"]
        assert claims["binding_context_members"] == ["client_id", "dpop_jkt", "resource"]
        request = EvaluationRequest.model_validate(secret_doc())
        assert claims["binding_hash"] == request_binding_hash(
            request, ["client_id", "dpop_jkt", "resource"]
        )


async def test_other_decisions_pass_unchanged(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        public = secret_doc()
        public["resource"]["properties"] = {"secret": False}
        assert (await h.deny(public)).to_json() == {"decision": True}
        nothing = {**public, "action": {"name": "delete"}}
        assert (await h.deny(nothing)).to_json() == {"decision": False}
        batch = [EvaluationRequest.model_validate(r) for r in (public, nothing, secret_doc())]
        decisions = [d.to_json() for d in await h.pdp.evaluations(batch)]
        assert decisions[:2] == [{"decision": True}, {"decision": False}]
        assert "access_request" in decisions[2]["context"]


async def test_without_approvers_denials_stay_plain(tmp_path: Path) -> None:
    async with harness(tmp_path, approver_issuer=None) as h:
        assert (await h.deny(secret_doc())).to_json() == {"decision": False}


async def test_a_valid_approval_reaches_cedar_and_permits(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        approval = await approved(h, secret_doc())
        # The PEP's copy may say anything else: the stored template and expiry count.
        claimed = {**approval, "template": "director", "approved_until": "2099-01-01T00:00:00Z"}
        decision = (await h.deny(secret_doc(approval=claimed))).to_json()
        # A re-evaluation gets an id of its own, which the audit trail records with it.
        evaluation_id = decision["context"]["evaluation_id"]
        assert evaluation_id.startswith("eval_")
        assert decision == {
            "decision": True,
            "context": {
                "approval": {"id": approval["id"], "approved_until": approval["approved_until"]},
                "evaluation_id": evaluation_id,
            },
        }


async def test_the_actor_is_not_bound(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        request = secret_doc()
        request["subject"]["properties"] = {"act": {"sub": "agent-7"}}
        approval = await approved(h, request)
        request["subject"]["properties"] = {"act": {"sub": "agent-8"}}
        request["context"]["approval"] = approval
        assert (await h.deny(request)).decision is True


async def test_a_forged_approval_grants_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        forged = {
            "id": "apr_forged",
            "template": "manager",
            "approved_until": "2099-01-01T00:00:00Z",
        }
        decision = await h.deny(secret_doc(approval=forged))
        assert decision.decision is False
        assert decision.context is not None and "access_request" in decision.context


async def test_an_approval_applies_only_to_what_was_approved(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        approval = await approved(h, secret_doc("plan"))
        assert (await h.deny(secret_doc("budget", approval=approval))).decision is False
        assert (await h.deny(secret_doc("plan", user="bob", approval=approval))).decision is False
        other_client = secret_doc("plan", approval=approval)
        other_client["context"]["client_id"] = "agent-8"
        assert (await h.deny(other_client)).decision is False
        # Context the denial did not bind may differ.
        assert (await h.deny(secret_doc("plan", approval=approval, trace="x"))).decision is True


async def test_expired_and_revoked_approvals_are_ignored(tmp_path: Path) -> None:
    async with harness(tmp_path, default_approval_seconds=600) as h:
        first = await approved(h, secret_doc("plan"))
        second = await approved(h, secret_doc("budget"))
        assert (await h.deny(secret_doc("plan", approval=first))).decision is True
        assert (await h.service.revoke(second["id"], None)).id == second["id"]  # an operator
        with pytest.raises(InvalidTaskState):
            await h.service.revoke(second["id"], None)
        assert (await h.deny(secret_doc("budget", approval=second))).decision is False
        h.clock.advance(600)
        assert (await h.deny(secret_doc("plan", approval=first))).decision is False


async def test_approvals_are_scoped_to_their_store(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        approval = await approved(h, secret_doc())
        elsewhere = h.ars.decision_point(h.cedar, PDP_ID + "/stores/other")
        assert (
            await elsewhere.evaluate(
                EvaluationRequest.model_validate(secret_doc(approval=approval))
            )
        ).decision is False


async def test_an_approval_of_one_template_does_not_pass_another(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        approval = await approved(h, report(), approver=DORA)
        assert (
            await h.deny({**report(), "context": {"client_id": "agent-7", "approval": approval}})
        ).decision is True
        # A manager approval for the document would not satisfy the director's policy.
        manager = await approved(h, secret_doc())
        assert (
            await h.deny({**report(), "context": {"client_id": "agent-7", "approval": manager}})
        ).decision is False


async def test_searches_are_delegated(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        search = ResourceSearchRequest.model_validate(
            {
                "subject": {"type": "user", "id": "alice"},
                "action": {"name": "read"},
                "resource": {"type": "Doc"},
            }
        )
        assert (await h.pdp.search_resource(search)).to_json() == (
            await h.cedar.search_resource(search)
        ).to_json()
