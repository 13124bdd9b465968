"""The mapping rules AROP leaves to the bridge: which `resource.id` a location names, when an
entry names no resource or action, and the exact conversion of decimal amounts to integer
minor units, with every value that cannot be converted refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bridge.authzen.models import Subject
from bridge.rar import (
    ProfileSet,
    TokenRequestContext,
    load_profiles,
    parse_authorization_details,
    plan_evaluations,
)
from bridge.rar.errors import InvalidAuthorizationDetails
from bridge.rar.pointers import NotRepresentable, to_minor_units

REQUEST = TokenRequestContext(subject=Subject(type="user", id="alice"), client_id="agent-7")


@pytest.fixture
def lax(tmp_path: Path) -> ProfileSet:
    """Type `lax`: any member values, resource ids from locations, amounts in minor units."""
    members = ["type", "actions", "locations", "identifier", "amount"]
    data = {
        "type": "lax",
        "description": "Anything goes, for tests.",
        "schema": {
            "type": "object",
            "properties": {name: {} for name in members},
            "additionalProperties": False,
        },
        "authzen": {
            "resource_type": "Thing",
            "resource_id": "auto",
            "actions": "actions",
            "properties": {"amount_minor": {"pointer": "/amount", "as": "minor_units", "scale": 2}},
        },
    }
    (tmp_path / "lax.json").write_text(json.dumps(data), encoding="utf-8")
    return load_profiles(tmp_path)


def pairs(entry: dict[str, Any], profiles: ProfileSet) -> list[tuple[str, str]]:
    planned = plan_evaluations([entry], None, REQUEST, profiles)
    return [(p.request.resource.id, p.request.action.name) for p in planned]


def entry_error(entry: dict[str, Any], profiles: ProfileSet) -> str | None:
    with pytest.raises(InvalidAuthorizationDetails) as caught:
        plan_evaluations([entry], None, REQUEST, profiles)
    return caught.value.description


@pytest.mark.parametrize(
    ("location", "resource_id"),
    [
        ("https://crm.example.com/customers/42", "42"),
        ("https://crm.example.com/customers/42/", "42"),
        ("https://crm.example.com/customers/42//", "42"),
        ("https://crm.example.com/customers/a%20b%2Fc", "a b/c"),
        ("https://crm.example.com/customers/caf%C3%A9", "café"),
        ("https://crm.example.com/customers/42?view=full#top", "42"),
        ("https://crm.example.com/", "https://crm.example.com/"),
        ("https://crm.example.com", "https://crm.example.com"),
        ("urn:example:customer:42", "urn:example:customer:42"),
        ("customers/42", "customers/42"),
        ("http://[::1/x", "http://[::1/x"),
    ],
)
def test_resource_id_is_the_last_path_segment(
    lax: ProfileSet, location: str, resource_id: str
) -> None:
    assert pairs({"type": "lax", "actions": ["read"], "locations": [location]}, lax) == [
        (resource_id, "read")
    ]


def test_a_segment_that_is_not_utf8_is_refused(lax: ProfileSet) -> None:
    entry = {
        "type": "lax",
        "actions": ["read"],
        "locations": ["https://x.example/a", "https://x.example/%FF"],
    }
    assert entry_error(entry, lax) == (
        "authorization_details[0].locations[1]: the last path segment is not UTF-8 once decoded"
    )


@pytest.mark.parametrize(
    ("entry", "description"),
    [
        (
            {"type": "lax", "actions": ["read"]},
            'authorization_details[0]: "locations" or "identifier" is required to name the '
            "resource",
        ),
        ({"type": "lax", "identifier": "1"}, 'authorization_details[0]: "actions" is required'),
        (
            {"type": "lax", "actions": [], "identifier": "1"},
            "authorization_details[0].actions: must not be empty",
        ),
        (
            {"type": "lax", "actions": ["read", ""], "identifier": "1"},
            "authorization_details[0].actions[1]: must not be empty",
        ),
        (
            {"type": "lax", "actions": ["read"], "locations": []},
            "authorization_details[0].locations: must not be empty",
        ),
        (
            {"type": "lax", "actions": ["read"], "locations": ["https://x.example/1", ""]},
            "authorization_details[0].locations[1]: must not be empty",
        ),
        (
            {"type": "lax", "actions": ["read"], "identifier": ""},
            "authorization_details[0].identifier: must not be empty",
        ),
    ],
)
def test_entries_that_name_nothing_are_refused(
    lax: ProfileSet, entry: dict[str, Any], description: str
) -> None:
    assert entry_error(entry, lax) == description


def test_repeated_actions_and_ids_are_evaluated_once(lax: ProfileSet) -> None:
    entry = {
        "type": "lax",
        "actions": ["read", "read"],
        "locations": ["https://a.example/1", "https://b.example/1"],
    }
    assert pairs(entry, lax) == [("1", "read")]


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        ("123.50", 12350),
        ("123.5", 12350),
        ("0", 0),
        ("-5.25", -525),
        ("1.230", 123),
        (10, 1000),
        (123.45, 12345),
        (0.1, 10),
        ("92233720368547758.07", 2**63 - 1),
    ],
)
def test_minor_units(lax: ProfileSet, amount: Any, minor: int) -> None:
    entry = {"type": "lax", "actions": ["pay"], "identifier": "1", "amount": amount}
    [planned] = plan_evaluations([entry], None, REQUEST, lax)
    assert planned.request.resource.properties is not None
    assert planned.request.resource.properties["amount_minor"] == minor


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("1.234", "has more than 2 decimal places"),
        (1.005, "has more than 2 decimal places"),
        ("1e3", "must be a plain decimal number such as 123.45"),
        (" 1", "must be a plain decimal number such as 123.45"),
        ("01.5", "must be a plain decimal number such as 123.45"),
        ("", "must be a plain decimal number such as 123.45"),
        (True, "must be a decimal string or a number"),
        (None, "must be a decimal string or a number"),
        ({"value": "1"}, "must be a decimal string or a number"),
        ("92233720368547758.08", "is too large for a 64-bit integer of minor units"),
        ("9" * 80, "is too long for a 64-bit integer of minor units"),
    ],
)
def test_minor_units_that_cannot_be_represented(lax: ProfileSet, amount: Any, reason: str) -> None:
    entry = {"type": "lax", "actions": ["pay"], "identifier": "1", "amount": amount}
    assert entry_error(entry, lax) == (
        f"authorization_details[0].amount: {reason} (as minor units, scale 2)"
    )


@pytest.mark.parametrize(
    ("value", "scale", "units"),
    [("7", 0, 7), ("1.5", 3, 1500), ("0.001", 3, 1), (1e15, 2, 10**17), (-0.5, 1, -5)],
)
def test_minor_units_at_other_scales(value: Any, scale: int, units: int) -> None:
    assert to_minor_units(value, scale) == units


@pytest.mark.parametrize(
    ("value", "scale", "reason"),
    [
        ("1.5", 0, "has more than 0 decimal places"),
        (float("inf"), 2, "must be a finite number"),
        (float("nan"), 2, "must be a finite number"),
        (1e300, 2, "is too long for a 64-bit integer of minor units"),
    ],
)
def test_minor_units_refused_at_other_scales(value: Any, scale: int, reason: str) -> None:
    with pytest.raises(NotRepresentable) as caught:
        to_minor_units(value, scale)
    assert str(caught.value) == reason


DOCS = Path(__file__).resolve().parents[1] / "docs" / "profiles.md"
WORKED = {
    "customer_records": TokenRequestContext(
        subject=Subject(
            type="user", id="alice@example.com", properties={"act": {"sub": "agent-7"}}
        ),
        client_id="agent-7",
        dpop_jkt="0ZcOCORZ",
    ),
    "payment_initiation": TokenRequestContext(
        subject=Subject(type="client", id="shop-backend"),
        client_id="shop-backend",
        resource=["https://example.com/payments"],
    ),
}


def doc_example(name: str) -> Any:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", text, re.DOTALL)
    assert match is not None, f"no example {name!r} in {DOCS.name}"
    return json.loads(match.group(1))


@pytest.mark.parametrize("type_", sorted(WORKED))
def test_worked_examples_in_the_docs(type_: str) -> None:
    profiles = load_profiles(DOCS.parents[1] / "profiles")
    raw = json.dumps(doc_example(f"{type_} request"))
    entries = parse_authorization_details(raw, profiles, allowed_types=None, max_entries=5)
    planned = plan_evaluations(entries, None, WORKED[type_], profiles)
    got = [p.request.model_dump(exclude_none=True) for p in planned]
    assert got == doc_example(f"{type_} evaluations")
