"""The token issuance mapping end to end: a bridge whose token endpoint asks a second
bridge process, acting as its remote PDP, in the OpenID AuthZEN token issuance profile's
words; the second bridge serves `policies/issuance` and advertises the profile's capability.

Gates on audiences, verbatim scopes and locations, narrowing, the token exchange binding's
two gates (either denied: `invalid_request`), an ID-JAG asked on two levels; and a PDP
that does not advertise the capability is not asked at all (the token endpoint fails
closed). `context.issuance` over HTTP comes from a recording PDP at the end (the Cedar
engine returns none).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import POLICIES, ServerThread, bridge_process, free_port
from tests.oauth_fixtures import (
    ISSUER,
    OAuthServer,
    assert_oauth_error,
    exchange_form,
    idp_token,
    oauth_server,
    rar,
    read_details,
)
from tests.support.scripted_pdp import ScriptedPDP

CRM = "https://crm.example.com"
BANK = "https://bank.example.com"
PARTNER_AS = "https://as.partner.example"
PARTNER_API = "https://api.partner.example/"
ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"
CAPABILITY = "urn:openid:authzen:capability:token-issuance"

# Workload identities (actor tokens): a second trusted issuer whose subjects are workloads.
WORKLOADS = "https://workloads.test"
WORKLOAD_KEY = ECKey.generate_key("P-256", parameters={"kid": "wl-1"}, private=True)
GATEWAY = "spiffe://cluster/ns/prod/sa/gateway"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return body


def inline_toml(value: Any) -> str:
    """A JSON value as TOML (objects as inline tables)."""
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {inline_toml(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(inline_toml(v) for v in value) + "]"
    return json.dumps(value)


def issuance_config(url: str, token_claims: tuple[str, ...] = ()) -> str:
    jwks = inline_toml({"keys": [WORKLOAD_KEY.as_dict(private=False)]})
    return f"""
[pdp]
kind = "remote"
mapping = "token_issuance"
token_claims = {json.dumps(list(token_claims))}

[pdp.remote]
url = "{url}"
retries = 0

[[oauth.trusted_issuers]]
issuer = "{WORKLOADS}"
subject_type = "workload"
jwks = {jwks}
"""


@pytest.fixture(scope="module")
def pdp_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The second bridge: `policies/issuance`, advertising the capability, and the
    certification store, which does not."""
    port = free_port()
    folder = tmp_path_factory.mktemp("issuance-pdp")
    config = folder / "bridge.toml"
    config.write_text(
        f"""[server]
public_url = "http://127.0.0.1:{port}"

[stores.issuance]
path = {json.dumps(str(POLICIES / "issuance"))}
token_issuance = true

[stores.certification]
path = {json.dumps(str(POLICIES / "certification"))}
""",
        encoding="utf-8",
    )
    with bridge_process(config, port) as proc:
        url: str = proc.url  # type: ignore[attr-defined]
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pdp_bridge: str) -> Iterator[OAuthServer]:
    folder: Path = tmp_path_factory.mktemp("issuance-as")
    with oauth_server(folder, extra=issuance_config(f"{pdp_bridge}/stores/issuance")) as running:
        yield running


def test_the_pdp_bridge_advertises_the_capability(server: OAuthServer, pdp_bridge: str) -> None:
    metadata = server.http.get(f"{pdp_bridge}/.well-known/authzen-configuration/stores/issuance")
    assert CAPABILITY in metadata.json()["capabilities"]
    other = server.http.get(f"{pdp_bridge}/.well-known/authzen-configuration/stores/certification")
    assert CAPABILITY not in other.json()["capabilities"]


# -- gates, scopes, cells -------------------------------------------------------------------


def test_client_credentials_gate_and_scope(server: OAuthServer) -> None:
    body = server.issued(
        {"grant_type": "client_credentials", "scope": "customer_records:read", "resource": CRM}
    )
    assert body["scope"] == "customer_records:read"
    claims = claims_of(body["access_token"])
    assert claims["aud"] == [CRM]
    assert claims["sub"] == "demo-agent"


def test_a_gate_the_policies_deny_is_invalid_target(server: OAuthServer) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": "customer_records:read",
        "resource": "https://telemetry.example",
    }
    body = assert_oauth_error(server.token(form), "invalid_target")
    assert body["error_description"] == "no requested target is permitted"


