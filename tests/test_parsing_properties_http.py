"""The hostile inputs of tests/hostile.py over real HTTP, against a bridge configured like the
local demo (bridge.toml: its stores, clients.toml, the RAR profiles, the demo approver key),
with its state in a temporary folder and one extra store, `pep`, that takes PEP bearer JWTs.

The property: each endpoint answers a 4xx protocol error (never a 5xx), and the keep-alive
connection stays usable: a second, valid request on the same `httpx.Client` succeeds. An
exception that escapes the application makes the server answer 500 and then reset the
connection, which the second request sees as a transport error.

The parsers themselves, in process: tests/test_parsing_properties.py.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from bridge.demo_approvers import mint
from bridge.settings import PEPAuthSettings, Settings, StoreSettings, load_settings
from tests.conftest import POLICIES, REPO, ServerThread, serve
from tests.hostile import (
    HTTP_SETTINGS,
    Described,
    deep_json,
    deep_jws,
    duplicate_member_text,
    hostile_jws,
    json_text,
    shown,
    with_control_character,
    with_lone_surrogate,
)

DEMO_CLIENT = ("demo-agent", "demo-agent-secret")  # published in clients.toml for the demo
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PEP_ISSUER = "https://pep-idp.test"
PEP_AUDIENCE = "urn:test:pep-store"
PEP_KEY = ECKey.generate_key("P-256", parameters={"kid": "pep-1"})


def demo_like_settings(folder: Path) -> Settings:
    """`bridge.toml` with its state (database, keys, demo approver key) moved to `folder`,
    plus the `pep` store (the default store's policies, behind PEP bearer JWTs)."""
    settings = load_settings(REPO / "bridge.toml")
    stores = dict(settings.stores)
    stores["pep"] = StoreSettings(
        path=POLICIES / "default",
        auth=PEPAuthSettings(
            jwt_issuer=PEP_ISSUER,
            jwt_audience=PEP_AUDIENCE,
            jwks={"keys": [PEP_KEY.as_dict(private=False)]},
        ),
    )
    return settings.model_copy(
        update={
            "stores": stores,
            "storage": settings.storage.model_copy(update={"path": folder / "bridge.sqlite3"}),
            "oauth": settings.oauth.model_copy(
                update={"key_encryption_key_file": folder / "signing-keys.kek"}
            ),
            "access_requests": settings.access_requests.model_copy(
                update={"demo_approver_key_file": folder / "demo-approvers.jwk"}
            ),
        }
    )


@dataclass
class Bridge:
    server: ServerThread
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    def approver_token(self, sub: str = "manager-1") -> str:
        return mint(self.settings, sub, 60)

    def user_token(self, sub: str = "alice") -> str:
        """A subject token: the demo approver issuer is one of the trusted issuers."""
        return mint(self.settings, sub, 60)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    settings = demo_like_settings(tmp_path_factory.mktemp("hostile-http"))
    with serve(settings) as server:
        yield Bridge(server, settings)


@pytest.fixture(scope="module")
def arap_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """A second server for the tests that store access requests and decisions: a stored
    hostile value must not break the other tests' valid requests (the approver inbox)."""
    settings = demo_like_settings(tmp_path_factory.mktemp("hostile-arap"))
    with serve(settings) as server:
        yield Bridge(server, settings)


def client(bridge: Bridge) -> httpx.Client:
    return httpx.Client(base_url=bridge.url, timeout=10)


def post_json(http: httpx.Client, path: str, text: str, **kwargs: Any) -> httpx.Response:
    """POST JSON text as it is (a lone surrogate stays a six-character escape)."""
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return http.post(path, content=text.encode("ascii"), headers=headers, **kwargs)


def refused_then_usable(
    http: httpx.Client,
    hostile: Callable[[], httpx.Response],
    valid: Callable[[], httpx.Response],
    *,
    statuses: range = range(400, 500),
) -> httpx.Response:
    """Send the hostile request and expect a status in `statuses`; then send the valid one
    on the same client (so on the same keep-alive connection): it must succeed. Both
    outcomes are reported together."""
    response = hostile()
    problems = []
    if response.status_code not in statuses and not _items_refused(response):
        problems.append(
            f"the hostile request answered {response.status_code} (expected "
            f"{statuses.start}-{statuses.stop - 1}): {response.text[:300]}"
        )
    try:
        after = valid()
    except httpx.TransportError as exc:
        problems.append(f"the connection did not survive it: {exc!r}")
    else:
        if after.status_code != 200:
            problems.append(f"the valid request after it: {after.status_code} {after.text}")
    assert not problems, "; ".join(problems)
    return response


def _items_refused(response: httpx.Response) -> bool:
    """An Access Evaluations answer whose every item is a 4xx error (API 1.0 §7.2: an item
    that cannot be evaluated fails alone, in its `context.error`) counts as a refusal."""
    if response.status_code != 200 or "evaluations" not in response.text[:20]:
        return False
    items = response.json().get("evaluations") or []
    statuses = [((i.get("context") or {}).get("error") or {}).get("status") for i in items]
    return bool(statuses) and all(isinstance(s, int) and 400 <= s < 500 for s in statuses)


EVALUATION: dict[str, Any] = {
    "subject": {"type": "client", "id": "demo-agent", "properties": {"department": "sales"}},
    "action": {"name": "read", "properties": {"channel": "api"}},
    "resource": {"type": "CustomerRecord", "id": "cust-0001", "properties": {"region": "eu"}},
    "context": {"time": "2026-01-01T00:00:00Z"},
}
PLACES: dict[str, tuple[str, ...]] = {
    "subject.type": ("subject", "type"),
    "subject.id": ("subject", "id"),
    "subject.properties": ("subject", "properties", "x"),
    "resource.type": ("resource", "type"),
    "resource.id": ("resource", "id"),
    "resource.properties": ("resource", "properties", "x"),
    "action.name": ("action", "name"),
    "action.properties": ("action", "properties", "x"),
    "context": ("context", "x"),
}
_SLOT = "\x7fslot\x7f"


def with_value_at(body: dict[str, Any], path: tuple[str, ...], value_text: str) -> str:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    target = copy
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = _SLOT
    return json_text(copy).replace(json_text(_SLOT), value_text)


def shaped_for(endpoint: str, text: str) -> str:
    """The body for `endpoint`: an evaluation, a one-item batch, or a search request."""
    if endpoint.endswith("/evaluations"):
        return '{"evaluations":[' + text + "]}"
    return text


AUTHZEN_ENDPOINTS = [
    "/access/v1/evaluation",
    "/access/v1/evaluations",
    "/access/v1/search/subject",
    "/access/v1/search/resource",
    "/access/v1/search/action",
    "/stores/todo/access/v1/evaluation",
]


def valid_evaluation(http: httpx.Client) -> Callable[[], httpx.Response]:
    def send() -> httpx.Response:
        body = {k: EVALUATION[k] for k in ("subject", "action", "resource")}
        response = post_json(http, "/access/v1/evaluation", json_text(body))
        assert response.json() == {"decision": True}, response.text
        return response

    return send


def _ids(endpoint: str) -> str:
    return endpoint.strip("/").replace("/access/v1/", ":").replace("/", "_")


# -- AuthZEN API ----------------------------------------------------------------------------


def _lone_surrogate_exchange(bridge: Bridge, endpoint: str, place: str, value: str) -> None:
    text = shaped_for(endpoint, with_value_at(EVALUATION, PLACES[place], json_text(value)))
    with client(bridge) as http:
        refused_then_usable(http, lambda: post_json(http, endpoint, text), valid_evaluation(http))


@pytest.mark.parametrize("place", list(PLACES))
@HTTP_SETTINGS
@given(data=st.data())
def test_evaluation_lone_surrogate_is_4xx_and_connection_survives(
    bridge: Bridge, place: str, data: st.DataObject
) -> None:
    value = data.draw(with_lone_surrogate(), label="value")
    _lone_surrogate_exchange(bridge, "/access/v1/evaluation", place, value)


@pytest.mark.parametrize("endpoint", AUTHZEN_ENDPOINTS[1:], ids=_ids)
@HTTP_SETTINGS
@given(place=st.sampled_from(list(PLACES)), data=st.data())
def test_authzen_lone_surrogate_is_4xx_and_connection_survives(
    bridge: Bridge, endpoint: str, place: str, data: st.DataObject
) -> None:
    shown(place=place)
    value = data.draw(with_lone_surrogate(), label="value")
    _lone_surrogate_exchange(bridge, endpoint, place, value)


@pytest.mark.parametrize("endpoint", AUTHZEN_ENDPOINTS, ids=_ids)
@HTTP_SETTINGS
@given(place=st.sampled_from(list(PLACES)), value=deep_json())
def test_authzen_deep_nesting_is_4xx_and_connection_survives(
    bridge: Bridge, endpoint: str, place: str, value: str
) -> None:
    shown(place=place, value=value)
    text = shaped_for(endpoint, with_value_at(EVALUATION, PLACES[place], value))
    with client(bridge) as http:
        refused_then_usable(http, lambda: post_json(http, endpoint, text), valid_evaluation(http))


@pytest.mark.parametrize("endpoint", AUTHZEN_ENDPOINTS, ids=_ids)
@HTTP_SETTINGS
@given(place=st.sampled_from(list(PLACES)), value=duplicate_member_text())
def test_authzen_duplicate_member_is_4xx_and_connection_survives(
    bridge: Bridge, endpoint: str, place: str, value: str
) -> None:
    shown(place=place, value=value)
    text = shaped_for(endpoint, with_value_at(EVALUATION, PLACES[place], value))
    with client(bridge) as http:
        refused_then_usable(http, lambda: post_json(http, endpoint, text), valid_evaluation(http))


@pytest.mark.parametrize("endpoint", AUTHZEN_ENDPOINTS, ids=_ids)
@HTTP_SETTINGS
@given(place=st.sampled_from(list(PLACES)), data=st.data())
def test_authzen_control_character_is_never_5xx_and_connection_survives(
    bridge: Bridge, endpoint: str, place: str, data: st.DataObject
) -> None:
    # Escaped control characters are valid JSON and valid Cedar strings: a decision (200)
    # or a refusal (4xx) are both fine answers; a 5xx is not.
    shown(place=place)
    value = data.draw(with_control_character(), label="value")
    text = shaped_for(endpoint, with_value_at(EVALUATION, PLACES[place], json_text(value)))
    with client(bridge) as http:
        refused_then_usable(
            http,
            lambda: post_json(http, endpoint, text),
            valid_evaluation(http),
            statuses=range(200, 500),
        )


# -- JWTs at the token endpoint, introspection, revocation, approver and PEP APIs -----------

OAUTH_OK = range(200, 201)


JWT_KINDS = ["deeply_nested", "hostile_json"]


def jwt_strategy(
    header: dict[str, Any], payload: dict[str, Any], part: str, kind: str
) -> st.SearchStrategy[str]:
    """Thousands of levels in one member of `part`, or any other hostile JSON there.

    Within what an HTTP server takes in one header line (tokens travel in `Authorization` and
    `DPoP`): a longer line is refused by the HTTP layer before the bridge sees it, and the
    server may close the connection, as RFC 9112 allows."""
    strategy = (
        deep_jws(header, payload, part)
        if kind == "deeply_nested"
        else hostile_jws(header, payload, part)
    )
    return strategy.filter(lambda token: len(token) <= MAX_HEADER_TOKEN)


# Comfortably below the HTTP servers' header line limits, above every token limit but the
# bridge's longest (a 16 kB subject token, which travels in the body).
MAX_HEADER_TOKEN = 8_000


def idp_payload(bridge: Bridge, iss: str | None = None) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": iss or bridge.settings.access_requests.approver_issuer or "urn:x",
        "sub": "alice",
        "aud": bridge.settings.issuer,
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
    }


