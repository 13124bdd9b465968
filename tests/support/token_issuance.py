"""Builders for the token issuance mapping's tests (tests/test_token_issuance_*.py): the RAR
type of the profile's examples (`customer_information`, with `datatypes`), a client, a
principal, and one token request as the mapping sees it (`AskedToken`).

The examples are those of openid/authzen
`profiles/authzen-oauth/authzen-oauth-token-issuance-1_0.md` §9 and the token exchange
binding's §8, with their names and values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.authzen.models import Decision, Subject
from bridge.oauth.clients import Client, hash_secret
from bridge.oauth.grants.base import Delegation, Principal
from bridge.oauth.issuance_mapping import TokenIssuanceMapping
from bridge.oauth.pdp_mapping import AskedToken
from bridge.oauth.requested_access import RequestedAccess
from bridge.rar import ProfileSet, load_profiles

ISSUER = "https://as.example.com"
CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
SECRET_HASH = hash_secret("a secret the mapping never reads")

# The profile's `customer_information` type (RFC 9396's example, §9.4 and §9.5).
CUSTOMER_INFORMATION = {
    "type": "customer_information",
    "description": "The profile's example type: contacts and photos of customers.",
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "type": {"const": "customer_information"},
            "locations": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^https://"},
            },
            "actions": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": ["read", "write"]},
            },
            "datatypes": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "identifier": {"type": "string"},
        },
        "required": ["type"],
        "additionalProperties": False,
    },
    "authzen": {
        "resource_type": "CustomerInformation",
        "resource_id": "auto",
        "actions": "actions",
    },
}


def example_profiles(folder: Path) -> ProfileSet:
    """The repository's profiles and the examples' `customer_information`."""
    for source in (Path(__file__).resolve().parents[2] / "profiles").glob("*.json"):
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "customer_information.json").write_text(
        json.dumps(CUSTOMER_INFORMATION), encoding="utf-8"
    )
    return load_profiles(folder)


def client(client_id: str, scopes: Sequence[str] = ()) -> Client:
    return Client(
        client_id=client_id,
        auth_method="client_secret_basic",
        secret_hash=SECRET_HASH,
        authorization_details_types=["customer_information", "customer_records"],
        scopes=list(scopes),
    )


def person(
    sub: str, *, client_id: str | None = None, delegation: Delegation | None = None, **rest: Any
) -> Principal:
    """A user principal; AROP's `properties.act` names the client, as the grants do."""
    act = {"sub": client_id} if client_id else None
    return Principal(
        subject=Subject(type="user", id=sub, properties={"act": act} if act else None),
        token_sub=sub,
        act=act,
        delegation=delegation,
        **rest,
    )


def itself(client_id: str) -> Principal:
    """The client as its own principal (client credentials)."""
    return Principal(subject=Subject(type="client", id=client_id), token_sub=client_id)


def asked(
    grant_type: str,
    who: Client,
    principal: Principal,
    profiles: ProfileSet,
    *,
    details: list[dict[str, Any]] | None = None,
    scope: Sequence[str] = (),
    resource: Sequence[str] = (),
    jkt: str | None = None,
) -> AskedToken:
    access = RequestedAccess(details or [], list(scope), list(resource), profiles, 100)
    return AskedToken(grant_type, who, principal, access, jkt)


def mapping(
    profiles: ProfileSet, *, max_evaluations: int = 100, token_claims: Sequence[str] = ()
) -> TokenIssuanceMapping:
    return TokenIssuanceMapping(
        profiles,
        issuer=ISSUER,
        client_subject_type="client",
        max_evaluations=max_evaluations,
        token_claims=frozenset(token_claims),
    )


def wire(evaluation: Any) -> dict[str, Any]:
    """A planned evaluation as it goes to the PDP, without the per-request `jti`."""
    body: dict[str, Any] = evaluation.request.model_dump(exclude_none=True)
    body.get("context", {}).pop("jti", None)
    return body


def decisions(*answers: bool | dict[str, Any]) -> list[Decision]:
    """`True`/`False`, or `{"decision": ..., "context": ...}` as a PDP would answer."""
    out = []
    for answer in answers:
        if isinstance(answer, bool):
            out.append(Decision(answer))
        else:
            out.append(Decision(answer["decision"], answer.get("context")))
    return out


def no_hints(decision: Decision) -> list[str]:
    return []
