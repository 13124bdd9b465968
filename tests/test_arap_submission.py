"""Submitting access requests (ARAP §6): binding checks, idempotency, bundles and the token
endpoint's internal submission, on the real store and PDP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.access_requests.problems import (
    BadRequest,
    DuplicateRequest,
    ExpiredDenial,
    InvalidDenialBinding,
    NotRequestable,
    UnknownTask,
)
from bridge.access_requests.service import DeniedEvaluation, oauth_requester
from bridge.authzen.models import EvaluationRequest
from tests.test_arap_support import ENDPOINT, Harness, harness, report, secret_doc

PEP = "pep:anonymous"


async def bundle(h: Harness, *requests: dict[str, Any]) -> dict[str, Any]:
    """A bundle submission: one item per request, each echoing its own denial."""
    items = []
    for request in requests:
        body = await h.submission(request)
        items.append(
            {"resource": body["resource"], "action": body["action"], "denial": body["denial"]}
        )
    first = requests[0]
    return {"subject": first["subject"], "context": first["context"], "items": items}


async def test_a_submission_becomes_a_pending_task(tmp_path: Path) -> None:
    async with harness(tmp_path, request_lifetime_seconds=3600) as h:
        body = await h.submission(secret_doc(), context={"client_id": "agent-7", "why": "renewal"})
        view = await h.service.submit(body, PEP, None)
        assert view.id.startswith("arq_") and len(view.id) >= 4 + 32
        assert view.to_json(h.ars.urls) == {
            "task": {
                "id": view.id,
                "status": "pending",
                "status_endpoint": f"{ENDPOINT}/{view.id}",
                "expires_at": view.to_json(h.ars.urls)["task"]["expires_at"],
                # ARAP's progress: a template with no steps declared is one step, `approve`.
                "progress": {
                    "current_step": 1,
                    "total_steps": 1,
                    "step_name": "approve",
                    "awaiting": ["approve"],
                },
                "links": {"cancel": f"{ENDPOINT}/{view.id}/cancel"},
            }
        }
        assert view.expires_at == h.clock() + 3600
        assert (await h.service.status(view.id, PEP)).status == "pending"
        with pytest.raises(UnknownTask):
            await h.service.status(view.id, "pep:someone-else")
        with pytest.raises(UnknownTask):
            await h.service.status("arq_nope", PEP)


async def test_a_submission_needs_a_requestable_denial(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        body = await h.submission(secret_doc())
        with pytest.raises(NotRequestable):
            await h.service.submit({k: v for k, v in body.items() if k != "denial"}, PEP, None)
        only_id = {
            **body,
            "denial": {"evaluation_id": "eval_1", "expires_at": body["denial"]["expires_at"]},
        }
        with pytest.raises(InvalidDenialBinding, match="binding_token"):
            await h.service.submit(only_id, PEP, None)
        with pytest.raises(InvalidDenialBinding):
            await h.service.submit({**body, "denial": {"reason": "approval_required"}}, PEP, None)


async def test_the_submission_must_be_what_was_denied(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        body = await h.submission(secret_doc())
        changes: list[dict[str, Any]] = [
            {"resource": {"type": "Doc", "id": "budget", "properties": {"secret": True}}},
            {"subject": {"type": "user", "id": "bob"}},
            {"action": {"name": "write"}},
            {"context": {"client_id": "other-agent"}},
            {"context": {}},
        ]
        for changed in changes:
            with pytest.raises(InvalidDenialBinding):
                await h.service.submit({**body, **changed}, PEP, None)
        # Extras beside the bound members are welcome; the denial is then spent.
        extra = {**body, "context": {**body["context"], "business_justification": "renewal"}}
        await h.service.submit(extra, PEP, None)
        with pytest.raises(InvalidDenialBinding, match="already submitted"):
            await h.service.submit(body, PEP, None)


async def test_a_late_submission_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path, denial_lifetime_seconds=60) as h:
        body = await h.submission(secret_doc())
        h.clock.advance(91)
        with pytest.raises(ExpiredDenial):
            await h.service.submit(body, PEP, None)


async def test_malformed_submissions(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        body = await h.submission(secret_doc())
        for broken in (
            {**body, "subject": "alice"},
            {**body, "resource": {"type": "Doc"}},
            {**body, "context": []},
            {"subject": body["subject"], "items": []},
            {"subject": body["subject"], "items": ["x"]},
            {**body, "requested_access": {"requested_until": "soon"}},
            {**body, "callback": {"endpoint": "ftp://x"}},
        ):
            with pytest.raises(BadRequest):
                await h.service.submit(broken, PEP, None)


async def test_idempotent_submission(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        body = await h.submission(secret_doc())
        first = await h.service.submit(body, PEP, "key-1")
        again = await h.service.submit(dict(reversed(list(body.items()))), PEP, "key-1")
        assert again.id == first.id  # equal JSON (JCS), whatever the member order
        other = await h.submission(secret_doc("budget"))
        with pytest.raises(DuplicateRequest):
            await h.service.submit(other, PEP, "key-1")
        # Keys are per requester: another requester's key-1 is a new key.
        assert (await h.service.submit(other, "pep:other", "key-1")).id != first.id
        # A key is kept past the task's end (24 h after its expiry).
        await h.service.cancel(first.id, PEP)
        assert (await h.service.submit(body, PEP, "key-1")).id == first.id


async def test_bundles_bind_every_item(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        body = await bundle(h, secret_doc("plan"), report("q4"))
        view = await h.service.submit(body, PEP, None)
        shown = view.to_json(h.ars.urls)["task"]
        assert [i["status"] for i in shown["items"]] == ["pending", "pending"]
        assert [i["resource"]["id"] for i in shown["items"]] == ["plan", "q4"]
        assert [i["template"] for i in view.record.items] == ["manager", "director"]
        swapped = await bundle(h, secret_doc("a"), secret_doc("b"))
        swapped["items"][0]["denial"], swapped["items"][1]["denial"] = (
            swapped["items"][1]["denial"],
            swapped["items"][0]["denial"],
        )
        with pytest.raises(InvalidDenialBinding):
            await h.service.submit(swapped, PEP, None)
        missing = await bundle(h, secret_doc("c"))
        del missing["items"][0]["denial"]
        with pytest.raises(NotRequestable):
            await h.service.submit(missing, PEP, None)
        mixed = await bundle(h, secret_doc("d"))
        mixed["resource"] = mixed["items"][0]["resource"]
        with pytest.raises(BadRequest):
            await h.service.submit(mixed, PEP, None)


async def test_the_token_endpoint_submits_internally(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        requests = [EvaluationRequest.model_validate(r) for r in (secret_doc("plan"), report("q4"))]
        decisions = await h.pdp.evaluations(requests)
        denied = [
            DeniedEvaluation(r, d.context or {}) for r, d in zip(requests, decisions, strict=True)
        ]
        task = await h.service.submit_internal(denied, client_id="agent-7", idempotency_key="d-1")
        assert task.status == "pending" and task.expires_at > h.clock()
        assert [i.status for i in task.items] == ["pending", "pending"]
        assert task.record.requester == oauth_requester("agent-7") == "client:agent-7"
        again = await h.service.submit_internal(denied, client_id="agent-7", idempotency_key="d-1")
        assert again.id == task.id
        assert (await h.service.task(task.id)).record.requester == "client:agent-7"
        # The HTTP requesters never see the token endpoint's tasks.
        with pytest.raises(UnknownTask):
            await h.service.status(task.id, "pep:agent-7")
        single = EvaluationRequest.model_validate(secret_doc("memo"))
        one = DeniedEvaluation(single, (await h.pdp.evaluate(single)).context or {})
        solo = await h.service.submit_internal([one], client_id="agent-7")
        assert solo.record.bundle is False and "items" not in solo.to_json(h.ars.urls)["task"]
        plain = DeniedEvaluation(single, {"reason": "nope"})
        with pytest.raises(NotRequestable):
            await h.service.submit_internal([plain], client_id="agent-7")
        with pytest.raises(NotRequestable):
            await h.service.submit_internal([], client_id="agent-7")
