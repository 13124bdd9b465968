"""The token issuance mapping's token exchange binding (openid/authzen
`profiles/authzen-oauth/authzen-oauth-token-exchange-1_0.md`), against its examples (§8):
two gates, the subject's then the requesting party's (the actor token's, else the client),
both required and refused alike; the context keys; an ID-JAG asked on two levels."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.authzen.models import Subject
from bridge.errors import InvalidRequest, InvalidScope
from bridge.oauth.errors import InvalidTarget
from bridge.oauth.grants.base import Delegation, Principal
from bridge.oauth.pdp_mapping import AskedToken
from bridge.rar import ProfileSet
from tests.support.token_issuance import (
    ACCESS_TOKEN_TYPE,
    ID_JAG_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    asked,
    client,
    decisions,
    example_profiles,
    mapping,
    no_hints,
    person,
    wire,
)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSet:
    return example_profiles(tmp_path_factory.mktemp("profiles"))


# -- the token exchange binding (§4, §8) ---------------------------------------------------

PARTNER = "https://api.partner.example"
GATEWAY = Subject(type="workload", id="spiffe://cluster/ns/prod/sa/gateway")


def exchange(profiles: ProfileSet, delegation: Delegation, **members: Any) -> AskedToken:
    return asked(
        TOKEN_EXCHANGE,
        client("gateway-client", ["read:docs"]),
        person("alice@example.com", client_id="gateway-client", delegation=delegation),
        profiles,
        **members,
    )


def test_delegation_with_an_actor_token_has_two_gates(profiles: ProfileSet) -> None:
    delegation = Delegation(
        requesting_party=GATEWAY,
        subject_token_type=ACCESS_TOKEN_TYPE,
        actor_token_type=JWT_TOKEN_TYPE,
        subject_claims={
            "iss": "https://idp.example",
            "sub": "alice@example.com",
            "exp": 1900000000,
            "acr": "urn:example:loa:2",
            "may_act": {"sub": "spiffe://cluster/ns/prod/sa/gateway"},
            "email": "not for the PDP",
        },
        requested_token_type=ACCESS_TOKEN_TYPE,
        audience=(PARTNER,),
        expires_at=1900000000,
    )
    request = exchange(profiles, delegation, scope=["read:docs"])
    planned = mapping(profiles).plan(request)
    alice = {"type": "user", "id": "alice@example.com"}
    gateway = {"type": "workload", "id": GATEWAY.id}
    assert [(wire(p)["subject"], wire(p)["action"]["name"]) for p in planned] == [
        (alice, "issue:access_token:token_exchange"),  # the subject's gate, index 0
        (gateway, "issue:access_token:token_exchange"),  # the requesting party's, index 1
        (alice, "read:docs"),  # scopes are the exchange subject's
    ]
    assert {wire(p)["resource"]["id"] for p in planned} == {PARTNER}
    assert wire(planned[0])["context"] == {
        "client_id": "gateway-client",
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token_type": JWT_TOKEN_TYPE,
        "subject_token": {
            "iss": "https://idp.example",
            "sub": "alice@example.com",
            "exp": 1900000000,
            "acr": "urn:example:loa:2",
        },
        "may_act": {"sub": "spiffe://cluster/ns/prod/sa/gateway"},
    }
    granted = mapping(profiles).grant(request, planned, decisions(True, True, True), no_hints)
    assert granted.scope == ["read:docs"]
    assert granted.shape is not None and granted.shape.expires_at == 1900000000


@pytest.mark.parametrize("denied", [0, 1], ids=["subject", "requesting party"])
def test_either_gate_denied_is_invalid_request_without_saying_which(
    profiles: ProfileSet, denied: int
) -> None:
    delegation = Delegation(requesting_party=GATEWAY, audience=(PARTNER,))
    request = exchange(profiles, delegation, scope=["read:docs"])
    planned = mapping(profiles).plan(request)
    answers = [True, True, True]
    answers[denied] = False
    with pytest.raises(InvalidRequest) as refused:
        mapping(profiles).grant(request, planned, decisions(*answers), no_hints)
    assert refused.value.description == "the token exchange is not permitted"


def test_without_an_actor_token_the_client_is_the_requesting_party(profiles: ProfileSet) -> None:
    request = exchange(profiles, Delegation(), resource=[PARTNER])
    planned = mapping(profiles).plan(request)
    assert [wire(p)["subject"] for p in planned] == [
        {"type": "user", "id": "alice@example.com"},
        {"type": "client", "id": "gateway-client"},
    ]


def test_a_client_exchanging_its_own_token_has_one_gate(profiles: ProfileSet) -> None:
    request = asked(
        TOKEN_EXCHANGE,
        client("svc"),
        Principal(
            subject=Subject(type="client", id="svc"), token_sub="svc", delegation=Delegation()
        ),
        profiles,
        resource=[PARTNER],
    )
    assert len(mapping(profiles).plan(request)) == 1


def test_id_jag_is_asked_on_two_levels(profiles: ProfileSet) -> None:
    delegation = Delegation(
        requested_token_type=ID_JAG_TOKEN_TYPE, audience=("https://as.app.example",)
    )
    request = asked(
        TOKEN_EXCHANGE,
        client("chatterbox-idp-7f3a", ["files.read"]),
        person("U0405936", client_id="chatterbox-idp-7f3a", delegation=delegation),
        profiles,
        scope=["files.read"],
        resource=["https://api.app.example/files", "https://api.app.example/photos"],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert [(p.action, p.target, p.level) for p in planned] == [
        ("issue:id_jag:token_exchange", "https://as.app.example", 1),
        ("issue:id_jag:token_exchange", "https://as.app.example", 1),
        ("files.read", "https://as.app.example", 1),
        ("files.read", "https://api.app.example/files", 2),
        ("files.read", "https://api.app.example/photos", 2),
    ]
    # A level-2 scope denial removes the scope from the artifact entirely.
    with pytest.raises(InvalidScope):
        issuance.grant(request, planned, decisions(True, True, True, True, False), no_hints)
    # Level 1 denied: no delegation into that trust domain.
    with pytest.raises(InvalidTarget):
        issuance.grant(request, planned, decisions(True, False, True, True, True), no_hints)
    granted = issuance.grant(request, planned, decisions(True, True, True, True, True), no_hints)
    assert granted.shape is not None
    assert granted.shape.token_type == "id_jag"
    assert granted.shape.audience == ("https://as.app.example",)
    assert granted.resource == ["https://api.app.example/files", "https://api.app.example/photos"]


def test_scopeless_id_jag_takes_the_granted_scope(profiles: ProfileSet) -> None:
    delegation = Delegation(
        requested_token_type=ID_JAG_TOKEN_TYPE, audience=("https://as.app.example",)
    )
    request = asked(
        TOKEN_EXCHANGE,
        client("chatterbox-idp-7f3a", ["files.read", "files.write"]),
        person("U0405936", client_id="chatterbox-idp-7f3a", delegation=delegation),
        profiles,
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert [wire(p)["subject"]["type"] for p in planned] == ["user", "client"]
    shaped = {
        "decision": True,
        "context": {"issuance": {"granted_scope": "files.read", "token_lifetime": 300}},
    }
    granted = issuance.grant(request, planned, decisions(shaped, True), no_hints)
    assert granted.scope == ["files.read"]
    assert granted.shape is not None and granted.shape.token_lifetime == 300
