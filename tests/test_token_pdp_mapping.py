"""What the token endpoint asks the PDP (AROP §2), seen from a remote AuthZEN PDP that records
every request: the principal and actor, one pair per (location x action), the context set;
all-or-nothing denial; and no PDP call for a request that fails its own checks (§3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import ServerThread
from tests.oauth_fixtures import (
    IDP,
    DPoPKey,
    OAuthServer,
    assert_oauth_error,
    exchange_form,
    idp_token,
    oauth_server,
    payment,
    rar,
    read_details,
)


class RecordingPDP:
    """AuthZEN Access Evaluations: permits everything except the `export` action."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self.app = Starlette(
            routes=[Route("/access/v1/evaluations", self._evaluations, methods=["POST"])]
        )

    async def _evaluations(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(body)
        decisions = [
            {"decision": item["action"]["name"] != "export"} for item in body["evaluations"]
        ]
        return JSONResponse({"evaluations": decisions})

    def only_call(self) -> list[dict[str, Any]]:
        assert len(self.calls) == 1, self.calls
        evaluations: list[dict[str, Any]] = self.calls.pop()["evaluations"]
        return evaluations


@pytest.fixture(scope="module")
def pdp() -> Iterator[RecordingPDP]:
    recorder = RecordingPDP()
    with ServerThread(recorder.app) as thread:
        recorder.url = thread.url
        yield recorder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pdp: RecordingPDP) -> Iterator[OAuthServer]:
    extra = f"""
[pdp]
kind = "remote"

[pdp.remote]
url = "{pdp.url}"
retries = 0
discovery = false
"""
    folder: Path = tmp_path_factory.mktemp("pdp-mapping")
    with oauth_server(folder, extra=extra) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(pdp: RecordingPDP) -> None:
    pdp.calls.clear()


def test_token_exchange_with_actor_and_dpop(server: OAuthServer, pdp: RecordingPDP) -> None:
    key = DPoPKey()
    details = read_details("c-4815", "c-4816", actions=("read",))
    form = exchange_form(
        details,
        subject_token=idp_token("alice@example.com"),
        actor_token=idp_token("agent-7"),
    ) | {"resource": "https://api.crm.example.com/"}
    server.issued(form, client="demo-public", dpop=key.proof())
    evaluations = pdp.only_call()
    assert [e["resource"] for e in evaluations] == [
        {"type": "CustomerRecord", "id": "c-4815"},
        {"type": "CustomerRecord", "id": "c-4816"},
    ]
    for evaluation in evaluations:
        assert evaluation["subject"] == {
            "type": "user",
            "id": "alice@example.com",
            "properties": {"act": {"sub": "agent-7", "iss": IDP}},
        }
        assert evaluation["action"] == {"name": "read"}
        assert evaluation["context"] == {
            "client_id": "demo-public",
            "dpop_jkt": key.jkt,
            "resource": ["https://api.crm.example.com/"],
        }


def test_one_pair_per_location_and_action(server: OAuthServer, pdp: RecordingPDP) -> None:
    details = [
        {
            "type": "customer_records",
            "actions": ["read"],
            "locations": [
                "https://crm.example.com/customers/a",
                "https://crm.example.com/customers/b",
            ],
        },
        {"type": "customer_records", "actions": ["read"], "identifier": "c"},
    ]
    server.issued({"grant_type": "client_credentials", "authorization_details": rar(details)})
    evaluations = pdp.only_call()
    assert [(e["resource"]["id"], e["action"]["name"]) for e in evaluations] == [
        ("a", "read"),
        ("b", "read"),
        ("c", "read"),
    ]
    assert evaluations[0]["subject"] == {"type": "client", "id": "demo-agent"}
    assert evaluations[0]["context"] == {"client_id": "demo-agent"}


def test_payment_members_reach_the_pdp(server: OAuthServer, pdp: RecordingPDP) -> None:
    server.issued({"grant_type": "client_credentials", "authorization_details": rar(payment())})
    (evaluation,) = pdp.only_call()
    resource = evaluation["resource"]
    assert resource["type"] == "Payment" and resource["id"] == "payment"
    assert resource["properties"]["amount_minor"] == 12350
    assert resource["properties"]["currency"] == "EUR"
    assert resource["properties"]["creditorName"] == "Merchant A"
    assert evaluation["action"] == {"name": "initiate"}


def test_scope_maps_through_the_profile(server: OAuthServer, pdp: RecordingPDP) -> None:
    server.issued({"grant_type": "client_credentials", "scope": "customer_records:read"})
    (evaluation,) = pdp.only_call()
    assert evaluation["resource"] == {"type": "CustomerRecord", "id": "*"}
    assert evaluation["action"] == {"name": "read"}


def test_one_denied_pair_refuses_the_whole_request(server: OAuthServer, pdp: RecordingPDP) -> None:
    details = read_details("c-1") + read_details("c-2", actions=("read", "export"))
    form = {"grant_type": "client_credentials", "authorization_details": rar(details)}
    body = assert_oauth_error(server.token(form), "invalid_authorization_details")
    assert "authorization_details[1]" in body["error_description"]
    assert "export" in body["error_description"]
    assert len(pdp.only_call()) == 3  # asked as one batch


CC = "client_credentials"
BAD_RAR = {"grant_type": CC, "authorization_details": '[{"type": 1}]'}
WRONG_SECRET = {"client_id": "post-client", "client_secret": "wrong"}
PAYMENT = {"grant_type": CC, "authorization_details": rar(payment())}


@pytest.mark.parametrize(
    ("form", "client", "error"),
    [
        (BAD_RAR, "demo-agent", "invalid_authorization_details"),
        ({"grant_type": CC, "scope": "ledger:read"}, "demo-agent", "invalid_scope"),
        (PAYMENT | WRONG_SECRET, None, "invalid_client"),
        (exchange_form(read_details("c-1"), subject_token="x"), "demo-agent", "invalid_grant"),
    ],
    ids=["rar syntax", "unmapped scope", "client", "grant"],
)
def test_no_pdp_call_for_a_request_that_fails_its_own_checks(
    server: OAuthServer, pdp: RecordingPDP, form: dict[str, str], client: str | None, error: str
) -> None:
    assert_oauth_error(server.token(form, client=client), error)
    assert pdp.calls == []


def test_no_pdp_call_without_the_required_dpop_proof(
    server: OAuthServer, pdp: RecordingPDP
) -> None:
    response = server.token(exchange_form(read_details("c-1")), client="demo-public")
    assert_oauth_error(response, "invalid_dpop_proof")
    assert pdp.calls == []