def test_a_denied_cell_narrows_the_entry(server: OAuthServer) -> None:
    details = read_details("c-1", "locked")
    body = server.issued(
        {"grant_type": "client_credentials", "authorization_details": rar(details)}
    )
    # The locked record's cell was denied: the entry keeps the other location.
    assert body["authorization_details"] == [
        {**details[0], "locations": ["https://crm.example.com/customers/c-1"]}
    ]
    # No `resource`: the target was the locations' origin, as `aud` always was.
    assert claims_of(body["access_token"])["aud"] == [CRM]


def test_a_scope_denied_at_one_of_two_targets_is_not_granted(server: OAuthServer) -> None:
    form: dict[str, str | list[str]] = {
        "grant_type": "client_credentials",
        "scope": "customer_records:read",
        "resource": [CRM, BANK],
    }
    assert_oauth_error(server.token(form), "invalid_scope")
    # With entries that survive at both, the entries are granted, for both audiences.
    details = read_details("c-1")
    body = server.issued(
        {
            "grant_type": "client_credentials",
            "authorization_details": rar(details),
            "resource": [CRM, BANK],
        }
    )
    assert claims_of(body["access_token"])["aud"] == [CRM, BANK]


# -- token exchange: two gates --------------------------------------------------------------


def test_token_exchange_asks_both_gates(server: OAuthServer) -> None:
    subject_token = idp_token("alice@example.com", expires_in=120)
    form = exchange_form(read_details("c-1"), subject_token=subject_token) | {"resource": CRM}
    body = server.issued(form)
    claims = claims_of(body["access_token"])
    assert claims["act"] == {"sub": "demo-agent"} and claims["aud"] == [CRM]
    # Within the subject token's remaining lifetime, and no refresh token outlives it.
    assert body["expires_in"] <= 120
    assert "refresh_token" not in body


def test_the_requesting_partys_gate_denied_is_invalid_request(server: OAuthServer) -> None:
    form = exchange_form(read_details("c-1")) | {"resource": CRM}
    body = assert_oauth_error(server.token(form, client="other-agent"), "invalid_request")
    assert body["error_description"] == "the token exchange is not permitted"


def test_the_subjects_gate_denied_is_the_same_invalid_request(server: OAuthServer) -> None:
    form = exchange_form(read_details("c-1"), subject_token=idp_token("mallory@example.com"))
    body = assert_oauth_error(server.token(form | {"resource": CRM}), "invalid_request")
    # The same words: the requesting party learns nothing of whose authority was lacking.
    assert body["error_description"] == "the token exchange is not permitted"


def test_an_actor_tokens_party_is_the_requesting_party(server: OAuthServer) -> None:
    actor = idp_token(GATEWAY, key=WORKLOAD_KEY, iss=WORKLOADS)
    form = exchange_form(read_details("c-1"), actor_token=actor)
    body = server.issued(form | {"resource": CRM})
    assert claims_of(body["access_token"])["act"] == {"sub": GATEWAY, "iss": WORKLOADS}
    # The gateway may act for people at the CRM only.
    payment = [
        {
            "type": "payment_initiation",
            "actions": ["initiate"],
            "locations": ["https://bank.example.com/payments"],
            "instructedAmount": {"currency": "EUR", "amount": "12.00"},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        }
    ]
    refused = exchange_form(payment, actor_token=actor)
    assert_oauth_error(server.token(refused), "invalid_request")


# -- ID-JAG: two levels ---------------------------------------------------------------------


def id_jag_form(resource: str, **extra: str) -> dict[str, str]:
    return {
        **exchange_form(subject_token=idp_token("alice@example.com")),
        "requested_token_type": ID_JAG,
        "audience": PARTNER_AS,
        "resource": resource,
        **extra,
    }


def test_an_id_jag_for_the_partners_authorization_server(server: OAuthServer) -> None:
    body = server.issued(id_jag_form(PARTNER_API, scope="customer_records:read"))
    assert body["issued_token_type"] == ID_JAG
    assert body["token_type"] == "N_A"
    assert body["scope"] == "customer_records:read"
    assert "refresh_token" not in body
    jag = body["access_token"]
    assert header_of(jag)["typ"] == "oauth-id-jag+jwt"
    claims = claims_of(jag)
    assert claims["aud"] == PARTNER_AS
    assert claims["resource"] == PARTNER_API
    assert claims["client_id"] == "demo-agent"
    assert claims["iss"] == ISSUER


def test_an_id_jag_scope_denied_at_level_two_is_removed(server: OAuthServer) -> None:
    form = id_jag_form("https://api.elsewhere.example/", scope="customer_records:read")
    assert_oauth_error(server.token(form), "invalid_scope")