def valid_token_request(http: httpx.Client) -> Callable[[], httpx.Response]:
    def send() -> httpx.Response:
        form = {"grant_type": "client_credentials", "scope": "customer_records:read"}
        response = http.post("/token", data=form, auth=DEMO_CLIENT)
        assert "access_token" in response.json(), response.text
        return response

    return send


DEMO_APPROVER_ISSUER = "urn:authzen-bridge:demo-approvers"
JWT_PLACES = ["subject_token", "actor_token", "jwt_bearer_assertion", "client_assertion", "dpop"]


def token_request_with(
    bridge: Bridge, place: str, token: str
) -> tuple[dict[str, str], Any, dict[str, str]]:
    """(form, auth, headers) of a token request carrying `token` at `place`."""
    if place == "subject_token":
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": JWT_TOKEN_TYPE,
        }
        return form, DEMO_CLIENT, {}
    if place == "actor_token":
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": bridge.user_token(),
            "subject_token_type": JWT_TOKEN_TYPE,
            "actor_token": token,
            "actor_token_type": JWT_TOKEN_TYPE,
        }
        return form, DEMO_CLIENT, {}
    if place == "jwt_bearer_assertion":
        return {"grant_type": JWT_BEARER, "assertion": token}, DEMO_CLIENT, {}
    if place == "client_assertion":
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": token,
        }
        return form, None, {}
    form = {"grant_type": "client_credentials", "scope": "customer_records:read"}
    return form, DEMO_CLIENT, {"DPoP": token}


