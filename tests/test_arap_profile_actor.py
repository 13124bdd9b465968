"""The ARAP Actor profile over real HTTP: `client.actor` (with its nested `act` chain) and
`client.source` on a submission; the chain is accepted only when the caller's credential
proves it (a PEP's bearer JWT whose `act` claim is that chain, for the subject its `sub`
names), never on an API key's word; a proven actor is someone the request was made
through, so never its approver; the token endpoint's own filings carry the chain of the
token request they were made for."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.access_requests.problems import Forbidden
from bridge.access_requests.service import DeniedEvaluation
from bridge.authzen.models import EvaluationRequest
from tests.arap_profile_fixtures import APPROVALS, REQUESTS, Bridge, bridge, export, is_problem
from tests.dtr_fixtures import assert_deferred, auth_for, export_details
from tests.oauth_fixtures import IDP, IDP_KEY, exchange_form, idp_token

PEP_KEY = "actor-tests-pep-key"
AGENTS = "https://agents.example"


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridge]:
    jwks = _toml_inline({"keys": [IDP_KEY.as_dict(private=False)]})
    auth = (
        f'\n[stores.default.auth]\napi_keys = ["{PEP_KEY}"]\njwt_issuer = "{IDP}"\njwks = {jwks}\n'
    )
    async with bridge(tmp_path_factory.mktemp("actors"), extra=auth) as running:
        yield running


def _toml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_inline(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    return json.dumps(value)


def pep_token(running: Bridge, sub: str, act: dict[str, Any] | None = None) -> dict[str, str]:
    """A PEP's bearer JWT of the trusted issuer: `act` is the chain it proves."""
    claims: dict[str, Any] = {"act": act} if act is not None else {}
    token = idp_token(sub, aud=running.url, **claims)
    return {"Authorization": f"Bearer {token}"}


async def submission(running: Bridge, record: str, who: str, **client: Any) -> dict[str, Any]:
    evaluation = export(record, who)
    headers = {"Authorization": PEP_KEY}
    answer = await running.http.post("/access/v1/evaluation", json=evaluation, headers=headers)
    context = answer.json()["context"]
    denial = {
        "binding_token": context["access_request"]["binding_token"],
        "expires_at": context["access_request"]["expires_at"],
    }
    return {**evaluation, "denial": denial, "client": {"id": "demo-web", **client}}


CHAIN = {"sub": "agent-7", "iss": AGENTS, "sub_profile": "ai_agent", "act": {"sub": "manager-1"}}
CLAIMED = {
    "id": "agent-7",
    "issuer": AGENTS,
    "type": "ai_agent",
    "act": {"sub": "manager-1"},
}


