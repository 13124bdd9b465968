"""`authorization_details` validation: each step of the bridge's order (AROP notes §9) refuses
with its own exact description, and an earlier step wins over a later one whichever entry
the problems are in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.rar import ProfileSet, check_authorization_details, load_profiles
from bridge.rar import parse_authorization_details as parse
from bridge.rar.errors import InvalidAuthorizationDetails

REPO = Path(__file__).resolve().parents[1]
PROFILES = load_profiles(REPO / "profiles")

READ = {"type": "customer_records", "actions": ["read"], "identifier": "42"}
PAYMENT = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}


def refused(
    raw: str | list[Any],
    *,
    allowed: frozenset[str] | None = None,
    max_entries: int = 10,
    profiles: ProfileSet = PROFILES,
) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        parse(text, profiles, allowed_types=allowed, max_entries=max_entries)
    assert caught.value.error == "invalid_authorization_details"
    assert caught.value.description is not None
    return caught.value.description


def test_valid_entries_come_back_unchanged() -> None:
    entries = [READ, PAYMENT]
    assert parse(json.dumps(entries), PROFILES, allowed_types=None, max_entries=2) == entries
    allowed = frozenset({"customer_records", "payment_initiation"})
    assert check_authorization_details(entries, PROFILES, allowed_types=allowed, max_entries=2)


# Step 1: strict JSON.
@pytest.mark.parametrize(
    ("raw", "description"),
    [
        (
            "not json",
            "authorization_details: not valid JSON (Expecting value: line 1 column 1 (char 0))",
        ),
        ('[{"type": "a", "type": "b"}]', 'authorization_details: duplicate member "type"'),
        ("[NaN]", "authorization_details: not valid JSON (NaN is not JSON)"),
    ],
)
def test_json_must_be_strict(raw: str, description: str) -> None:
    assert refused(raw) == description


# Step 2: a non-empty array within the limit.
def test_must_be_an_array() -> None:
    assert refused(json.dumps(READ)) == "authorization_details: must be a JSON array"


def test_must_not_be_empty() -> None:
    assert refused([]) == "authorization_details: must not be empty"


def test_more_entries_than_allowed() -> None:
    assert refused([READ] * 3, max_entries=2) == "authorization_details: more than 2 entries"
    assert parse(json.dumps([READ] * 2), PROFILES, allowed_types=None, max_entries=2)


# Step 3: objects with a non-empty string `type`.
@pytest.mark.parametrize(
    ("element", "description"),
    [
        ("x", "authorization_details[1]: must be an object"),
        ({"actions": ["read"]}, 'authorization_details[1]: "type" is required'),
        ({"type": 7}, "authorization_details[1].type: must be a non-empty string"),
        ({"type": ""}, "authorization_details[1].type: must be a non-empty string"),
    ],
)
def test_each_element_is_an_object_with_a_type(element: Any, description: str) -> None:
    assert refused([READ, element]) == description


# Step 4: the type is known.
def test_unknown_type() -> None:
    assert refused([READ, {"type": "foo"}]) == 'authorization_details[1]: unknown type "foo"'


def test_long_values_are_cut() -> None:
    description = refused([{"type": "x" * 5000}])
    assert description == 'authorization_details[0]: unknown type "' + "x" * 37 + '..."'


# Step 5: the type is allowed for the client.
def test_type_not_allowed_for_client() -> None:
    description = refused([READ, PAYMENT], allowed=frozenset({"customer_records"}))
    assert description == (
        'authorization_details[1]: type "payment_initiation" is not allowed for this client'
    )


# Step 6: the common fields have the right JSON types.
@pytest.mark.parametrize(
    ("member", "value", "description"),
    [
        ("actions", "read", "authorization_details[0].actions: must be an array of strings"),
        ("actions", ["read", "export", 3], "authorization_details[0].actions[2]: must be a string"),
        ("locations", [None], "authorization_details[0].locations[0]: must be a string"),
        ("datatypes", {}, "authorization_details[0].datatypes: must be an array of strings"),
        ("privileges", [["x"]], "authorization_details[0].privileges[0]: must be a string"),
        ("identifier", 42, "authorization_details[0].identifier: must be a string"),
    ],
)
def test_common_fields_have_their_json_types(member: str, value: Any, description: str) -> None:
    assert refused([{**READ, member: value}]) == description


# Step 7: the type's JSON Schema.
@pytest.mark.parametrize(
    ("entry", "description"),
    [
        (
            {**READ, "actions": ["read", "export", "delete"]},
            'authorization_details[0].actions[2]: "delete" is not one of ["read", "export"]',
        ),
        ({**READ, "colour": "blue"}, 'authorization_details[0]: unknown member "colour"'),
        ({"type": "customer_records"}, 'authorization_details[0]: "actions" is required'),
        (
            {**READ, "locations": ["https://evil.example.com/customers/42"]},
            'authorization_details[0].locations[0]: "https://evil.example.com/customers/42" '
            "does not match the pattern ^https://crm[.]example[.]com/customers/[^/]+$",
        ),
        (
            {**READ, "actions": []},
            "authorization_details[0].actions: must have at least 1 element",
        ),
        (
            {**PAYMENT, "instructedAmount": {"currency": "EUR", "amount": 12.5}},
            "authorization_details[0].instructedAmount.amount: must be a string",
        ),
        (
            {**PAYMENT, "creditorAccount": {}},
            'authorization_details[0].creditorAccount: "iban" is required',
        ),
        (
            {**PAYMENT, "creditorName": "n" * 500},
            "authorization_details[0].creditorName: must be at most 140 characters long",
        ),
    ],
)
def test_type_schema(entry: dict[str, Any], description: str) -> None:
    assert refused([entry]) == description


def test_schema_messages_cut_long_values() -> None:
    description = refused([{**READ, "locations": ["https://crm.example.com/" + "a/" * 2000]}])
    assert description.startswith('authorization_details[0].locations[0]: "https://crm.')
    assert '..." does not match the pattern' in description
    assert len(description) < 200


# The order holds across entries: an earlier step wins over a later one elsewhere.
@pytest.mark.parametrize(
    ("entries", "description"),
    [
        ([{"type": "foo"}, "x"], "authorization_details[1]: must be an object"),
        (
            [{**READ, "colour": 1}, {"type": "foo"}],
            'authorization_details[1]: unknown type "foo"',
        ),
        (
            [{**READ, "actions": "read"}, PAYMENT],
            'authorization_details[1]: type "payment_initiation" is not allowed for this client',
        ),
        (
            [{**READ, "colour": 1}, {**READ, "identifier": 1}],
            "authorization_details[1].identifier: must be a string",
        ),
    ],
)
def test_steps_run_in_order_over_all_entries(entries: list[Any], description: str) -> None:
    assert refused(entries, allowed=frozenset({"customer_records"})) == description


def test_size_limit_comes_before_any_element_check() -> None:
    # The size limit is checked before looking into any element.
    assert refused([{"type": "foo"}] * 3, max_entries=2) == (
        "authorization_details: more than 2 entries"
    )


def test_no_profiles_means_every_type_is_unknown() -> None:
    assert refused([READ], profiles=ProfileSet()) == (
        'authorization_details[0]: unknown type "customer_records"'
    )


def test_of_several_schema_problems_the_shallowest_is_reported() -> None:
    entry = {"type": "customer_records", "actions": ["delete"], "colour": 1}
    assert refused([entry]) == 'authorization_details[0]: unknown member "colour"'
