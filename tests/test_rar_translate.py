"""Translating validated entries and scope values into AuthZEN evaluations: the product of
locations and actions, the resource-id rules, resource properties and context, derived
values (minor units), scope mapping, and the descriptions of denials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import load_store
from bridge.authzen.models import Subject
from bridge.authzen.pagination import Paginator
from bridge.errors import InvalidScope
from bridge.rar import (
    PlannedEvaluation,
    ProfileSet,
    TokenRequestContext,
    describe_denial,
    load_profiles,
    plan_evaluations,
    refusal,
)
from bridge.rar.errors import InvalidAuthorizationDetails

REPO = Path(__file__).resolve().parents[1]
SHIPPED = load_profiles(REPO / "profiles")
ALICE = Subject(type="user", id="alice@example.com", properties={"act": {"sub": "agent-7"}})
REQUEST = TokenRequestContext(subject=ALICE, client_id="agent-7", dpop_jkt="0ZcOCORZ")
CRM = "https://crm.example.com/customers/"

PAYMENT = {
    "type": "payment_initiation",
    "actions": ["initiate", "status"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}


@pytest.fixture
def lax(tmp_path: Path) -> ProfileSet:
    """`lax`: auto ids, no patterns, derived values; `ledger`: a fixed id and fixed actions."""
    members = ["type", "actions", "locations", "identifier", "datatypes", "amount", "nested"]
    schema = {
        "type": "object",
        "properties": {name: {} for name in members},
        "additionalProperties": False,
    }
    lax = {
        "type": "lax",
        "description": "Anything goes, for tests.",
        "schema": schema,
        "authzen": {
            "resource_type": "Thing",
            "resource_id": "auto",
            "actions": "actions",
            "properties": {
                "amount_minor": {"pointer": "/amount", "as": "minor_units", "scale": 2},
                "first_tag": "/nested/tags/0",
            },
            "context": {"purpose": "/nested/purpose"},
        },
    }
    ledger = {
        **lax,
        "type": "ledger",
        "authzen": {
            "resource_type": "Ledger",
            "resource_id": {"value": "main"},
            "actions": {"value": ["read", "audit"]},
        },
        "scopes": {"ledger:read": {"resource_id": "main", "action": "read"}},
    }
    for data in (lax, ledger):
        (tmp_path / f"{data['type']}.json").write_text(json.dumps(data), encoding="utf-8")
    return load_profiles(tmp_path)


def plan(
    entries: list[dict[str, Any]],
    profiles: ProfileSet = SHIPPED,
    scopes: list[str] | None = None,
    request: TokenRequestContext = REQUEST,
) -> list[PlannedEvaluation]:
    return plan_evaluations(entries, scopes, request, profiles)


def pairs(planned: list[PlannedEvaluation]) -> list[tuple[str, str]]:
    return [(p.request.resource.id, p.request.action.name) for p in planned]


def entry_error(entries: list[dict[str, Any]], profiles: ProfileSet = SHIPPED) -> str | None:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        plan(entries, profiles)
    return caught.value.description


def test_the_arop_worked_example() -> None:
    entry = {"type": "customer_records", "actions": ["read"], "locations": [CRM + "c-4815"]}
    [planned] = plan([entry])
    assert planned.request.model_dump(exclude_none=True) == {
        "subject": {
            "type": "user",
            "id": "alice@example.com",
            "properties": {"act": {"sub": "agent-7"}},
        },
        "resource": {"type": "CustomerRecord", "id": "c-4815"},
        "action": {"name": "read"},
        "context": {"client_id": "agent-7", "dpop_jkt": "0ZcOCORZ"},
    }
    assert (planned.source, planned.entry_index, planned.action) == (
        "authorization_details",
        0,
        "read",
    )


def test_one_evaluation_per_location_and_action() -> None:
    entry = {
        "type": "customer_records",
        "actions": ["read", "export"],
        "locations": [CRM + "1", CRM + "2", CRM + "3"],
    }
    assert pairs(plan([entry])) == [
        ("1", "read"),
        ("1", "export"),
        ("2", "read"),
        ("2", "export"),
        ("3", "read"),
        ("3", "export"),
    ]


def test_identifier_when_there_are_no_locations() -> None:
    [planned] = plan([{"type": "customer_records", "actions": ["read"], "identifier": "77"}])
    assert planned.request.resource.id == "77"
    assert planned.request.resource.properties is None


def test_locations_win_over_identifier_which_becomes_a_property(lax: ProfileSet) -> None:
    entry = {
        "type": "lax",
        "actions": ["read"],
        "locations": ["https://x.example/9"],
        "identifier": "7",
    }
    [planned] = plan([entry], lax)
    assert planned.request.resource.id == "9"
    assert planned.request.resource.properties == {"identifier": "7"}


def test_other_members_and_derived_values_become_properties(lax: ProfileSet) -> None:
    entry = {
        "type": "lax",
        "actions": ["read"],
        "identifier": "1",
        "datatypes": ["contacts"],
        "amount": "10.5",
        "nested": {"tags": ["red", "blue"], "purpose": "audit"},
    }
    [planned] = plan([entry], lax)
    assert planned.request.resource.properties == {
        "datatypes": ["contacts"],
        "amount": "10.5",
        "nested": {"tags": ["red", "blue"], "purpose": "audit"},
        "amount_minor": 1050,
        "first_tag": "red",
    }
    assert planned.request.context == {
        "client_id": "agent-7",
        "dpop_jkt": "0ZcOCORZ",
        "purpose": "audit",
    }


def test_derived_values_that_are_absent_are_left_out(lax: ProfileSet) -> None:
    [planned] = plan([{"type": "lax", "actions": ["read"], "identifier": "1", "nested": {}}], lax)
    assert planned.request.resource.properties == {"nested": {}}
    assert planned.request.context == {"client_id": "agent-7", "dpop_jkt": "0ZcOCORZ"}


def test_payment_initiation_gives_integer_amounts() -> None:
    planned = plan(
        [PAYMENT], request=TokenRequestContext(ALICE, "agent-7", None, ["https://example.com/"])
    )
    assert pairs(planned) == [("payment", "initiate"), ("payment", "status")]
    resource = planned[0].request.resource
    assert resource.type == "Payment"
    assert resource.properties == {
        "locations": ["https://example.com/payments"],
        "instructedAmount": {"currency": "EUR", "amount": "123.50"},
        "creditorName": "Merchant A",
        "creditorAccount": {"iban": "DE02100100109307118603"},
        "amount_minor": 12350,
        "currency": "EUR",
    }
    assert planned[0].request.context == {
        "client_id": "agent-7",
        "resource": ["https://example.com/"],
    }


def test_fixed_id_and_actions_keep_the_entry_members_as_properties(lax: ProfileSet) -> None:
    entry = {"type": "ledger", "actions": ["x"], "locations": ["https://l.example/books"]}
    planned = plan([entry], lax)
    assert pairs(planned) == [("main", "read"), ("main", "audit")]
    assert planned[0].request.resource.properties == {
        "actions": ["x"],
        "locations": ["https://l.example/books"],
    }


def test_scopes_map_through_profiles(lax: ProfileSet) -> None:
    planned = plan([], lax, scopes=["ledger:read", "ledger:read"])
    [only] = planned
    assert (only.source, only.scope, only.entry_index) == ("scope", "ledger:read", None)
    assert only.request.model_dump(exclude_none=True)["resource"] == {
        "type": "Ledger",
        "id": "main",
    }
    assert only.request.context == {"client_id": "agent-7", "dpop_jkt": "0ZcOCORZ"}


def test_entries_come_before_scopes() -> None:
    entry = {"type": "customer_records", "actions": ["export"], "identifier": "42"}
    planned = plan([entry], scopes=["customer_records:read"])
    assert [(p.source, *pair) for p, pair in zip(planned, pairs(planned), strict=True)] == [
        ("authorization_details", "42", "export"),
        ("scope", "*", "read"),
    ]


def test_unknown_scope_is_named() -> None:
    with pytest.raises(InvalidScope) as caught:
        plan([], scopes=["customer_records:read", "openid"])
    assert caught.value.description == 'unknown scope "openid"'


def test_too_many_evaluations() -> None:
    entry = {
        "type": "customer_records",
        "actions": ["read", "export"],
        "locations": [CRM + "1", CRM + "2"],
    }
    assert len(plan_evaluations([entry], None, REQUEST, SHIPPED, max_evaluations=4)) == 4
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        plan_evaluations([entry], None, REQUEST, SHIPPED, max_evaluations=3)
    assert caught.value.description == (
        "authorization_details: the request needs more than 3 evaluations"
    )
    with pytest.raises(InvalidScope):
        plan_evaluations([entry], ["customer_records:read"], REQUEST, SHIPPED, max_evaluations=4)


def test_denials_are_described_without_policy() -> None:
    entry = {"type": "customer_records", "actions": ["read", "export"], "identifier": "42"}
    planned = plan([{**entry, "identifier": "1"}, entry], scopes=["customer_records:read"])
    export, scope = planned[3], planned[4]
    assert describe_denial(export) == (
        'authorization_details[1]: action "export" on CustomerRecord "42" is not permitted'
    )
    assert describe_denial(scope) == (
        'scope "customer_records:read": action "read" on CustomerRecord "*" is not permitted'
    )
    assert isinstance(refusal(export), InvalidAuthorizationDetails)
    assert isinstance(refusal(scope), InvalidScope)
    assert refusal(scope).description == describe_denial(scope)


@pytest.mark.parametrize(("amount", "permitted"), [("1000.00", True), ("1000.01", False)])
async def test_the_default_store_decides_translated_payments(amount: str, permitted: bool) -> None:
    # The contract between profile and policy: Cedar compares `amount_minor` as a Long.
    store = load_store("default", REPO / "policies" / "default")
    pdp = CedarPDP(StoreHolder(store), Paginator(None, 10), explanations=False)
    entry = {
        **PAYMENT,
        "actions": ["initiate"],
        "instructedAmount": {"currency": "EUR", "amount": amount},
    }
    planned = plan([entry])
    decisions = await pdp.evaluations([p.request for p in planned])
    assert [d.decision for d in decisions] == [permitted]
