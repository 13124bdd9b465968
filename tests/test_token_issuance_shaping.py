"""`context.issuance` under the token issuance mapping (profile §6): each key narrows only,
the items combine (§6.5), and anything the bridge cannot apply fails closed: a reserved
claim, two items disagreeing on a claim, a `crit` claim tokens do not carry, a broader
`granted_scope` or `authorization_details`, a member it does not know."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.authzen.models import Action, Decision, EvaluationRequest, Resource, Subject
from bridge.oauth.errors import InvalidTarget
from bridge.oauth.issuance_shaping import NotAsApproved, UnusableIssuance, redeemed_shape
from bridge.oauth.pdp_mapping import AskedToken, Granted
from bridge.rar import ProfileSet
from bridge.rar.token_issuance import targets_of
from tests.support.token_issuance import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    asked,
    client,
    decisions,
    example_profiles,
    itself,
    mapping,
    no_hints,
    person,
)

TELEMETRY = "https://telemetry.example"
FILES = "https://api.example/files"
CUSTOMERS = "https://example.com/customers"
EU_CUSTOMERS = "https://eu.example.com/customers"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSet:
    return example_profiles(tmp_path_factory.mktemp("profiles"))


def shaped(issuance: dict[str, Any], decision: bool = True, **context: Any) -> dict[str, Any]:
    return {"decision": decision, "context": {"issuance": issuance, **context}}


def downscoping(
    profiles: ProfileSet, *answers: bool | dict[str, Any], claims: tuple[str, ...] = ()
) -> Granted:
    """§9.2's request (a gate and three scopes at one target), decided as `answers` say."""
    scopes = ["files.read", "files.write", "files.delete"]
    request = asked(
        AUTHORIZATION_CODE,
        client("chatterbox", scopes),
        person("U0405936", client_id="chatterbox"),
        profiles,
        scope=scopes,
        resource=[FILES],
    )
    issuance = mapping(profiles, token_claims=claims)
    planned = issuance.plan(request)
    return issuance.grant(request, planned, decisions(*answers), no_hints)


def test_the_lifetime_is_the_smallest_ceiling(profiles: ProfileSet) -> None:
    granted = downscoping(
        profiles,
        shaped({"token_lifetime": 900}),
        shaped({"token_lifetime": 300}),
        True,
        shaped({"token_lifetime": 5}, decision=False),  # a denied item's shaping is ignored
    )
    assert granted.shape is not None and granted.shape.token_lifetime == 300
    assert granted.scope == ["files.read", "files.write"]


def test_claims_reach_the_token_when_the_deployment_carries_them(profiles: ProfileSet) -> None:
    answers = (
        True,
        shaped({"claims": {"groups": ["engineering"]}}, reason_admin={"200": "P-4471"}),
        True,
        {"decision": False, "context": {"reason_admin": {"403": "policy P-118"}}},
    )
    granted = downscoping(profiles, *answers, claims=("groups",))
    assert granted.shape is not None and granted.shape.claims == {"groups": ["engineering"]}
    # Not on the deployment's list: advisory, dropped (§6.4.5).
    granted = downscoping(profiles, *answers)
    assert granted.shape is not None and granted.shape.claims == {}


def test_a_crit_claim_is_carried_or_refuses(profiles: ProfileSet) -> None:
    limit = shaped({"claims": {"max_transfer_eur": 500}, "crit": ["max_transfer_eur"]})
    granted = downscoping(profiles, limit, True, True, True, claims=("max_transfer_eur",))
    assert granted.shape is not None and granted.shape.claims == {"max_transfer_eur": 500}
    with pytest.raises(UnusableIssuance, match="crit"):
        downscoping(profiles, limit, True, True, True)


