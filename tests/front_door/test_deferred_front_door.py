"""The deferred front door over real HTTP: a person's
authorization request that needs an approval, finished later by the client with the
deferred grant, in the two ways DTR gives the code flow.

- Hint-only (DTR §5.2, the default): `completion_mode=deferred` rides on the authorization
  request, the consent page says the client will wait for approvers, a code comes back, and
  the token request must repeat the hint; its requestable denial is a Deferred Token
  Response filed for the person, with the client as actor.
- Direct (DTR PR #47, `front_door.direct_deferral`): the consent yields a `deferral_code`
  instead of a code; the `code_verifier` comes with the first poll only; polls are bound
  by client authentication or by DPoP through `dpop_jkt`; no pings.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.demo_approvers import mint
from bridge.settings import load_settings
from tests.front_door.helpers import (
    CALLBACK,
    CLIENTS,
    FrontDoorServer,
    authorization_params,
    claims_of,
    code_for,
    form_action,
    front_door_server,
    hidden,
    payment,
    pkce_pair,
    query_of,
    read_details,
    sign_in,
    start,
)
from tests.oauth_fixtures import DPoPKey

DEFERRED = "urn:ietf:params:oauth:grant-type:deferred"
INTERVAL = 1  # seconds between polls, the least the bridge allows: the tests wait it out
EXTRA = f"""
[access_requests]
demo_approver_key_file = "var/approvers.key"
[deferral]
interval_seconds = {INTERVAL}
"""
DIRECT = (
    EXTRA
    + """
[front_door]
direct_deferral = true
"""
)
# A confidential web application that may wait for approvals.
WAITING_SECRET = "waiting-web-secret-for-tests"
WAITING_WEB: dict[str, Any] = {
    "auth_method": "client_secret_basic",
    "secret": WAITING_SECRET,
    "grant_types": ["authorization_code", DEFERRED],
    "authorization_details_types": ["customer_records", "payment_initiation"],
    "redirect_uris": [CALLBACK],
}
# Registered for DTR pings, which a deferral made at /authorize never sends.
PINGED_WEB = {**WAITING_WEB, "notification_endpoint": "http://127.0.0.1:9/dtr"}
TEST_CLIENTS = {**CLIENTS, "waiting-web": WAITING_WEB, "pinged-web": PINGED_WEB}
WAITING_AUTH = ("waiting-web", WAITING_SECRET)


@pytest.fixture(scope="module")
def hinted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(
        tmp_path_factory.mktemp("hinted"), extra=EXTRA, clients=TEST_CLIENTS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoorServer]:
    with front_door_server(
        tmp_path_factory.mktemp("direct"), extra=DIRECT, clients=TEST_CLIENTS
    ) as running:
        yield running


def finance_approves(server: FrontDoorServer, cents: int) -> dict[str, Any]:
    """finance-1 approves, through the approver API, the request about `cents`."""
    settings = load_settings(server.folder / "bridge.toml")
    headers = {"Authorization": f"Bearer {mint(settings, 'finance-1', 10)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        waiting = api.get("/access/v1/approvals").json()["access_requests"]
        [task] = [
            t
            for t in waiting
            if t["items"][0]["resource"].get("properties", {}).get("amount_minor") == cents
        ]
        decided = api.post(f"/access/v1/approvals/{task['id']}", json={"decision": "approve"})
        assert decided.status_code == 200, decided.text
        body: dict[str, Any] = decided.json()["access_request"]
        return body


def unique_payment() -> tuple[list[dict[str, Any]], int]:
    """A payment finance must approve, of an amount no other test uses."""
    cents = 200_000 + int(time.time() * 1000) % 7_000_000
    amount = f"{cents // 100}.{cents % 100:02d}"
    return payment(amount), cents


def exchange(server: FrontDoorServer, code: str, verifier: str, **extra: str) -> httpx.Response:
    """waiting-web redeems its code (with `extra` parameters, e.g. completion_mode)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": CALLBACK,
        **extra,
    }
    return httpx.post(server.url + "/token", data=form, auth=WAITING_AUTH, timeout=30)


def poll(
    server: FrontDoorServer,
    code: str,
    *,
    verifier: str | None = None,
    key: DPoPKey | None = None,
    public: bool = False,
    auth: tuple[str, str] = WAITING_AUTH,
) -> httpx.Response:
    form = {"grant_type": DEFERRED, "deferral_code": code}
    if verifier is not None:
        form["code_verifier"] = verifier
    headers = {}
    if key is not None:
        headers["DPoP"] = key.proof(htu=server.url + "/token")
    if public:
        form["client_id"] = "demo-web"
        return httpx.post(server.url + "/token", data=form, headers=headers, timeout=30)
    return httpx.post(server.url + "/token", data=form, auth=auth, headers=headers, timeout=30)


