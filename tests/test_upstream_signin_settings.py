"""The upstream sign-in's settings refuse what cannot work or would be unsafe, read the
client secret from a file, and decide what person an ID token's claims make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bridge.upstream_signin import IdTokenInvalid, UpstreamSignIn, UpstreamSignInSettings
from bridge.upstream_signin.person import person_from_claims

BASE: dict[str, Any] = {"issuer": "https://idp.example", "client_id": "bridge"}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, "client_secret_basic needs exactly one of"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "needs exactly one of"),
        (
            {"client_secret": "s", "client_secret_file": "secret.txt"},
            "needs exactly one of",
        ),
        ({"token_endpoint_auth_method": "none", "client_secret": "s"}, "takes no client secret"),
        ({"client_secret": "s", "issuer": "ftp://idp.example"}, "must be an https URL"),
        ({"client_secret": "s", "issuer": "https://idp.example?x=1"}, "no query"),
        ({"client_secret": "s", "scopes": ["openid", "bad scope"]}, "not a scope token"),
        ({"client_secret": "s", "claim_properties": {"bad name": "email"}}, "property name"),
        ({"client_secret": "s", "algorithms": []}, "at least 1"),
        ({"client_secret": "s", "colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_settings_that_cannot_work_are_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as refused:
        UpstreamSignInSettings.model_validate({**BASE, **changes})
    assert "'s'" not in str(refused.value)  # a validation error never echoes a secret


def test_openid_is_always_asked_for_once() -> None:
    settings = UpstreamSignInSettings.model_validate(
        {**BASE, "client_secret": "s", "scopes": ["email", "openid", "email"]}
    )
    assert settings.requested_scope == "openid email"


async def test_the_secret_is_read_from_its_file_at_start(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n", encoding="utf-8")
    settings = UpstreamSignInSettings.model_validate({**BASE, "client_secret_file": secret_file})
    assert settings.read_client_secret() == "from-the-file"
    assert "from-the-file" not in repr(settings)
    missing = settings.model_copy(update={"client_secret_file": tmp_path / "absent"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(FileNotFoundError):
            UpstreamSignIn(missing, http)
        empty = tmp_path / "empty"
        empty.write_text("\n", encoding="utf-8")
        with pytest.raises(ValueError, match="no secret on the first line"):
            UpstreamSignIn(settings.model_copy(update={"client_secret_file": empty}), http)


def test_the_person_carries_how_they_signed_in_when_the_token_says() -> None:
    settings = UpstreamSignInSettings.model_validate(
        {**BASE, "client_secret": "s", "claim_properties": {"department": "dept"}}
    )
    person = person_from_claims(
        {"sub": "u-1", "dept": "finance", "auth_time": 1700000000, "acr": "mfa", "amr": ["pwd"]},
        settings,
    )
    assert (person.name, person.subject_type, person.issuer) == ("u-1", "user", BASE["issuer"])
    assert dict(person.properties) == {"department": "finance"}
    assert (person.auth_time, person.acr, person.amr) == (1700000000, "mfa", ("pwd",))
    # Informational claims of the wrong type are dropped, not trusted.
    odd = person_from_claims({"sub": "u-1", "auth_time": True, "acr": 1, "amr": "pwd"}, settings)
    assert (odd.auth_time, odd.acr, odd.amr) == (None, None, None)


def test_a_token_without_the_name_claim_names_nobody() -> None:
    settings = UpstreamSignInSettings.model_validate(
        {**BASE, "client_secret": "s", "name_claim": "preferred_username"}
    )
    with pytest.raises(IdTokenInvalid) as refused:
        person_from_claims({"sub": "u-1", "preferred_username": " "}, settings)
    assert refused.value.reason == "name_claim"