@pytest.mark.parametrize(
    "issuance",
    [
        {"claims": {"sub": "someone-else"}},
        {"claims": {"may_act": {"sub": "x"}}},
        {"token_lifetime": -1},
        {"token_lifetime": True},
        {"granted_scope": ["files.read"]},
        {"audience": "https://api.example/files"},
        {"audience": ["https://elsewhere.example"]},
        {"crit": "groups"},
        {"max_amount": 5},  # not a member the bridge understands
    ],
    ids=[
        "reserved sub",
        "reserved may_act",
        "negative lifetime",
        "boolean lifetime",
        "scope as array",
        "audience as string",
        "another target",
        "crit as string",
        "unknown member",
    ],
)
def test_unusable_shaping_fails_closed(profiles: ProfileSet, issuance: dict[str, Any]) -> None:
    with pytest.raises(UnusableIssuance):
        downscoping(profiles, shaped(issuance), True, True, True)


def test_two_items_disagreeing_on_a_claim_refuse(profiles: ProfileSet) -> None:
    one, other = shaped({"claims": {"tier": "gold"}}), shaped({"claims": {"tier": "silver"}})
    with pytest.raises(UnusableIssuance, match="tier"):
        downscoping(profiles, one, other, True, True, claims=("tier",))
    same = downscoping(profiles, one, one, True, True, claims=("tier",))
    assert same.shape is not None and same.shape.claims == {"tier": "gold"}


def test_a_lifetime_of_zero_is_a_denial(profiles: ProfileSet) -> None:
    granted = downscoping(profiles, True, True, shaped({"token_lifetime": 0}), True)
    assert granted.scope == ["files.read", "files.delete"]
    with pytest.raises(InvalidTarget):
        downscoping(profiles, shaped({"token_lifetime": 0}), True, True, True)


def test_granted_scope_narrows_never_widens(profiles: ProfileSet) -> None:
    granted = downscoping(profiles, shaped({"granted_scope": "files.read"}), True, True, True)
    assert granted.scope == ["files.read"]
    with pytest.raises(UnusableIssuance, match="granted_scope"):
        downscoping(profiles, shaped({"granted_scope": "files.read admin"}), True, True, True)


