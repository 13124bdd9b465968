"""What the client registry and the profiles accept for the front door: exact redirect URIs
(https or loopback http, no fragment or wildcard), the code grant needing them, public
clients without DPoP only with the front-channel grants; profiles' `describe` templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.oauth.clients import ClientSettings
from bridge.rar import load_profiles
from bridge.rar.describe import describe
from bridge.rar.loader import ProfileLoadError
from tests.conftest import REPO


def client(**values: Any) -> ClientSettings:
    base: dict[str, Any] = {
        "client_id": "web",
        "auth_method": "none",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://app.example.com/cb"],
    }
    return ClientSettings.model_validate({**base, **values})


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb#fragment",
        "https://*.example.com/cb",
        "http://app.example.com/cb",
        "/relative/cb",
        "javascript:alert(1)",
        "http://127.0.0.1.attacker.example/cb",
    ],
)
def test_unsafe_redirect_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValidationError):
        client(redirect_uris=[uri])


@pytest.mark.parametrize(
    "uri",
    ["https://app.example.com/cb", "http://127.0.0.1:8765/callback", "http://localhost/cb?x=1"],
)
def test_https_and_loopback_redirect_uris_are_accepted(uri: str) -> None:
    assert client(redirect_uris=[uri]).redirect_uris == [uri]


def test_the_code_grant_needs_a_redirect_uri() -> None:
    with pytest.raises(ValidationError, match="needs redirect_uris"):
        client(redirect_uris=[])


def test_a_public_client_needs_dpop_unless_it_uses_only_front_channel_grants() -> None:
    assert not client(grant_types=["authorization_code", "refresh_token"]).require_dpop
    with pytest.raises(ValidationError, match="needs require_dpop"):
        client(
            grant_types=["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]
        )
    assert client(
        grant_types=["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"],
        require_dpop=True,
    ).require_dpop


def test_the_shipped_profiles_describe_their_entries() -> None:
    profiles = load_profiles(REPO / "profiles")
    entry = {
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "1234567.5"},
        "creditorName": "Merchant A",
    }
    profile = profiles.get("payment_initiation")
    assert (
        describe(profile, entry, "initiate", "Payment", "payment")
        == "Pay 1,234,567.5 EUR to Merchant A"
    )
    assert (
        describe(profile, {}, "initiate", "Payment", "payment")
        == "Pay (not given) (not given) to (not given)"
    )
    records = profiles.get("customer_records")
    assert describe(records, {}, "export", "CustomerRecord", "c-1") == "Export customer record c-1"
    # An action without a template is still said, never hidden.
    assert describe(records, {}, "delete", "CustomerRecord", "c-1") == "Delete CustomerRecord c-1"


@pytest.mark.parametrize(
    ("describe_member", "message"),
    [
        ({"read": "Read {nope}"}, "must be resource_id, action or a JSON pointer"),
        ({"read": "Read {/a|money}"}, "unknown format"),
        ({"read": "Read {resource_id"}, "unmatched brace"),
        ({"read": ""}, "non-empty string"),
        (["read"], "must be an object"),
    ],
)
def test_a_bad_describe_template_is_refused_at_load(
    tmp_path: Path, describe_member: object, message: str
) -> None:
    data = json.loads((REPO / "profiles" / "customer_records.json").read_text())
    data["describe"] = describe_member
    (tmp_path / "customer_records.json").write_text(json.dumps(data, indent=2))
    with pytest.raises(ProfileLoadError) as caught:
        load_profiles(tmp_path)
    assert message in str([str(p) for p in caught.value.problems])
