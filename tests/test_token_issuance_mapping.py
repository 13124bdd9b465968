"""The token issuance mapping (`pdp.mapping = "token_issuance"`), rule by rule against the
examples of the OpenID AuthZEN token issuance profile (§9): which tuples a token request
becomes, in which order, and what the decisions leave of it (narrowing, errors). The token
exchange binding is tests/test_token_issuance_exchange.py, `context.issuance`
tests/test_token_issuance_shaping.py."""

from __future__ import annotations

import pytest

from bridge.errors import InvalidScope
from bridge.oauth.errors import InvalidTarget
from bridge.oauth.pdp_mapping import AskedToken
from bridge.rar import ProfileSet
from bridge.rar.errors import InvalidAuthorizationDetails
from bridge.rar.token_issuance import gate_action
from bridge.rar.translate import PlannedEvaluation
from tests.support.token_issuance import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    ISSUER,
    asked,
    client,
    decisions,
    example_profiles,
    itself,
    mapping,
    no_hints,
    person,
    wire,
)

TELEMETRY = "https://telemetry.example"
FILES = "https://api.example/files"
CUSTOMERS = "https://example.com/customers"
EU_CUSTOMERS = "https://eu.example.com/customers"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSet:
    return example_profiles(tmp_path_factory.mktemp("profiles"))


def audience(target: str) -> dict[str, str]:
    return {"type": "audience", "id": target}


def info(location: str) -> dict[str, str]:
    return {"type": "customer_information", "id": location}


# -- names (§5.3.1, §5.3.2) --------------------------------------------------------------


def test_gate_names_compose_registered_short_names() -> None:
    assert gate_action("access_token", "client_credentials") == (
        "issue:access_token:client_credentials"
    )
    assert gate_action("id_jag", "token_exchange") == "issue:id_jag:token_exchange"
    with pytest.raises(ValueError):
        gate_action("access-token", "client_credentials")  # the hyphen is excluded
    with pytest.raises(ValueError):
        gate_action("access_token", "a" * 22)  # at most 21 characters


# -- §9.1 client credentials, one scope ----------------------------------------------------


def test_client_credentials_one_scope_is_a_gate_and_a_scope_tuple(profiles: ProfileSet) -> None:
    agent = client("svc-reporting", ["telemetry.write"])
    request = asked(
        CLIENT_CREDENTIALS,
        agent,
        itself("svc-reporting"),
        profiles,
        scope=["telemetry.write"],
        resource=[TELEMETRY],
    )
    planned = mapping(profiles).plan(request)
    subject = {"type": "client", "id": "svc-reporting"}
    assert [wire(p) for p in planned] == [
        {
            "subject": subject,
            "action": {"name": "issue:access_token:client_credentials"},
            "resource": audience(TELEMETRY),
            "context": {"client_id": "svc-reporting"},
        },
        {
            "subject": subject,
            "action": {"name": "telemetry.write"},
            "resource": audience(TELEMETRY),
            "context": {"client_id": "svc-reporting"},
        },
    ]
    # §5.4.1: the `jti` of the token to mint, the same on every tuple of the request.
    jtis = {p.request.context["jti"] for p in planned if p.request.context}
    assert len(jtis) == 1


# -- §9.2 authorization code, downscoping --------------------------------------------------


