"""Property tests of the parsing layers, called in process with hostile input (tests/hostile.py).

The property of every layer: given any input, its parser returns a value or raises the
layer's own documented error type; it never lets out a `RecursionError`, a
`UnicodeEncodeError`, a cedarpy exception or anything else. A test calls the layer and
catches only the documented type, so any other exception fails the test with its traceback,
which ends where it escaped. Where the layer promises more (strict JSON is I-JSON, RFC 7493;
a RAR `locations` entry is a URI, RFC 3986), a test checks that promise on what it returns.

The same inputs over real HTTP: tests/test_parsing_properties_http.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from starlette.requests import Request

from bridge.access_requests.problems import AccessRequestProblem
from bridge.access_requests.submission import parse_submission
from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import load_store
from bridge.authzen.errors import AuthZENError, BadRequest, PDPError
from bridge.authzen.models import (
    ActionSearchRequest,
    EvaluationRequest,
    ResourceSearchRequest,
    SubjectSearchRequest,
)
from bridge.authzen.pagination import Paginator
from bridge.authzen.pep_auth import PEPAuthenticator
from bridge.authzen.requests import parse_evaluations, parse_model
from bridge.authzen.transport import read_json_object
from bridge.errors import InvalidClient, InvalidRequest
from bridge.jose.strict_json import StrictJSONError, loads
from bridge.jose.trusted_issuers import TrustedIssuers, UntrustedToken
from bridge.oauth.client_auth import JWT_BEARER_ASSERTION, ClientAuthenticator
from bridge.oauth.clients import ClientRegistry, ClientSettings
from bridge.oauth.dpop import DPoPVerifier
from bridge.oauth.errors import InvalidDPoPProof, UseDPoPNonce
from bridge.oauth.form import Form, form_pairs, read_form
from bridge.rar import ProfileSet, load_profiles
from bridge.rar.authorization_details import parse_authorization_details
from bridge.rar.errors import InvalidAuthorizationDetails
from bridge.settings import DPoPSettings, PEPAuthSettings, TrustedIssuerSettings
from tests.conftest import POLICIES, REPO
from tests.hostile import (
    LONE_SURROGATE_ESCAPES,
    PROPERTY_SETTINGS,
    THOUSANDS,
    Described,
    deep_jws,
    deepest_accepted,
    hostile_json_text,
    hostile_jws,
    hostile_object_text,
    hostile_string,
    hostile_value_text,
    json_text,
    near,
    nested,
    object_text,
    shown,
    with_control_character,
    with_lone_surrogate,
)
from tests.memory_replay import MemoryReplay

BRIDGE_DIR = str(REPO / "bridge") + "/"

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def refused(call: Callable[[], _T], *documented: type[BaseException]) -> _T | None:
    """`call()`, or None when it raised one of the `documented` errors. Any other exception
    fails the test, naming the last frame in bridge/ it passed through: where it escaped."""
    try:
        return call()
    except documented:
        return None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped {escaped_at(exc)}: {exc}") from exc


def escaped_at(exc: BaseException) -> str:
    """`bridge/...py:LINE (function)` of the innermost frame in the bridge package."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(BRIDGE_DIR)
    ]
    if not frames:
        return "from outside bridge/"
    last = frames[-1]
    return f"from {Path(last.filename).relative_to(REPO)}:{last.lineno} ({last.name})"


@cache
def deepest_strict_json() -> int:
    """The deepest array `strict_json.loads` returns (measured once, in a test's stack)."""
    return deepest_accepted(lambda text: refused(lambda: loads(text), StrictJSONError) is not None)


# -- strict JSON (bridge/authzen/strict_json.py) -----------------------------------------


@PROPERTY_SETTINGS
@given(text=hostile_json_text())
def test_strict_json_returns_a_value_or_raises_strict_json_error(text: str) -> None:
    shown(text=text)
    refused(lambda: loads(text), StrictJSONError)
    refused(lambda: loads(text.encode("utf-8", "surrogatepass")), StrictJSONError)


