"""A PDP's `step-up` obligation at the front door (the AuthZEN obligations profile, carried
out as RFC 9470 has a client ask for a stronger sign-in).

The PDP is a scripted remote one over HTTP (its decisions carry the obligation); the
organisation's OpenID Provider is a stand-in that signs the person in at once with the
`acr` it was asked for (or one it is told to give), so the test sees what the bridge sends
and checks. alice signs in with her password; the code's token is refused with
`insufficient_user_authentication` and `acr_values`; the client sends her back with
`acr_values`, she signs in again at the provider, and the token is issued, saying how she
signed in (and refreshed, still saying so). Refused when it cannot be carried out: the
provider gives another `acr` (`unmet_authentication_requirements`), a bridge with no
method reaching the `acr` (a denial at /token, the same error at /authorize).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.front_door.step_up import LOCAL_PASSWORD_ACR
from tests.conftest import ServerThread
from tests.front_door.helpers import (
    CALLBACK,
    FrontDoorServer,
    authorization_params,
    claims_of,
    code_for,
    consent,
    form_action,
    front_door_server,
    hidden,
    pkce_pair,
    query_of,
    redeem,
    start,
)
from tests.support.scripted_pdp import Answer, ScriptedPDP

MFA = "urn:example:loa:mfa"
WEAK = "urn:example:loa:1"
BRIDGE_ID = "authzen-bridge"
BRIDGE_SECRET = secrets.token_urlsafe(24)


class StandInProvider:
    """An OpenID Provider that signs alice in without a page: its authorization endpoint
    answers at once with a code, and the ID token names the `acr` asked for (`acr_values`'
    first), or `give_acr` when set. It records the authorization requests it got."""

    def __init__(self) -> None:
        self.url = ""
        self.give_acr: str | None = None
        self.requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._key = ECKey.generate_key("P-256", parameters={"kid": "op-1"}, private=True)
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._metadata),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "jwks_uri": self.url + "/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self._key.as_dict(private=False)]})

    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.requests.append(query)
        asked = query.get("acr_values", "").split()
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"nonce": query["nonce"], "acr": self.give_acr or asked[0]}
        answer = {"code": code, "state": query["state"], "iss": self.url}
        return RedirectResponse(query["redirect_uri"] + "?" + urlencode(answer), 303)

    async def _token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        granted = self._codes.pop(form.get("code", [""])[0], None)
        if granted is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": "alice",
            "aud": BRIDGE_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": granted["nonce"],
            "acr": granted["acr"],
            "amr": ["pwd", "otp"],
        }
        token = jwt.encode({"alg": "ES256", "kid": "op-1"}, claims, self._key)
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": token})


def step_up(acr: str) -> Any:
    def decide(item: Answer) -> Answer:
        obligation = {"id": "obl-1", "type": "step-up", "properties": {"acr_value": acr}}
        return {"decision": True, "context": {"obligations": [obligation]}}

    return decide


@pytest.fixture(scope="module")
def provider() -> Iterator[StandInProvider]:
    stand_in = StandInProvider()
    with ServerThread(stand_in.app) as thread:
        stand_in.url = thread.url
        yield stand_in


@pytest.fixture(scope="module")
def pdp() -> Iterator[ScriptedPDP]:
    scripted = ScriptedPDP()
    with ServerThread(scripted.app) as thread:
        scripted.url = thread.url
        yield scripted


def remote_pdp(pdp: ScriptedPDP) -> str:
    return f'[pdp]\nkind = "remote"\n[pdp.remote]\nurl = "{pdp.url}"\nretries = 0\n'


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, pdp: ScriptedPDP, provider: StandInProvider
) -> Iterator[FrontDoorServer]:
    upstream = f"""
[front_door.upstream_signin]
issuer = "{provider.url}"
client_id = "{BRIDGE_ID}"
client_secret = "{BRIDGE_SECRET}"
allow_private_network = true
"""
    extra = remote_pdp(pdp) + upstream
    with front_door_server(tmp_path_factory.mktemp("step-up"), extra=extra) as running:
        yield running


@pytest.fixture
def scripted(pdp: ScriptedPDP, provider: StandInProvider) -> ScriptedPDP:
    pdp.reset()
    provider.give_acr = None
    return pdp


def at_the_provider(
    browser: httpx.Client, interaction: str, provider: StandInProvider, *, again: bool = False
) -> httpx.Response:
    """Sign in (`again`) from the interaction's sign-in page: off to the provider and back."""
    page = browser.get(interaction)
    assert page.status_code == 200, page.text
    assert 'name="password"' not in page.text  # a password is not what was asked for
    assert ("stronger sign-in than the one you used" in page.text) == again
    off = browser.post(form_action(page.text), data={"csrf_token": hidden(page.text, "csrf_token")})
    assert off.status_code == 303 and off.headers["location"].startswith(provider.url), off.text
    back = browser.get(off.headers["location"])
    assert back.status_code == 303
    return browser.get(back.headers["location"])