def test_a_denied_scope_narrows_the_token(profiles: ProfileSet) -> None:
    chatterbox = client("chatterbox", ["files.read", "files.write", "files.delete"])
    scopes = ["files.read", "files.write", "files.delete"]
    request = asked(
        AUTHORIZATION_CODE,
        chatterbox,
        person("U0405936", client_id="chatterbox", authentication={"acr": "urn:example:loa:2"}),
        profiles,
        scope=scopes,
        resource=[FILES],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert [p.action for p in planned] == ["issue:access_token:authorization_code", *scopes]
    # The subject is who the token represents: AROP's `properties.act` is left out (the
    # client is `context.client_id`).
    assert wire(planned[0])["subject"] == {"type": "user", "id": "U0405936"}
    assert wire(planned[0])["context"] == {"client_id": "chatterbox", "acr": "urn:example:loa:2"}
    granted = issuance.grant(request, planned, decisions(True, True, True, False), no_hints)
    assert granted.scope == ["files.read", "files.write"]
    assert granted.shape is not None and granted.shape.audience == (FILES,)


def test_every_scope_denied_is_invalid_scope(profiles: ProfileSet) -> None:
    chatterbox = client("chatterbox", ["files.read"])
    request = asked(
        AUTHORIZATION_CODE,
        chatterbox,
        person("U0405936", client_id="chatterbox"),
        profiles,
        scope=["files.read"],
        resource=[FILES],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    with pytest.raises(InvalidScope):
        issuance.grant(request, planned, decisions(True, False), no_hints)


def test_a_denied_gate_on_the_one_target_is_invalid_target(profiles: ProfileSet) -> None:
    agent = client("svc-reporting", ["telemetry.write"])
    request = asked(
        CLIENT_CREDENTIALS,
        agent,
        itself("svc-reporting"),
        profiles,
        scope=["telemetry.write"],
        resource=[TELEMETRY],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    with pytest.raises(InvalidTarget) as refused:
        issuance.grant(request, planned, decisions(False, True), no_hints)
    # The bridge's words, never a PDP's reasons (§8).
    assert refused.value.description == "no requested target is permitted"


def test_the_reserved_issue_prefix_is_no_scope(profiles: ProfileSet) -> None:
    agent = client("svc", ["issue:access_token:client_credentials"])
    request = asked(
        CLIENT_CREDENTIALS,
        agent,
        itself("svc"),
        profiles,
        scope=["issue:access_token:client_credentials"],
    )
    with pytest.raises(InvalidScope):
        mapping(profiles).plan(request)


# -- §9.3 no scopes requested ------------------------------------------------------------


def test_no_scopes_is_a_gate_alone(profiles: ProfileSet) -> None:
    agent = client("svc-reporting", ["telemetry.write", "telemetry.read"])
    request = asked(
        CLIENT_CREDENTIALS, agent, itself("svc-reporting"), profiles, resource=[TELEMETRY]
    )
    issuance = mapping(profiles)
    assert issuance.allows_no_access and issuance.lone_evaluation  # /evaluation, not a batch
    planned = issuance.plan(request)
    assert [p.action for p in planned] == ["issue:access_token:client_credentials"]
    # A bare permit grants no scope: what no PDP named is not granted.
    assert issuance.grant(request, planned, decisions(True), no_hints).scope == []
    # `granted_scope` picks from the client's registered scopes (the default set).
    answer = {"decision": True, "context": {"issuance": {"granted_scope": "telemetry.write"}}}
    granted = issuance.grant(request, planned, decisions(answer), no_hints)
    assert granted.scope == ["telemetry.write"]


def test_without_a_resource_the_default_audience_is_the_target(profiles: ProfileSet) -> None:
    agent = client("demo-agent", ["customer_records:read"])
    details = [
        {
            "type": "customer_records",
            "actions": ["read"],
            "locations": ["https://crm.example.com/customers/c-1"],
        }
    ]
    request = asked(CLIENT_CREDENTIALS, agent, itself("demo-agent"), profiles, details=details)
    planned = mapping(profiles).plan(request)
    # The origin of the locations, as a token's `aud` has always been; else the issuer.
    assert planned[0].request.resource.id == "https://crm.example.com"
    scoped = asked(
        CLIENT_CREDENTIALS, agent, itself("demo-agent"), profiles, scope=["customer_records:read"]
    )
    assert mapping(profiles).plan(scoped)[0].request.resource.id == ISSUER


# -- §9.4 authorization details, one entry -------------------------------------------------


def test_one_entry_one_cell(profiles: ProfileSet) -> None:
    chatterbox = client("chatterbox")
    entry = {
        "type": "customer_information",
        "locations": [CUSTOMERS],
        "actions": ["read"],
        "datatypes": ["contacts"],
    }
    request = asked(
        AUTHORIZATION_CODE,
        chatterbox,
        person("U0405936", client_id="chatterbox"),
        profiles,
        details=[entry],
        resource=[CUSTOMERS],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert [(wire(p)["action"], wire(p)["resource"]) for p in planned] == [
        ({"name": "issue:access_token:authorization_code"}, audience(CUSTOMERS)),
        ({"name": "read:contacts"}, info(CUSTOMERS)),
    ]
    granted = issuance.grant(request, planned, decisions(True, True), no_hints)
    assert granted.details == [entry]  # every cell permitted: the entry unchanged


# -- §9.5 authorization details across two targets -----------------------------------------

TWO_BY_TWO = {
    "type": "customer_information",
    "locations": [CUSTOMERS, EU_CUSTOMERS],
    "actions": ["read"],
    "datatypes": ["contacts", "photos"],
}


def two_targets(profiles: ProfileSet) -> tuple[AskedToken, list[PlannedEvaluation]]:
    request = asked(
        AUTHORIZATION_CODE,
        client("chatterbox"),
        person("U0405936", client_id="chatterbox"),
        profiles,
        details=[TWO_BY_TWO],
        resource=[CUSTOMERS, EU_CUSTOMERS],
    )
    return request, list(mapping(profiles).plan(request))


def test_two_targets_are_six_evaluations_gates_first(profiles: ProfileSet) -> None:
    _, planned = two_targets(profiles)
    assert [(wire(p)["action"]["name"], wire(p)["resource"]) for p in planned] == [
        ("issue:access_token:authorization_code", audience(CUSTOMERS)),
        ("issue:access_token:authorization_code", audience(EU_CUSTOMERS)),
        ("read:contacts", info(CUSTOMERS)),
        ("read:photos", info(CUSTOMERS)),
        ("read:contacts", info(EU_CUSTOMERS)),
        ("read:photos", info(EU_CUSTOMERS)),
    ]


def test_a_denied_cell_splits_its_entry(profiles: ProfileSet) -> None:
    request, planned = two_targets(profiles)
    denied = decisions(True, True, True, True, True, False)
    granted = mapping(profiles).grant(request, planned, denied, no_hints)
    assert granted.details == [
        {
            "type": "customer_information",
            "locations": [CUSTOMERS],
            "actions": ["read"],
            "datatypes": ["contacts", "photos"],
        },
        {
            "type": "customer_information",
            "locations": [EU_CUSTOMERS],
            "actions": ["read"],
            "datatypes": ["contacts"],
        },
    ]
    assert granted.shape is not None and granted.shape.audience == (CUSTOMERS, EU_CUSTOMERS)


def test_a_denied_gate_drops_its_target_and_what_was_asked_there(profiles: ProfileSet) -> None:
    request, planned = two_targets(profiles)
    # The second gate denied: the EU cells are disregarded, permitted or not.
    denied = decisions(True, False, True, True, True, False)
    granted = mapping(profiles).grant(request, planned, denied, no_hints)
    assert granted.details == [{**TWO_BY_TWO, "locations": [CUSTOMERS]}]
    assert granted.shape is not None and granted.shape.audience == (CUSTOMERS,)
    assert granted.resource == [CUSTOMERS]


def test_no_entry_left_is_invalid_authorization_details(profiles: ProfileSet) -> None:
    request, planned = two_targets(profiles)
    denied = decisions(True, True, False, False, False, False)
    with pytest.raises(InvalidAuthorizationDetails):
        mapping(profiles).grant(request, planned, denied, no_hints)


# -- absent members (§5.3.4) and the scope intersection (§5.5.5) ----------------------------


def test_absent_members_take_the_targets_and_the_reserved_action(profiles: ProfileSet) -> None:
    request = asked(
        AUTHORIZATION_CODE,
        client("chatterbox"),
        person("U0405936", client_id="chatterbox"),
        profiles,
        details=[{"type": "customer_information", "datatypes": ["a:b", "photos"]}],
        resource=[CUSTOMERS, EU_CUSTOMERS],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    # No locations: each target; no actions: `authorization_detail`; a datatype holding a
    # colon: no compound names at all for that entry.
    assert [(p.request.action.name, p.request.resource.id) for p in planned[2:]] == [
        ("authorization_detail", CUSTOMERS),
        ("authorization_detail", EU_CUSTOMERS),
    ]
    # A cell fanned across targets survives only where every surviving target permitted it.
    with pytest.raises(InvalidAuthorizationDetails):
        issuance.grant(request, planned, decisions(True, True, True, False), no_hints)
    granted = issuance.grant(request, planned, decisions(True, False, True, False), no_hints)
    assert granted.details == [{"type": "customer_information", "datatypes": ["a:b", "photos"]}]


def test_a_scope_survives_only_where_every_target_permits_it(profiles: ProfileSet) -> None:
    chatterbox = client("chatterbox", ["files.read", "files.write"])
    request = asked(
        AUTHORIZATION_CODE,
        chatterbox,
        person("U0405936", client_id="chatterbox"),
        profiles,
        scope=["files.read", "files.write"],
        resource=[CUSTOMERS, EU_CUSTOMERS],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert [(p.action, p.target) for p in planned] == [
        ("issue:access_token:authorization_code", CUSTOMERS),
        ("issue:access_token:authorization_code", EU_CUSTOMERS),
        ("files.read", CUSTOMERS),
        ("files.write", CUSTOMERS),
        ("files.read", EU_CUSTOMERS),
        ("files.write", EU_CUSTOMERS),
    ]
    granted = issuance.grant(
        request, planned, decisions(True, True, True, True, True, False), no_hints
    )
    assert granted.scope == ["files.read"]
    # ...but a denial at a target that was removed does not count.
    granted = issuance.grant(
        request, planned, decisions(True, False, True, True, True, False), no_hints
    )
    assert granted.scope == ["files.read", "files.write"]


# -- the bound (§5.5.3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "error"),
    [(1, InvalidTarget), (3, InvalidScope), (7, InvalidAuthorizationDetails)],
    ids=["targets", "scopes", "cells"],
)
def test_the_fan_out_is_bounded_with_the_parameters_error(
    profiles: ProfileSet, bound: int, error: type[Exception]
) -> None:
    # Two targets (2 gates) x two scopes (4 scope tuples) + one entry of 4 cells = 10.
    request = asked(
        AUTHORIZATION_CODE,
        client("chatterbox", ["files.read", "files.write"]),
        person("U0405936", client_id="chatterbox"),
        profiles,
        scope=["files.read", "files.write"],
        details=[TWO_BY_TWO],
        resource=[CUSTOMERS, EU_CUSTOMERS],
    )
    with pytest.raises(error):
        mapping(profiles, max_evaluations=bound).plan(request)
    assert len(mapping(profiles, max_evaluations=10).plan(request)) == 10