async def test_a_proven_chain_is_filed_shown_and_never_its_own_approver(running: Bridge) -> None:
    source = {"session_id": "chat-42", "external_url": "https://tickets.example/T-1"}
    body = await submission(running, "cust-0001", "alice", actor=CLAIMED, source=source)
    created = await running.http.post(
        REQUESTS, json=body, headers=pep_token(running, "alice", CHAIN)
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["task"]["id"]
    # manager-1 is in the chain the request was made through: not theirs to see or decide.
    shown = await running.http.get(f"{APPROVALS}/{task_id}", headers=running.approver("manager-1"))
    assert "through you" in is_problem(shown, 403)["detail"]
    refused = await running.http.post(
        f"{APPROVALS}/{task_id}",
        json={"decision": "approve"},
        headers=running.approver("manager-1"),
    )
    is_problem(refused, 403)

    # A chain without manager-1: the approver sees the actor and the source, and decides.
    alone = {"sub": "agent-8", "iss": AGENTS}
    body = await submission(
        running, "cust-0002", "alice", actor={"id": "agent-8", "issuer": AGENTS}, source=source
    )
    created = await running.http.post(
        REQUESTS, json=body, headers=pep_token(running, "alice", alone)
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["task"]["id"]
    seen = await running.http.get(f"{APPROVALS}/{task_id}", headers=running.approver("manager-1"))
    client = seen.json()["access_request"]["client"]
    assert client["actor"] == {"id": "agent-8", "issuer": AGENTS} and client["source"] == source
    assert (await running.decide(task_id, "manager-1", decision="approve"))["status"] == "approved"


@pytest.mark.parametrize(
    "claimed",
    [
        {**CLAIMED, "id": "agent-9"},  # another actor
        {**CLAIMED, "issuer": "https://elsewhere.example"},  # another issuer
        {k: v for k, v in CLAIMED.items() if k != "act"},  # the chain cut short
        {**CLAIMED, "act": {"sub": "manager-1", "act": {"sub": "someone"}}},  # one link more
        {**CLAIMED, "act": {"sub": "finance-1"}},  # another link
        {**CLAIMED, "type": "user"},  # not what the credential says the actor is
    ],
)
async def test_a_chain_the_credential_does_not_prove_is_refused(
    running: Bridge, claimed: dict[str, Any]
) -> None:
    body = await submission(running, "cust-0003", "alice", actor=claimed)
    refused = await running.http.post(
        REQUESTS, json=body, headers=pep_token(running, "alice", CHAIN)
    )
    is_problem(refused, 403)


async def test_only_a_credential_naming_the_chain_proves_it(running: Bridge) -> None:
    body = await submission(running, "cust-0004", "alice", actor={"id": "agent-7"})
    # An API key names no actor; nor does a token without `act`.
    is_problem(
        await running.http.post(REQUESTS, json=body, headers={"Authorization": PEP_KEY}), 403
    )
    is_problem(
        await running.http.post(REQUESTS, json=body, headers=pep_token(running, "alice")), 403
    )
    # A token acting for someone else does not prove a chain for alice.
    other = pep_token(running, "bob", {"sub": "agent-7"})
    is_problem(await running.http.post(REQUESTS, json=body, headers=other), 403)
    # Where the request came from needs no proof: it is for the record only.
    plain = await submission(running, "cust-0004", "alice", source={"integration_id": "crm-sync"})
    created = await running.http.post(REQUESTS, json=plain, headers={"Authorization": PEP_KEY})
    assert created.status_code == 202, created.text


@pytest.mark.parametrize(
    "client",
    [
        {"actor": {"issuer": AGENTS}},  # no id
        {"actor": {"id": "agent-7", "act": {"iss": AGENTS}}},  # a link without sub
        {"actor": "agent-7"},
        {"source": {"external_url": "http://tickets.example/T-1"}},  # not https
        {"source": {"session_id": 7}},
    ],
)
async def test_a_malformed_client_is_a_bad_request(running: Bridge, client: dict[str, Any]) -> None:
    body = await submission(running, "cust-0005", "alice", **client)
    is_problem(
        await running.http.post(REQUESTS, json=body, headers={"Authorization": PEP_KEY}), 400
    )


async def test_the_token_endpoint_files_with_the_token_requests_chain(running: Bridge) -> None:
    who = f"actor-{int(time.time() * 1000)}@example.com"
    actor = idp_token("agent-55", aud=running.settings.issuer)
    form = exchange_form(
        export_details("cust-0006"), subject_token=idp_token(who), actor_token=actor
    )
    headers, extra = auth_for("demo-agent")
    answer = await running.http.post(
        "/token", data={**form, **extra, "completion_mode": "deferred"}, headers=headers
    )
    assert_deferred(answer)
    inbox = await running.http.get(APPROVALS, headers=running.approver("manager-1"))
    [filed] = [r for r in inbox.json()["access_requests"] if r["subject"]["id"] == who]
    assert filed["client"] == {"id": "demo-agent", "actor": {"id": "agent-55", "issuer": IDP}}


async def test_a_token_endpoint_filing_is_refused_an_actor_its_chain_does_not_name(
    running: Bridge,
) -> None:
    """The internal filing of a token request whose `act` names one actor, told of another."""
    evaluation = export("cust-0007", "erin")
    evaluation["subject"]["properties"] = {"act": {"sub": "demo-agent"}}
    request = EvaluationRequest.model_validate(evaluation)
    service = running.app.state.access_requests.service
    decision = await running.app.state.access_requests.decision_point(
        running.app.state.pdps["default"], running.settings.server.public_url.rstrip("/")
    ).evaluate(request)
    denied = [DeniedEvaluation(request, decision.context or {})]
    with pytest.raises(Forbidden):
        await service.submit_internal(
            denied, client_id="demo-agent", client={"actor": {"id": "agent-x"}}
        )
    filed = await service.submit_internal(denied, client_id="demo-agent")
    assert filed.record.client == {"id": "demo-agent", "actor": {"id": "demo-agent"}}