@PROPERTY_SETTINGS
@given(prefix=st.text(alphabet="ab ", max_size=5), escape=LONE_SURROGATE_ESCAPES)
def test_strict_json_refuses_lone_surrogate_escapes(prefix: str, escape: str) -> None:
    shown(prefix=prefix, escape=escape)
    # The module promises I-JSON (RFC 7493 §2.1: no surrogate code points): a string holding
    # one cannot be encoded as UTF-8, so whatever reads it next (Cedar, SQLite, a JWS) fails.
    for text in (f'{{"a":"{prefix}{escape}"}}', f'{{"{prefix}{escape}":1}}'):
        value = refused(lambda text=text: loads(text), StrictJSONError)  # type: ignore[misc]
        assert value is None, f"strict_json.loads accepted a lone surrogate: {text!r}"


# -- AuthZEN request bodies (bridge/authzen/transport.py, requests.py) -------------------

EVALUATION: dict[str, Any] = {
    "subject": {"type": "client", "id": "demo-agent", "properties": {"department": "sales"}},
    "action": {"name": "read", "properties": {"channel": "api"}},
    "resource": {"type": "CustomerRecord", "id": "cust-0001", "properties": {"region": "eu"}},
    "context": {"time": "2026-01-01T00:00:00Z"},
}
# Where a hostile value goes: (member, sub-member), sub-member None for the member itself.
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
    """JSON text of `body` with the JSON text `value_text` at `path` (made if absent)."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    target = copy
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = _SLOT
    return json_text(copy).replace(json_text(_SLOT), value_text)


def authzen_body(text: str) -> dict[str, Any] | None:
    """The body as the transport reads it; None when the transport refuses it (400)."""
    request = json_request(text.encode("utf-8", "surrogatepass"))
    return refused(lambda: run(read_json_object(request, 1 << 22)), AuthZENError)


def json_request(body: bytes, content_type: str = "application/json") -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


MODELS = [EvaluationRequest, SubjectSearchRequest, ResourceSearchRequest, ActionSearchRequest]


@PROPERTY_SETTINGS
@given(
    text=st.one_of(
        hostile_json_text(),
        hostile_object_text(EVALUATION),
        st.builds(
            with_value_at,
            st.just(EVALUATION),
            st.sampled_from(list(PLACES.values())),
            hostile_value_text(),
        ),
    )
)
def test_authzen_request_parsers_return_a_model_or_raise_bad_request(text: str) -> None:
    shown(text=text)
    body = authzen_body(text)
    if body is None:
        return
    for model in MODELS:
        refused(lambda model=model: parse_model(model, body), BadRequest)  # type: ignore[misc]
    refused(lambda: parse_evaluations(body, 100), BadRequest)
    refused(lambda: parse_evaluations({"evaluations": [body]}, 100), BadRequest)


@cache
def default_pdp() -> CedarPDP:
    store = load_store("default", POLICIES / "default")
    return CedarPDP(StoreHolder(store), Paginator(b"k" * 32, 1000), explanations=False)


def decide_in_process(body: dict[str, Any]) -> None:
    """Parse `body` as every AuthZEN request shape and ask the embedded Cedar PDP: each call
    must return, or raise BadRequest (parsing) or PDPError (no decision)."""
    pdp = default_pdp()
    request = refused(lambda: parse_model(EvaluationRequest, body), BadRequest)
    if request is not None:
        refused(lambda: run(pdp.evaluate(request)), PDPError)
        refused(lambda: run(pdp.evaluations([request, request])), PDPError)
    for model, search in (
        (SubjectSearchRequest, pdp.search_subject),
        (ResourceSearchRequest, pdp.search_resource),
        (ActionSearchRequest, pdp.search_action),
    ):
        searched = refused(lambda model=model: parse_model(model, body), BadRequest)  # type: ignore[misc]
        if searched is not None:
            call: Callable[[Any], Awaitable[Any]] = search
            refused(lambda call=call, s=searched: run(call(s)), PDPError)  # type: ignore[misc]


def _search_shaped(body: dict[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    """`body` and the search requests made from it that keep the member at `path`."""
    bodies = [body]
    for drop in (("subject", "id"), ("resource", "id"), ("action",)):
        if path[: len(drop)] == drop:
            continue
        other = json.loads(json.dumps(body))
        target = other
        for name in drop[:-1]:
            target = target[name]
        target.pop(drop[-1], None)
        bodies.append(other)
    return bodies


@pytest.mark.parametrize("place", list(PLACES))
@PROPERTY_SETTINGS
@given(value=with_lone_surrogate())
def test_cedar_decision_with_lone_surrogate(place: str, value: str) -> None:
    shown(place=place, value=value)
    text = with_value_at(EVALUATION, PLACES[place], json_text(value))
    body = authzen_body(text)
    if body is None:
        return  # refused by the transport: what the fix may well do
    for shaped in _search_shaped(body, PLACES[place]):
        decide_in_process(shaped)


@PROPERTY_SETTINGS
@given(
    place=st.sampled_from(list(PLACES)), value=st.one_of(with_control_character(), hostile_string())
)
def test_cedar_decision_with_control_character_or_long_string(place: str, value: str) -> None:
    shown(place=place, value=value)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return  # the lone surrogate test's
    body = authzen_body(with_value_at(EVALUATION, PLACES[place], json_text(value)))
    if body is not None:
        for shaped in _search_shaped(body, PLACES[place]):
            decide_in_process(shaped)


@pytest.mark.parametrize(
    "place", ["subject.properties", "resource.properties", "action.properties", "context"]
)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_cedar_decision_with_value_nested_to_the_json_limit(
    place: str, data: st.DataObject
) -> None:
    shown(place=place)
    # Just inside what strict JSON accepts: every recursive step after the parser must cope.
    depth = data.draw(up_to_the_limit(), label="depth")
    kind = data.draw(st.sampled_from(["array", "object", "mixed"]), label="kind")
    body = authzen_body(with_value_at(EVALUATION, PLACES[place], nested(depth, kind)))
    if body is not None:
        decide_in_process(body)


def up_to_the_limit() -> st.SearchStrategy[int]:
    """Depths strict JSON still accepts: the upper half of its range, and the last few
    levels before its limit (and a few past it, which it must refuse)."""
    limit = deepest_strict_json()
    return st.one_of(near(limit), st.integers(min_value=max(1, limit // 2), max_value=limit))


# -- RAR authorization_details (bridge/rar/authorization_details.py) ---------------------


@cache
def profiles() -> ProfileSet:
    return load_profiles(REPO / "profiles")


CUSTOMER: dict[str, Any] = {
    "type": "customer_records",
    "actions": ["read"],
    "locations": ["https://crm.example.com/customers/cust-0001"],
    "identifier": "cust-0001",
}
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "locations": ["https://bank.example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}
ALLOWED = frozenset({"customer_records", "payment_initiation"})


def parse_details(raw: str) -> list[dict[str, Any]] | None:
    return refused(
        lambda: parse_authorization_details(raw, profiles(), allowed_types=ALLOWED, max_entries=20),
        InvalidAuthorizationDetails,
    )


def _entry_with(entry: dict[str, Any], path: tuple[str | int, ...], value_text: str) -> str:
    copy: Any = json.loads(json.dumps(entry))
    target = copy
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = _SLOT
    return "[" + json_text(copy).replace(json_text(_SLOT), value_text) + "]"


RAR_PLACES: dict[str, tuple[dict[str, Any], tuple[str | int, ...]]] = {
    "customer.locations": (CUSTOMER, ("locations", 0)),
    "customer.actions": (CUSTOMER, ("actions", 0)),
    "customer.identifier": (CUSTOMER, ("identifier",)),
    "customer.type": (CUSTOMER, ("type",)),
    "payment.locations": (PAYMENT, ("locations", 0)),
    "payment.creditorName": (PAYMENT, ("creditorName",)),
    "payment.amount": (PAYMENT, ("instructedAmount", "amount")),
    "payment.iban": (PAYMENT, ("creditorAccount", "iban")),
    "payment.extra": (PAYMENT, ("remittanceInformationUnstructured",)),
}


@PROPERTY_SETTINGS
@given(
    raw=st.one_of(
        hostile_json_text(),
        hostile_object_text(CUSTOMER).map(lambda t: f"[{t}]"),
        hostile_object_text(PAYMENT).map(lambda t: f"[{t}]"),
        st.builds(
            lambda place, text: _entry_with(*RAR_PLACES[place], text),
            st.sampled_from(list(RAR_PLACES)),
            hostile_value_text(),
        ),
    )
)
def test_authorization_details_returns_entries_or_raises_invalid_authorization_details(
    raw: str,
) -> None:
    shown(raw=raw)
    parse_details(raw)


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
    entry, path = RAR_PLACES[place]
    value: Any = entry
    for name in path:
        if isinstance(value, dict) and name not in value:
            return "text"  # a member the entry leaves out
        value = value[name]
    assert isinstance(value, str)
    return value


@PROPERTY_SETTINGS
@given(place=st.sampled_from(list(RAR_PLACES)), data=st.data())
def test_authorization_details_with_value_nested_to_the_json_limit(
    place: str, data: st.DataObject
) -> None:
    shown(place=place)
    depth = data.draw(up_to_the_limit(), label="depth")
    kind = data.draw(st.sampled_from(["array", "object", "mixed"]), label="kind")
    parse_details(_entry_with(*RAR_PLACES[place], nested(depth, kind)))


@pytest.mark.parametrize("place", ["customer.locations", "payment.locations"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_authorization_details_refuses_control_characters_in_locations(
    place: str, data: st.DataObject
) -> None:
    shown(place=place)
    # A location is a URI (RFC 9396 §2.2), and a URI has no control characters (RFC 3986 §2):
    # accepted, the character is written into the access token's authorization_details.
    value = data.draw(hostile_at(place, with_control_character), label="location")
    entries = parse_details(_entry_with(*RAR_PLACES[place], json_text(value)))
    assert entries is None, f"accepted a location with a control character: {value!r}"


@pytest.mark.parametrize("place", list(RAR_PLACES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_authorization_details_refuses_lone_surrogates(place: str, data: st.DataObject) -> None:
    shown(place=place)
    # Not I-JSON, and not encodable as UTF-8: an accepted entry reaches the PDP and the token.
    value = data.draw(hostile_at(place, with_lone_surrogate), label="value")
    entries = parse_details(_entry_with(*RAR_PLACES[place], json_text(value)))
    assert entries is None, f"accepted a lone surrogate at {place}: {value!r}"


# -- form bodies (bridge/oauth/form.py) ---------------------------------------------------

_FORM_PIECES = st.one_of(
    st.sampled_from(["grant_type", "scope", "resource", "client_id", "=", "&", "+", "%"]),
    st.sampled_from(["%00", "%ED%A0%80", "%C0%80", "%FF", "%F4%90%80%80", "%E2%82"]),
    st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass").decode("latin-1")),
)


@PROPERTY_SETTINGS
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.lists(_FORM_PIECES, max_size=30).map(lambda p: "".join(p).encode("latin-1")),
        st.builds(lambda n: b"a=" + b"%5B" * n, THOUSANDS),
    )
)
def test_read_form_returns_a_form_or_raises_invalid_request(body: bytes) -> None:
    shown(body=body)
    media = "application/x-www-form-urlencoded"
    form = refused(lambda: run(read_form(json_request(body, media), 1 << 20)), InvalidRequest)
    if form is not None:
        assert isinstance(form, Form)
        form.as_dict()


def _parse_qsl_reading(body: bytes) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except ValueError:
        return "refused"


def _form_pairs_reading(body: bytes) -> list[tuple[str, str]] | str:
    try:
        return form_pairs(body)
    except ValueError:
        return "refused"


_ESCAPE_PIECES = st.one_of(
    _FORM_PIECES,
    st.sampled_from(["\\", "\\x41", "\\u00e9", "\\N{BULLET}", "\\\n", "%5C", "%%41", "%4", "%G1"]),
    st.sampled_from(["%C3%A9", "%c3%a9", "\u00e9".encode().decode("latin-1"), "%e2%82%ac", "+%2B"]),
    st.builds(lambda n: f"%{n:02X}", st.integers(0, 255)),
)


@settings(PROPERTY_SETTINGS, max_examples=400)
@given(
    body=st.one_of(
        st.binary(max_size=60),
        st.lists(_ESCAPE_PIECES, max_size=40).map(lambda p: "".join(p).encode("latin-1")),
        st.builds(
            lambda value: urlencode({"authorization_details": value}).encode(),
            st.text(max_size=40),
        ),
    )
)
def test_form_pairs_read_a_body_as_parse_qsl_does(body: bytes) -> None:
    # The form's own percent-decoding must give exactly what the standard library gives,
    # escapes, backslashes, `+`, malformed `%` and invalid UTF-8 included.
    shown(body=body)
    assert _form_pairs_reading(body) == _parse_qsl_reading(body)


@PROPERTY_SETTINGS
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["grant_type", "resource", "scope"]),
            st.one_of(st.text(max_size=5), hostile_string()),
        ),
        max_size=6,
    )
)
def test_form_returns_or_raises_invalid_request(pairs: list[tuple[str, str]]) -> None:
    shown(pairs=pairs)
    refused(lambda: Form(pairs), InvalidRequest)


# -- JOSE: DPoP proofs, client assertions, trusted issuers' tokens, PEP bearer tokens -----

DPOP_KEY = ECKey.generate_key("P-256")
TOKEN_URL = "https://bridge.test/token"


def dpop_header() -> dict[str, Any]:
    jwk = {k: v for k, v in DPOP_KEY.as_dict(private=False).items() if k != "kid"}
    return {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}


def dpop_payload() -> dict[str, Any]:
    return {"jti": "j-1", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}


def jose_tokens(header: dict[str, Any], payload: dict[str, Any]) -> st.SearchStrategy[str]:
    return st.one_of(
        *(hostile_jws(header, payload, part) for part in ("header", "payload")),
        *(deep_jws(header, payload, part) for part in ("header", "payload")),
    )


@PROPERTY_SETTINGS
@given(proof=jose_tokens(dpop_header(), dpop_payload()))
def test_dpop_proof_with_hostile_json_raises_invalid_dpop_proof(proof: str) -> None:
    shown(proof=proof)
    verifier = DPoPVerifier(DPoPSettings(), MemoryReplay())
    refused(
        lambda: run(verifier.verify(proof, method="POST", url=TOKEN_URL)),
        InvalidDPoPProof,
        UseDPoPNonce,
    )


ASSERTION_CLIENT = "signer"
ASSERTION_KEY = ECKey.generate_key("P-256", parameters={"kid": "signer-1"})


@cache
def client_authenticator() -> ClientAuthenticator:
    registry = ClientRegistry(
        {
            ASSERTION_CLIENT: ClientSettings.model_validate(
                {
                    "client_id": ASSERTION_CLIENT,
                    "auth_method": "private_key_jwt",
                    "jwks": {"keys": [ASSERTION_KEY.as_dict(private=False)]},
                }
            )
        }
    )
    return ClientAuthenticator(registry, MemoryReplay(), "https://bridge.test", TOKEN_URL)


def assertion_payload() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ASSERTION_CLIENT,
        "sub": ASSERTION_CLIENT,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": "a-1",
    }


@PROPERTY_SETTINGS
@given(
    assertion=jose_tokens({"alg": "ES256", "kid": "signer-1"}, assertion_payload()),
    with_client_id=st.booleans(),
)
def test_client_assertion_with_hostile_json_raises_invalid_client(
    assertion: str, with_client_id: bool
) -> None:
    shown(assertion=assertion, with_client_id=with_client_id)
    form = {"client_assertion_type": JWT_BEARER_ASSERTION, "client_assertion": assertion}
    if with_client_id:
        form["client_id"] = ASSERTION_CLIENT
    refused(
        lambda: run(client_authenticator().authenticate({}, form)), InvalidClient, InvalidRequest
    )


IDP = "https://idp.test"
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})


def idp_payload() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": IDP, "sub": "alice", "aud": "https://bridge.test", "iat": now, "exp": now + 60}


@cache
def trusted_issuers() -> TrustedIssuers:
    issuer = TrustedIssuerSettings(issuer=IDP, jwks={"keys": [IDP_KEY.as_dict(private=False)]})
    # Inline keys: the HTTP client is never used.
    return TrustedIssuers([issuer], "https://bridge.test", httpx.AsyncClient())


@pytest.mark.parametrize("part", ["header", "payload"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_trusted_issuer_token_with_hostile_json_raises_untrusted_token(
    part: str, data: st.DataObject
) -> None:
    shown(part=part)
    # Subject and actor tokens, jwt-bearer assertions and approver tokens all go through here.
    header = {"alg": "ES256", "kid": "idp-1", "typ": "JWT"}
    token = data.draw(
        st.one_of(hostile_jws(header, idp_payload(), part), deep_jws(header, idp_payload(), part)),
        label="token",
    )

    refused(lambda: run(trusted_issuers().verify(token)), UntrustedToken)


PEP_ISSUER = "https://pep-idp.test"
PEP_KEY = ECKey.generate_key("P-256", parameters={"kid": "pep-1"})


@cache
def pep_authenticator() -> PEPAuthenticator:
    settings = PEPAuthSettings(
        jwt_issuer=PEP_ISSUER, jwks={"keys": [PEP_KEY.as_dict(private=False)]}
    )
    return PEPAuthenticator(settings, realm="https://bridge.test/pdp")


@PROPERTY_SETTINGS
@given(
    token=jose_tokens(
        {"alg": "ES256", "kid": "pep-1"},
        {"iss": PEP_ISSUER, "aud": "https://bridge.test/pdp", "exp": 2_000_000_000},
    )
)
def test_pep_bearer_token_with_hostile_json_raises_unauthorized(token: str) -> None:
    shown(token=token)
    request = json_request(b"{}")
    request.scope["headers"].append((b"authorization", b"Bearer " + token.encode()))
    refused(lambda: run(pep_authenticator().authenticate(request)), AuthZENError)


# -- ARAP access request submissions (bridge/access_requests/submission.py) --------------

SUBMISSION: dict[str, Any] = {
    "subject": {"type": "client", "id": "demo-agent"},
    "resource": {"type": "CustomerRecord", "id": "cust-0001"},
    "action": {"name": "export"},
    "context": {"why": "audit"},
    "denial": {"binding_token": "x.y.z", "expires_at": "2030-01-01T00:00:00Z"},
}
SUBMISSION_PLACES: dict[str, tuple[str, ...]] = {
    "subject.id": ("subject", "id"),
    "subject.properties": ("subject", "properties", "x"),
    "resource.id": ("resource", "id"),
    "action.name": ("action", "name"),
    "context": ("context", "x"),
    "requested_access": ("requested_access", "requested_until"),
    "denial.binding_token": ("denial", "binding_token"),
}


@PROPERTY_SETTINGS
@given(
    text=st.one_of(
        hostile_object_text(SUBMISSION),
        st.builds(
            with_value_at,
            st.just(SUBMISSION),
            st.sampled_from(list(SUBMISSION_PLACES.values())),
            hostile_value_text(),
        ),
        st.builds(
            lambda item: object_text(
                [("subject", json_text(SUBMISSION["subject"])), ("items", f"[{item}]")]
            ),
            hostile_object_text({k: SUBMISSION[k] for k in ("resource", "action", "denial")}),
        ),
    )
)
def test_parse_submission_returns_a_submission_or_raises_an_access_request_problem(
    text: str,
) -> None:
    shown(text=text)
    body = authzen_body(text)
    if body is None:
        return
    refused(
        lambda: parse_submission(body, max_items=20, allow_private_callbacks=False),
        AccessRequestProblem,
    )