def test_a_step_up_signs_the_person_in_again_and_then_the_token_is_issued(
    server: FrontDoorServer, scripted: ScriptedPDP, provider: StandInProvider
) -> None:
    scripted.decide = step_up(MFA)
    verifier, challenge = pkce_pair()
    with server.browser() as browser:
        # alice signs in with her password: not the sign-in the policy asks for.
        interaction = start(browser, authorization_params(challenge)).headers["location"]
        page = browser.get(interaction)
        browser.post(
            form_action(page.text),
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": "alice",
                "password": "demo-alice",
            },
        )
        code = query_of(consent(browser, interaction).headers["location"])["code"]
        refused = redeem(server, code, verifier)
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["error"] == "insufficient_user_authentication"
        assert body["acr_values"] == MFA
        assert "access_token" not in body

        # RFC 9470 §4: the client asks again, with the acr_values it was told.
        verifier, challenge = pkce_pair()
        started = start(browser, authorization_params(challenge, acr_values=MFA))
        interaction = started.headers["location"]
        back = at_the_provider(browser, interaction, provider, again=True)
        assert back.status_code == 303 and back.headers["location"] == interaction
        assert provider.requests[-1]["acr_values"] == MFA
        answer = consent(browser, interaction)
        code = query_of(answer.headers["location"])["code"]
    token = redeem(server, code, verifier)
    assert token.status_code == 200, token.text
    claims = claims_of(token.json()["access_token"])
    # RFC 9470 §6.1: the token says how the person signed in.
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp"]
    assert isinstance(claims["auth_time"], int)
    # A refresh remembers it: the step-up holds without another sign-in.
    refreshed = httpx.post(
        server.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token.json()["refresh_token"],
            "client_id": "demo-web",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["acr"] == MFA


def test_a_sign_in_below_the_acr_asked_is_unmet_authentication_requirements(
    server: FrontDoorServer, scripted: ScriptedPDP, provider: StandInProvider
) -> None:
    provider.give_acr = WEAK
    _, challenge = pkce_pair()
    params = authorization_params(challenge, acr_values=MFA)
    with server.browser() as browser:
        interaction = start(browser, params).headers["location"]
        back = at_the_provider(browser, interaction, provider)
        assert back.status_code == 303
        answer = query_of(back.headers["location"])
        assert back.headers["location"].startswith(CALLBACK)
        assert answer["error"] == "unmet_authentication_requirements"
        assert answer["state"] == params["state"]


def test_a_step_up_the_password_already_meets_is_honoured_at_once(
    server: FrontDoorServer, scripted: ScriptedPDP
) -> None:
    scripted.decide = step_up(LOCAL_PASSWORD_ACR)
    verifier, challenge = pkce_pair()
    code = code_for(server, authorization_params(challenge))["code"]
    token = redeem(server, code, verifier)
    assert token.status_code == 200, token.text
    assert claims_of(token.json()["access_token"])["acr"] == LOCAL_PASSWORD_ACR


def test_a_password_is_refused_where_a_stronger_sign_in_is_asked(
    server: FrontDoorServer, scripted: ScriptedPDP
) -> None:
    _, challenge = pkce_pair()
    with server.browser() as browser:
        interaction = start(browser, authorization_params(challenge, acr_values=MFA))
        uid = interaction.headers["location"]
        page = browser.get(uid)
        posted = browser.post(
            uid + "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": "alice",
                "password": "demo-alice",
            },
        )
        assert posted.status_code == 400
        assert "stronger sign-in than a password" in posted.text


def test_acr_values_that_are_not_a_short_list_are_invalid_request(
    server: FrontDoorServer, scripted: ScriptedPDP
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, acr_values=" ".join(f"a{n}" for n in range(11)))
    with server.browser() as browser:
        answer = start(browser, params)
    assert query_of(answer.headers["location"])["error"] == "invalid_request"


# -- a bridge whose only sign-in is a password --------------------------------------------------


@pytest.fixture(scope="module")
def password_only(
    tmp_path_factory: pytest.TempPathFactory, pdp: ScriptedPDP
) -> Iterator[FrontDoorServer]:
    with front_door_server(tmp_path_factory.mktemp("password"), extra=remote_pdp(pdp)) as running:
        yield running


def test_a_step_up_no_sign_in_here_reaches_is_a_denial(
    password_only: FrontDoorServer, scripted: ScriptedPDP
) -> None:
    scripted.decide = step_up(MFA)
    verifier, challenge = pkce_pair()
    code = code_for(password_only, authorization_params(challenge))["code"]
    refused = redeem(password_only, code, verifier)
    # Not a challenge the client could act on: the obligation cannot be complied with.
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_authorization_details"


def test_acr_values_no_sign_in_here_reaches_are_unmet_at_once(
    password_only: FrontDoorServer, scripted: ScriptedPDP, tmp_path: Path
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(challenge, acr_values=MFA)
    with password_only.browser() as browser:
        interaction = start(browser, params).headers["location"]
        answer = browser.get(interaction)
    assert answer.status_code == 303
    assert query_of(answer.headers["location"])["error"] == "unmet_authentication_requirements"
