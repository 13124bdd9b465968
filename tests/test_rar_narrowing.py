"""A refresh may keep or narrow the granted `authorization_details`, never broaden them."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.rar import is_narrowing

GRANTED: list[dict[str, Any]] = [
    {
        "type": "customer_records",
        "actions": ["read", "export"],
        "locations": ["https://crm.example.com/customers/1", "https://crm.example.com/customers/2"],
    },
    {"type": "payment_initiation", "actions": ["status"], "identifier": "p-1", "amount": 10},
]


def entry(**changes: Any) -> dict[str, Any]:
    out = {**GRANTED[0], **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    "requested",
    [
        [GRANTED[0]],
        GRANTED,
        [GRANTED[1], GRANTED[0]],
        [entry(actions=["read"])],
        [entry(actions=["export", "read"])],
        [entry(locations=["https://crm.example.com/customers/2"])],
        [entry(actions=["read"]), entry(actions=["export"])],
        [{**GRANTED[1], "amount": 10.0}],
        [],
    ],
)
def test_keeping_or_narrowing(requested: list[dict[str, Any]]) -> None:
    assert is_narrowing(requested, GRANTED) is True


@pytest.mark.parametrize(
    "requested",
    [
        [entry(actions=["read", "delete"])],
        [entry(locations=["https://crm.example.com/customers/3"])],
        [entry(type="payment_initiation")],
        [entry(locations=None)],
        [entry(identifier="1")],
        [entry(datatypes=["contacts"])],
        [{**GRANTED[1], "identifier": "p-2"}],
        [{**GRANTED[1], "amount": True}],
        [{**GRANTED[1], "amount": "10"}],
        [{**GRANTED[1], "actions": "status"}],
        [GRANTED[0], entry(actions=["delete"])],
    ],
)
def test_broadening(requested: list[dict[str, Any]]) -> None:
    assert is_narrowing(requested, GRANTED) is False


def test_an_absent_field_in_the_grant_is_not_a_wildcard() -> None:
    granted = [{"type": "customer_records", "actions": ["read"]}]
    requested = [{**granted[0], "locations": ["https://crm.example.com/customers/1"]}]
    assert is_narrowing(requested, granted) is False


def test_nothing_granted_covers_nothing() -> None:
    assert is_narrowing([GRANTED[0]], []) is False