def poll_until(server: FrontDoorServer, code: str, **kwargs: Any) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        time.sleep(INTERVAL)
        answer = poll(server, code, **kwargs)
        if answer.status_code != 400 or answer.json()["error"] != "authorization_pending":
            return answer
        assert time.monotonic() < deadline, "never settled"


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error: str = response.json()["error"]
    return error


# -- hint-only ----------------------------------------------------------------------------


def test_the_consent_page_says_the_client_will_wait_for_approvers(hinted: FrontDoorServer) -> None:
    details, _ = unique_payment()
    for hint, shown in (("deferred", True), ("", False)):
        _, challenge = pkce_pair()
        params = authorization_params(challenge, details=details, completion_mode=hint)
        with hinted.browser() as browser:
            interaction = start(browser, params).headers["location"]
            assert sign_in(browser, interaction).status_code == 303
            page = html.unescape(browser.get(interaction).text)
            assert ('id="deferred"' in page) is shown
            if shown:
                assert "gets its token once they have approved" in page


def test_a_hinted_code_needs_completion_mode_at_the_token_endpoint(hinted: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(
        challenge,
        client_id="waiting-web",
        details=read_details("cust-0001"),
        completion_mode="deferred",
    )
    code = code_for(hinted, params)["code"]
    answer = exchange(hinted, code, verifier)
    assert error_of(answer) == "invalid_request"
    assert "completion_mode=deferred" in answer.json()["error_description"]


def test_the_code_flow_waits_for_finance_and_the_poll_yields_alices_token(
    hinted: FrontDoorServer,
) -> None:
    details, cents = unique_payment()
    verifier, challenge = pkce_pair()
    params = authorization_params(
        challenge, client_id="waiting-web", details=details, completion_mode="deferred"
    )
    code = code_for(hinted, params)["code"]
    deferred = exchange(hinted, code, verifier, completion_mode="deferred")
    assert error_of(deferred) == "authorization_pending"
    deferral = deferred.json()["deferral_code"]
    task = finance_approves(hinted, cents)
    assert task["subject"]["id"] == "alice"
    assert task["subject"]["properties"]["act"] == {"sub": "waiting-web"}
    assert task["context"]["client_id"] == "waiting-web"
    issued = poll_until(hinted, deferral)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "alice" and claims["client_id"] == "waiting-web"
    approved_until = task["items"][0]["result"]["approval"]["approved_until"]
    until = time.mktime(time.strptime(approved_until, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert claims["exp"] <= until
    assert "refresh_token" not in body  # an approval bounds the whole credential (AROP)
    assert body["authorization_details"] == details


def test_without_a_hint_the_token_request_may_still_opt_in(hinted: FrontDoorServer) -> None:
    details, _ = unique_payment()
    verifier, challenge = pkce_pair()
    params = authorization_params(challenge, client_id="waiting-web", details=details)
    code = code_for(hinted, params)["code"]
    answer = exchange(hinted, code, verifier, completion_mode="deferred")
    assert error_of(answer) == "authorization_pending"


def test_without_direct_deferral_the_metadata_does_not_offer_it(hinted: FrontDoorServer) -> None:
    metadata = httpx.get(hinted.url + "/.well-known/oauth-authorization-server").json()
    assert "deferred_authorization_endpoint_supported" not in metadata


# -- direct deferral ----------------------------------------------------------------------


def deferral_for(
    server: FrontDoorServer, client_id: str = "waiting-web"
) -> tuple[dict[str, str], str, int]:
    """The callback's parameters after alice allows a payment finance must approve (with
    completion_mode=deferred), the PKCE verifier, and the amount in cents."""
    details, cents = unique_payment()
    verifier, challenge = pkce_pair()
    params = authorization_params(
        challenge, client_id=client_id, details=details, completion_mode="deferred"
    )
    return code_for(server, params), verifier, cents


def test_the_metadata_offers_direct_deferral(direct: FrontDoorServer) -> None:
    metadata = httpx.get(direct.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["deferred_authorization_endpoint_supported"] is True


def test_consent_yields_a_deferral_code_and_the_first_poll_proves_pkce(
    direct: FrontDoorServer,
) -> None:
    answer, verifier, cents = deferral_for(direct)
    assert set(answer) == {"deferral_code", "state", "expires_in", "interval", "iss"}
    assert answer["iss"] == direct.issuer and int(answer["interval"]) == INTERVAL
    code = answer["deferral_code"]
    assert error_of(poll(direct, code, verifier=verifier)) == "authorization_pending"
    time.sleep(INTERVAL)
    again = poll(direct, code, verifier=verifier)
    assert error_of(again) == "invalid_request"
    assert "first poll only" in again.json()["error_description"]
    finance_approves(direct, cents)
    issued = poll_until(direct, code)
    assert issued.status_code == 200, issued.text
    assert claims_of(issued.json()["access_token"])["sub"] == "alice"


@pytest.mark.parametrize("verifier", [None, "wrong-" + "v" * 40], ids=["missing", "wrong"])
def test_a_first_poll_without_the_right_verifier_ends_the_deferral(
    direct: FrontDoorServer, verifier: str | None
) -> None:
    answer, right, _ = deferral_for(direct)
    code = answer["deferral_code"]
    assert error_of(poll(direct, code, verifier=verifier)) == "invalid_grant"
    time.sleep(INTERVAL)
    assert error_of(poll(direct, code, verifier=right)) == "invalid_request"  # not the first
    time.sleep(INTERVAL)
    assert error_of(poll(direct, code)) == "access_denied"


def test_a_request_that_needs_no_approval_still_gets_a_code(direct: FrontDoorServer) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(
        challenge,
        client_id="waiting-web",
        details=read_details("cust-0001"),
        completion_mode="deferred",
    )
    answer = code_for(direct, params)
    assert set(answer) == {"code", "state", "iss"}
    # The hint holds at /token: without completion_mode, invalid_request.
    assert error_of(exchange(direct, answer["code"], verifier)) == "invalid_request"


def test_a_public_client_without_dpop_jkt_gets_a_code(direct: FrontDoorServer) -> None:
    details, _ = unique_payment()
    _, challenge = pkce_pair()
    params = authorization_params(challenge, details=details, completion_mode="deferred")
    assert "code" in code_for(direct, params)


def test_a_public_client_polls_with_its_dpop_jkt(direct: FrontDoorServer) -> None:
    key = DPoPKey()
    details, cents = unique_payment()
    verifier, challenge = pkce_pair()
    params = authorization_params(
        challenge, details=details, completion_mode="deferred", dpop_jkt=key.jkt
    )
    answer = code_for(direct, params)
    code = answer["deferral_code"]
    assert error_of(poll(direct, code, verifier=verifier, public=True)) == "invalid_dpop_proof"
    assert error_of(poll(direct, code, verifier=verifier, key=DPoPKey(), public=True)) == (
        "invalid_dpop_proof"
    )
    first = poll(direct, code, verifier=verifier, key=key, public=True)
    assert error_of(first) == "authorization_pending"
    finance_approves(direct, cents)
    issued = poll_until(direct, code, key=key, public=True)
    assert issued.status_code == 200, issued.text
    assert claims_of(issued.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_form_post_carries_the_deferral_code(direct: FrontDoorServer) -> None:
    details, _ = unique_payment()
    _, challenge = pkce_pair()
    params = authorization_params(
        challenge,
        client_id="waiting-web",
        details=details,
        completion_mode="deferred",
        response_mode="form_post",
    )
    with direct.browser() as browser:
        interaction = start(browser, params).headers["location"]
        assert sign_in(browser, interaction).status_code == 303
        page = browser.get(interaction).text
        posted = browser.post(
            form_action(page),
            data={"csrf_token": hidden(page, "csrf_token"), "decision": "approve"},
        )
    assert posted.status_code == 200
    assert 'name="deferral_code"' in posted.text and 'name="code"' not in posted.text


def test_a_fragment_response_mode_is_refused(direct: FrontDoorServer) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(
        challenge, client_id="waiting-web", completion_mode="deferred", response_mode="fragment"
    )
    with direct.browser() as browser:
        refused = start(browser, params)
    assert refused.status_code == 303
    assert query_of(refused.headers["location"])["error"] == "invalid_request"


def test_no_ping_for_a_deferral_made_at_the_authorization_endpoint(
    direct: FrontDoorServer,
) -> None:
    answer, verifier, cents = deferral_for(direct, client_id="pinged-web")
    code, auth = answer["deferral_code"], ("pinged-web", WAITING_SECRET)
    assert error_of(poll(direct, code, verifier=verifier, auth=auth)) == "authorization_pending"
    finance_approves(direct, cents)
    assert poll_until(direct, code, auth=auth).status_code == 200
    assert direct.rows(
        "SELECT notification_endpoint FROM deferrals WHERE client_id = 'pinged-web'"
    ) == [(None,)]
    assert direct.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'deferral_ping'") == [(0,)]