def test_an_empty_audience_withdraws_its_target(profiles: ProfileSet) -> None:
    request = asked(
        CLIENT_CREDENTIALS,
        client("svc", ["telemetry.write"]),
        itself("svc"),
        profiles,
        scope=["telemetry.write"],
        resource=[TELEMETRY, FILES],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    assert targets_of(planned) == [TELEMETRY, FILES]
    answers = decisions(True, shaped({"audience": []}), True, True)
    granted = issuance.grant(request, planned, answers, no_hints)
    assert granted.shape is not None and granted.shape.audience == (TELEMETRY,)
    assert granted.resource == [TELEMETRY]
    both = decisions(shaped({"audience": []}), shaped({"audience": []}), True, True)
    with pytest.raises(InvalidTarget):
        issuance.grant(request, planned, both, no_hints)


# -- returned authorization_details (§6.4.4) ------------------------------------------------

TWO_LOCATIONS = {
    "type": "customer_information",
    "locations": [CUSTOMERS, EU_CUSTOMERS],
    "actions": ["read"],
}


def with_details(
    profiles: ProfileSet, details: list[dict[str, Any]], returned: list[Any], *cells: bool
) -> Granted:
    request: AskedToken = asked(
        AUTHORIZATION_CODE,
        client("chatterbox"),
        person("U0405936", client_id="chatterbox"),
        profiles,
        details=details,
        resource=[CUSTOMERS, EU_CUSTOMERS],
    )
    issuance = mapping(profiles)
    planned = issuance.plan(request)
    gates: list[bool | dict[str, Any]] = [shaped({"authorization_details": returned}), True]
    return issuance.grant(request, planned, decisions(*gates, *cells), no_hints)


def test_returned_entries_replace_the_reassembled_ones(profiles: ProfileSet) -> None:
    narrower = [{**TWO_LOCATIONS, "locations": [EU_CUSTOMERS], "datatypes": ["contacts"]}]
    # A member the request left out may be added: that narrows it.
    assert with_details(profiles, [TWO_LOCATIONS], narrower, True, True).details == narrower
    # Intersected with the permitted cells: the EU cell was denied.
    trimmed = with_details(profiles, [TWO_LOCATIONS], [TWO_LOCATIONS], True, False)
    assert trimmed.details == [{**TWO_LOCATIONS, "locations": [CUSTOMERS]}]


@pytest.mark.parametrize(
    "returned",
    [
        [{**TWO_LOCATIONS, "locations": ["https://elsewhere.example/customers"]}],
        [{**TWO_LOCATIONS, "actions": ["read", "write"]}],
        [{"type": "customer_information", "locations": [CUSTOMERS]}],
        [{"type": "customer_records", "actions": ["read"]}],
        [{**TWO_LOCATIONS, "color": "blue"}],
        ["not an entry"],
    ],
    ids=[
        "another location",
        "another action",
        "a member dropped",
        "another type",
        "a member the type does not allow",
        "not an object",
    ],
)
def test_returned_entries_must_be_narrower(profiles: ProfileSet, returned: list[Any]) -> None:
    with pytest.raises(UnusableIssuance, match="authorization_details"):
        with_details(profiles, [TWO_LOCATIONS], returned, True, True)


def test_an_entry_covered_only_by_two_request_entries_together_is_refused(
    profiles: ProfileSet,
) -> None:
    # RFC 9396 Figure 6: read contacts here, write photos there; "read photos" is in
    # neither, though it is in their union.
    figure_6 = [
        {
            "type": "customer_information",
            "locations": [CUSTOMERS],
            "actions": ["read"],
            "datatypes": ["contacts"],
        },
        {
            "type": "customer_information",
            "locations": [CUSTOMERS],
            "actions": ["write"],
            "datatypes": ["photos"],
        },
    ]
    read_photos = [{**figure_6[0], "datatypes": ["photos"]}]
    with pytest.raises(UnusableIssuance):
        with_details(profiles, figure_6, read_photos, True, True)


def test_an_entry_without_locations_may_only_name_requested_targets(profiles: ProfileSet) -> None:
    anywhere = {"type": "customer_information", "actions": ["read"]}
    at_one = [{**anywhere, "locations": [CUSTOMERS]}]
    assert with_details(profiles, [anywhere], at_one, True, True).details == at_one
    with pytest.raises(UnusableIssuance):
        with_details(
            profiles, [anywhere], [{**anywhere, "locations": ["https://x.example"]}], True, True
        )


# -- at the redemption of a deferred request: all or nothing ---------------------------------


def gate(target: str) -> EvaluationRequest:
    return EvaluationRequest(
        subject=Subject(type="user", id="alice"),
        action=Action(name="issue:access_token:authorization_code"),
        resource=Resource(type="audience", id=target),
        context={"client_id": "demo-web", "subject_token": {"exp": 1900000000}},
    )


def scope(value: str, target: str) -> EvaluationRequest:
    return gate(target).model_copy(update={"action": Action(name=value)})


def test_redemption_applies_lifetime_and_claims_and_refuses_narrowing() -> None:
    evaluations = [gate(FILES), scope("files.read", FILES)]
    permit = [
        Decision(True, {"issuance": {"token_lifetime": 120, "claims": {"tier": "gold"}}}),
        Decision(True),
    ]
    shape = redeemed_shape(
        evaluations, permit, scope=["files.read"], details=[], allowed_claims=frozenset({"tier"})
    )
    assert shape is not None
    assert shape.audience == (FILES,) and shape.token_lifetime == 120
    assert shape.claims == {"tier": "gold"} and shape.expires_at == 1900000000
    narrowings: list[dict[str, Any]] = [
        {"token_lifetime": 0},
        {"audience": []},
        {"granted_scope": "files.write"},
        {"authorization_details": []},
    ]
    for narrowing in narrowings:
        with pytest.raises(NotAsApproved):
            redeemed_shape(
                evaluations,
                [Decision(True, {"issuance": narrowing}), Decision(True)],
                scope=["files.read"],
                details=[{"type": "customer_information"}],
                allowed_claims=frozenset(),
            )


def test_redemption_of_the_access_request_mappings_evaluations_has_no_shape() -> None:
    arop = EvaluationRequest(
        subject=Subject(type="user", id="alice"),
        action=Action(name="read"),
        resource=Resource(type="CustomerRecord", id="c-1"),
    )
    answer = [Decision(True, {"issuance": {"token_lifetime": 1}})]
    assert redeemed_shape([arop], answer, scope=[], details=[], allowed_claims=frozenset()) is None