def test_an_id_jag_for_another_authorization_server_is_refused(server: OAuthServer) -> None:
    form = id_jag_form(PARTNER_API) | {"audience": "https://as.elsewhere.example"}
    assert_oauth_error(server.token(form), "invalid_target")


# -- a PDP that does not speak the profile -------------------------------------------------


def test_a_pdp_without_the_capability_is_not_asked(tmp_path: Path) -> None:
    # A PDP whose metadata names no token issuance capability: the bridge finds that out
    # at discovery and asks it nothing (a permit it might give would be no answer to the
    # profile's questions).
    scripted = ScriptedPDP(capabilities=())
    with ServerThread(scripted.app) as thread:
        scripted.url = thread.url
        with oauth_server(tmp_path, extra=issuance_config(thread.url)) as other:
            form = {
                "grant_type": "client_credentials",
                "scope": "customer_records:read",
                "resource": CRM,
            }
            assert_oauth_error(other.token(form), "server_error", 500)
    assert scripted.asked("evaluation") == [] and scripted.asked("evaluations") == []


# -- context.issuance over HTTP --------------------------------------------------------------


class ShapingPDP:
    """An AuthZEN PDP that speaks the issuance profile: permits everything, caps the gate's
    token at 120 s with a `groups` claim, and records what it was asked where."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/authzen-configuration", self._metadata),
                Route("/access/v1/evaluation", self._evaluation, methods=["POST"]),
                Route("/access/v1/evaluations", self._evaluations, methods=["POST"]),
            ]
        )

    async def _metadata(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "policy_decision_point": self.url,
                "access_evaluation_endpoint": self.url + "/access/v1/evaluation",
                "access_evaluations_endpoint": self.url + "/access/v1/evaluations",
                "capabilities": [CAPABILITY],
            }
        )

    @staticmethod
    def _answer(item: dict[str, Any]) -> dict[str, Any]:
        if item["action"]["name"].startswith("issue:"):
            issuance = {"token_lifetime": 120, "claims": {"groups": ["engineering"], "tier": "x"}}
            return {"decision": True, "context": {"issuance": issuance, "reason_admin": "P-1"}}
        return {"decision": True}

    async def _evaluation(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(("evaluation", body))
        return JSONResponse(self._answer(body))

    async def _evaluations(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(("evaluations", body))
        return JSONResponse({"evaluations": [self._answer(i) for i in body["evaluations"]]})


@pytest.fixture(scope="module")
def shaping_pdp() -> Iterator[ShapingPDP]:
    pdp = ShapingPDP()
    with ServerThread(pdp.app) as thread:
        pdp.url = thread.url
        yield pdp


@pytest.fixture(scope="module")
def shaped_server(
    tmp_path_factory: pytest.TempPathFactory, shaping_pdp: ShapingPDP
) -> Iterator[OAuthServer]:
    extra = issuance_config(shaping_pdp.url, token_claims=("groups",))
    with oauth_server(tmp_path_factory.mktemp("shaped"), extra=extra) as running:
        yield running


def test_the_pdps_shaping_reaches_the_token(
    shaped_server: OAuthServer, shaping_pdp: ShapingPDP
) -> None:
    shaping_pdp.calls.clear()
    body = shaped_server.issued(
        {"grant_type": "client_credentials", "scope": "customer_records:read", "resource": CRM}
    )
    assert body["expires_in"] == 120
    claims = claims_of(body["access_token"])
    assert claims["groups"] == ["engineering"]
    assert "tier" not in claims  # not a claim this deployment carries
    assert claims["exp"] - claims["iat"] == 120
    ((where, asked),) = shaping_pdp.calls
    assert where == "evaluations"
    gate, scope = asked["evaluations"]
    assert gate["action"] == {"name": "issue:access_token:client_credentials"}
    assert gate["resource"] == {"type": "audience", "id": CRM}
    assert scope["action"] == {"name": "customer_records:read"}
    # The token carries the `jti` the PDP was told (§5.4.1).
    assert gate["context"]["jti"] == claims["jti"]


def test_a_gate_alone_goes_to_the_access_evaluation_api(
    shaped_server: OAuthServer, shaping_pdp: ShapingPDP
) -> None:
    shaping_pdp.calls.clear()
    body = shaped_server.issued({"grant_type": "client_credentials", "resource": CRM})
    assert "scope" not in body and "authorization_details" not in body
    ((where, asked),) = shaping_pdp.calls
    assert where == "evaluation"
    assert asked["action"] == {"name": "issue:access_token:client_credentials"}
