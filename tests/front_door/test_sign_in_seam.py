"""The seam other sign-in methods plug into: `establish_session(request, person)`. A method
written here, as an upstream OpenID Provider's callback would be, signs bob in; the
interaction continues to consent and the token is bob's, with his subject type."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.front_door.person import Person
from bridge.front_door.sessions import establish_session
from tests.front_door.helpers import (
    authorization_params,
    claims_of,
    consent,
    front_door_server,
    payment,
    pkce_pair,
    query_of,
    redeem,
    start,
)


async def another_method(request: Request) -> Response:
    # What a method does once it has verified the person (here: nothing to verify).
    person = Person(
        name="bob", subject_type="user", properties={"department": "sales"}, method="test"
    )
    return await establish_session(request, person)


def test_a_method_that_calls_establish_session_signs_the_person_in(tmp_path: Path) -> None:
    with front_door_server(tmp_path) as server:
        server.thread.app.app.router.routes.append(
            Route("/test-sign-in", another_method, methods=["POST"])
        )
        verifier, challenge = pkce_pair()
        with server.browser() as browser:
            interaction = start(
                browser, authorization_params(challenge, details=payment("20.00"))
            ).headers["location"]
            planted = dict(browser.cookies)
            signed_in = browser.post("/test-sign-in")
            assert signed_in.status_code == 303 and signed_in.headers["location"] == interaction
            assert dict(browser.cookies) != planted  # a new session
            assert "Signed in as <strong>bob</strong>" in browser.get(interaction).text
            code = query_of(consent(browser, interaction).headers["location"])["code"]
        token = redeem(server, code, verifier)
        assert token.status_code == 200, token.text
        assert claims_of(token.json()["access_token"])["sub"] == "bob"