def jwt_base(bridge: Bridge, place: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plausible header and payload for a JWT at `place` (made hostile by the strategy)."""
    if place == "dpop":
        key = ECKey.generate_key("P-256")
        jwk = {k: v for k, v in key.as_dict(private=False).items() if k != "kid"}
        payload = {
            "jti": "d-1",
            "htm": "POST",
            "htu": bridge.settings.issuer + "/token",
            "iat": int(time.time()),
        }
        return {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, payload
    if place == "client_assertion":
        payload = idp_payload(bridge, "demo-agent") | {"sub": "demo-agent"}
        return {"alg": "ES256", "kid": "k-1"}, payload
    return {"alg": "ES256", "kid": "k-1", "typ": "JWT"}, idp_payload(bridge, DEMO_APPROVER_ISSUER)


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("part", ["header", "payload"])
@pytest.mark.parametrize("place", JWT_PLACES)
@HTTP_SETTINGS
@given(data=st.data())
def test_token_endpoint_hostile_jwt_is_4xx_and_connection_survives(
    bridge: Bridge, place: str, part: str, kind: str, data: st.DataObject
) -> None:
    header, payload = jwt_base(bridge, place)
    token = data.draw(jwt_strategy(header, payload, part, kind), label="token")
    form, auth, headers = token_request_with(bridge, place, token)
    with client(bridge) as http:
        refused_then_usable(
            http,
            lambda: http.post("/token", data=form, auth=auth, headers=headers),
            valid_token_request(http),
        )


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("part", ["header", "payload"])
@pytest.mark.parametrize("endpoint", ["/introspect", "/revoke"])
@HTTP_SETTINGS
@given(data=st.data())
def test_introspection_and_revocation_of_hostile_jwt_answer_200(
    bridge: Bridge, endpoint: str, part: str, kind: str, data: st.DataObject
) -> None:
    # RFC 7662 §2.2 and RFC 7009 §2.2: an unknown or invalid token is not an error (200,
    # `{"active": false}` at introspection).
    header = {"typ": "at+jwt", "alg": "ES256", "kid": "k-1"}
    token = data.draw(
        jwt_strategy(header, idp_payload(bridge, bridge.settings.issuer), part, kind), label="token"
    )
    with client(bridge) as http:
        response = refused_then_usable(
            http,
            lambda: http.post(endpoint, data={"token": token}, auth=DEMO_CLIENT),
            valid_token_request(http),
            statuses=OAUTH_OK,
        )
        if endpoint == "/introspect":
            assert response.json() == {"active": False}


def valid_inbox(http: httpx.Client, bridge: Bridge) -> Callable[[], httpx.Response]:
    token = bridge.approver_token()
    return lambda: http.get("/access/v1/approvals", headers={"authorization": f"Bearer {token}"})


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("part", ["header", "payload"])
@HTTP_SETTINGS
@given(data=st.data())
def test_approver_api_hostile_bearer_token_is_401_and_connection_survives(
    bridge: Bridge, part: str, kind: str, data: st.DataObject
) -> None:
    header = {"alg": "ES256", "kid": "k-1", "typ": "JWT"}
    token = data.draw(
        jwt_strategy(header, idp_payload(bridge, DEMO_APPROVER_ISSUER), part, kind), label="token"
    )
    with client(bridge) as http:
        refused_then_usable(
            http,
            lambda: http.get("/access/v1/approvals", headers={"authorization": f"Bearer {token}"}),
            valid_inbox(http, bridge),
            statuses=range(401, 402),
        )


def pep_token() -> str:
    claims = {"iss": PEP_ISSUER, "aud": PEP_AUDIENCE, "exp": int(time.time()) + 300}
    return jwt.encode({"alg": "ES256", "kid": "pep-1"}, claims, PEP_KEY)


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("part", ["header", "payload"])
@HTTP_SETTINGS
@given(data=st.data())
def test_pep_store_hostile_bearer_token_is_401_and_connection_survives(
    bridge: Bridge, part: str, kind: str, data: st.DataObject
) -> None:
    header = {"alg": "ES256", "kid": "pep-1"}
    payload = {"iss": PEP_ISSUER, "aud": PEP_AUDIENCE, "exp": int(time.time()) + 300}
    token = data.draw(jwt_strategy(header, payload, part, kind), label="token")
    body = json_text({k: EVALUATION[k] for k in ("subject", "action", "resource")})
    path = "/stores/pep/access/v1/evaluation"

    def valid() -> httpx.Response:
        return post_json(http, path, body, headers={"authorization": f"Bearer {pep_token()}"})

    with client(bridge) as http:
        refused_then_usable(
            http,
            lambda: post_json(http, path, body, headers={"authorization": f"Bearer {token}"}),
            valid,
            statuses=range(401, 402),
        )


# -- RAR authorization_details at the token endpoint ---------------------------------------

CUSTOMER: dict[str, Any] = {
    "type": "customer_records",
    "actions": ["read"],
    "locations": ["https://crm.example.com/customers/cust-0001"],
}
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "locations": ["https://bank.example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}
RAR_PLACES: dict[str, tuple[dict[str, Any], tuple[str | int, ...]]] = {
    "customer.locations": (CUSTOMER, ("locations", 0)),
    "customer.identifier": (CUSTOMER, ("identifier",)),
    "payment.locations": (PAYMENT, ("locations", 0)),
    "payment.creditorName": (PAYMENT, ("creditorName",)),
    "payment.remittance": (PAYMENT, ("remittanceInformationUnstructured",)),
}


def hostile_at(
    place: str, make: Callable[[st.SearchStrategy[str]], st.SearchStrategy[str]]
) -> st.SearchStrategy[str]:
    """The valid value at `place` made hostile by `make`; in a location only its last path
    segment is, so that the URL pattern of the profile still matches around it."""
    value = _valid_at(place)
    if place.endswith("locations"):
        head, _, tail = value.rpartition("/")
        return make(st.just(tail)).map(lambda t: Described(f"{head}/{t}", f"{head}/ + {t!r}"))
    return make(st.just(value))


def _valid_at(place: str) -> str:
    """The valid value at `place`, or a plain one where the entry has none."""
    entry, path = RAR_PLACES[place]
    value: Any = entry
    for name in path:
        if isinstance(value, dict) and name not in value:
            return "cust-0001"
        value = value[name]
    return str(value)


def details_with(place: str, value_text: str) -> str:
    entry, path = RAR_PLACES[place]
    copy: Any = json.loads(json.dumps(entry))
    target = copy
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = _SLOT
    return "[" + json_text(copy).replace(json_text(_SLOT), value_text) + "]"


def rar_request(http: httpx.Client, details: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "authorization_details": details}
    return http.post("/token", data=form, auth=DEMO_CLIENT)


def assert_invalid_authorization_details(response: httpx.Response) -> None:
    assert response.json().get("error") in {"invalid_authorization_details", "invalid_request"}


@pytest.mark.parametrize("place", list(RAR_PLACES))
@HTTP_SETTINGS
@given(data=st.data())
def test_token_authorization_details_lone_surrogate_is_4xx_and_connection_survives(
    bridge: Bridge, place: str, data: st.DataObject
) -> None:
    value = data.draw(hostile_at(place, with_lone_surrogate), label="value")
    details = details_with(place, json_text(value))
    with client(bridge) as http:
        response = refused_then_usable(
            http, lambda: rar_request(http, details), valid_token_request(http)
        )
        assert_invalid_authorization_details(response)


@pytest.mark.parametrize("place", ["customer.locations", "payment.locations"])
@HTTP_SETTINGS
@given(data=st.data())
def test_token_authorization_details_control_character_in_locations_is_refused(
    bridge: Bridge, place: str, data: st.DataObject
) -> None:
    # A location is a URI (RFC 9396 §2.2, RFC 3986: no control characters). Accepted, the
    # character is copied into the access token's `authorization_details`.
    value = data.draw(hostile_at(place, with_control_character), label="value")
    details = details_with(place, json_text(value))
    with client(bridge) as http:
        response = refused_then_usable(
            http, lambda: rar_request(http, details), valid_token_request(http)
        )
        assert_invalid_authorization_details(response)


@HTTP_SETTINGS
@given(
    place=st.sampled_from(list(RAR_PLACES)), value=st.one_of(deep_json(), duplicate_member_text())
)
def test_token_authorization_details_deep_or_duplicate_is_4xx_and_connection_survives(
    bridge: Bridge, place: str, value: str
) -> None:
    shown(place=place, value=value)
    details = details_with(place, value)
    with client(bridge) as http:
        response = refused_then_usable(
            http, lambda: rar_request(http, details), valid_token_request(http)
        )
        assert_invalid_authorization_details(response)


# -- ARAP: access requests and approvals ----------------------------------------------------

EXPORT: dict[str, Any] = {
    "subject": {"type": "client", "id": "demo-agent"},
    "action": {"name": "export"},
    "resource": {"type": "CustomerRecord", "id": "cust-0001"},
    "context": {"client_id": "demo-agent"},
}


def requestable_denial(http: httpx.Client, record: str) -> dict[str, Any]:
    """A fresh requestable denial (export needs a manager) for the record `record`."""
    body = json.loads(json.dumps(EXPORT))
    body["resource"]["id"] = record
    response = post_json(http, "/access/v1/evaluation", json_text(body))
    access_request: dict[str, Any] = response.json()["context"]["access_request"]
    return {
        "binding_token": access_request["binding_token"],
        "expires_at": access_request["expires_at"],
    }


SUBMISSION_PLACES: dict[str, tuple[str, ...]] = {
    "subject.id": ("subject", "id"),
    "subject.properties": ("subject", "properties", "x"),
    "resource.id": ("resource", "id"),
    "resource.properties": ("resource", "properties", "x"),
    "action.name": ("action", "name"),
    "action.properties": ("action", "properties", "x"),
    "context": ("context", "x"),
    "denial.binding_token": ("denial", "binding_token"),
    "requested_access": ("requested_access", "justification"),
}


@pytest.mark.parametrize("place", list(SUBMISSION_PLACES))
@HTTP_SETTINGS
@given(data=st.data())
def test_access_request_lone_surrogate_is_4xx_and_connection_survives(
    arap_bridge: Bridge, place: str, data: st.DataObject
) -> None:
    value = data.draw(with_lone_surrogate(), label="value")
    with client(arap_bridge) as http:
        record = f"cust-{uuid.uuid4().hex[:8]}"
        body = json.loads(json.dumps(EXPORT)) | {"denial": requestable_denial(http, record)}
        body["resource"]["id"] = record
        text = with_value_at(body, SUBMISSION_PLACES[place], json_text(value))
        refused_then_usable(
            http, lambda: post_json(http, "/access/v1/requests", text), valid_evaluation(http)
        )


@pytest.mark.parametrize("kind", ["deep", "duplicate"])
@HTTP_SETTINGS
@given(place=st.sampled_from(list(SUBMISSION_PLACES)), data=st.data())
def test_access_request_deep_or_duplicate_is_4xx_and_connection_survives(
    arap_bridge: Bridge, place: str, kind: str, data: st.DataObject
) -> None:
    shown(place=place)
    value = data.draw(deep_json() if kind == "deep" else duplicate_member_text(), label="value")
    with client(arap_bridge) as http:
        record = f"cust-{uuid.uuid4().hex[:8]}"
        body = json.loads(json.dumps(EXPORT)) | {"denial": requestable_denial(http, record)}
        body["resource"]["id"] = record
        text = with_value_at(body, SUBMISSION_PLACES[place], value)
        refused_then_usable(
            http, lambda: post_json(http, "/access/v1/requests", text), valid_evaluation(http)
        )


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("part", ["header", "payload"])
@HTTP_SETTINGS
@given(data=st.data())
def test_access_request_hostile_binding_token_is_4xx_and_connection_survives(
    arap_bridge: Bridge, part: str, kind: str, data: st.DataObject
) -> None:
    with client(arap_bridge) as http:
        denial = requestable_denial(http, "cust-0001")
        header_b64, payload_b64, _ = denial["binding_token"].split(".")
        header, payload = _b64json(header_b64), _b64json(payload_b64)
        token = data.draw(jwt_strategy(header, payload, part, kind), label="binding_token")
        body = json_text(EXPORT | {"denial": denial | {"binding_token": token}})
        refused_then_usable(
            http, lambda: post_json(http, "/access/v1/requests", body), valid_evaluation(http)
        )


def _b64json(segment: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


APPROVAL_PLACES = ["justification", "decision", "approved_until", "items"]


def pending_task(http: httpx.Client) -> str:
    record = f"cust-{uuid.uuid4().hex[:8]}"
    body = json.loads(json.dumps(EXPORT)) | {"denial": requestable_denial(http, record)}
    body["resource"]["id"] = record
    response = post_json(http, "/access/v1/requests", json_text(body))
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task"]["id"]
    return task_id


@pytest.mark.parametrize("place", APPROVAL_PLACES)
@HTTP_SETTINGS
@given(data=st.data())
def test_approval_decision_lone_surrogate_is_4xx_and_connection_survives(
    arap_bridge: Bridge, place: str, data: st.DataObject
) -> None:
    value = data.draw(with_lone_surrogate(st.just("approve")), label="value")
    decision: dict[str, Any] = {"decision": "approve", "justification": "ok"}
    text = with_value_at(decision, (place,), json_text(value))
    token = arap_bridge.approver_token()
    with client(arap_bridge) as http:
        task = pending_task(http)
        refused_then_usable(
            http,
            lambda: post_json(
                http,
                f"/access/v1/approvals/{task}",
                text,
                headers={"authorization": f"Bearer {token}"},
            ),
            valid_evaluation(http),
        )
