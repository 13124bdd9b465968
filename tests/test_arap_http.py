"""The access request endpoints over real HTTP, beside the store's AuthZEN API.

The app is small: the real Cedar store and PDP wrapped in the ARAP decision point, the
AuthZEN routes of the default store, the access request routes, and the real SQLite store,
served by uvicorn on a loopback port. The product app is wired by app.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from bridge.access_requests.assembly import AccessRequests
from bridge.access_requests.auth import RequesterAuthenticator
from bridge.access_requests.metadata import CAPABILITY, with_access_requests
from bridge.authzen.cedar.engine import CedarPDP
from bridge.authzen.cedar.reload import StoreHolder
from bridge.authzen.cedar.store import load_store
from bridge.authzen.errors import Unauthorized
from bridge.authzen.pagination import Paginator
from bridge.authzen.pep_auth import PEPAuthenticator
from bridge.authzen.routes import StoreAPI, StoreEndpoints
from bridge.jose.signing_keys import SigningKeys
from bridge.jose.trusted_issuers import TrustedIssuers
from bridge.settings import PEPAuthSettings
from tests.conftest import ServerThread
from tests.test_arap_support import (
    BRIDGE,
    IDP,
    IDP_KEY,
    OTHER_IDP,
    ArapStore,
    approver_token,
    make_settings,
    secret_doc,
    write_store,
)

URN = "urn:openid:authzen:access-request:error:"
PROBLEM = "application/problem+json"


def build_app(tmp_path: Path, auth: PEPAuthSettings) -> Starlette:
    settings = make_settings()
    folder = write_store(tmp_path / "store")
    cedar = CedarPDP(
        StoreHolder(load_store("default", folder)), Paginator(None, 100), explanations=False
    )
    store = ArapStore(tmp_path / "bridge.sqlite3")
    keys = SigningKeys(store, bytes(range(32)), "ES256")
    http = httpx.AsyncClient()
    issuers = TrustedIssuers(settings.oauth.trusted_issuers, settings.issuer, http)
    endpoints = StoreEndpoints("default", BRIDGE)
    ars = AccessRequests(settings, store, keys, {endpoints.pdp_id: cedar}, issuers)
    pdp = ars.decision_point(cedar, endpoints.pdp_id)
    api = StoreAPI(endpoints, pdp, PEPAuthenticator(auth, BRIDGE), settings.limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        await keys.ensure()
        yield
        await http.aclose()
        await store.close()

    return Starlette(routes=[*api.routes(), *ars.routes(auth)], lifespan=lifespan)


@contextlib.contextmanager
def running(tmp_path: Path, auth: PEPAuthSettings) -> Iterator[httpx.Client]:
    with ServerThread(build_app(tmp_path, auth)) as server, httpx.Client(base_url=server.url) as c:
        yield c


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running(tmp_path_factory.mktemp("arap-http"), PEPAuthSettings()) as c:
        yield c


def as_approver(sub: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {approver_token(sub, **kwargs)}"}


def submission(client: httpx.Client, doc: str, **headers: str) -> dict[str, Any]:
    """Evaluate over the AuthZEN API, and build the submission from the denial."""
    request = secret_doc(doc)
    denial = client.post("/access/v1/evaluation", json=request, headers=headers).json()
    assert denial["decision"] is False
    ar = denial["context"]["access_request"]
    echo = {"evaluation_id": denial["context"]["evaluation_id"], "expires_at": ar["expires_at"]}
    return {**request, "denial": {**echo, "binding_token": ar["binding_token"]}}


def is_problem(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    if kind is not None:
        assert body["type"] == URN + kind
    return body


def test_request_approve_reevaluate(client: httpx.Client) -> None:
    body = submission(client, "plan")
    created = client.post("/access/v1/requests", json=body, headers={"Idempotency-Key": "k1"})
    assert created.status_code == 202, created.text
    task = created.json()["task"]
    assert created.headers["location"] == task["status_endpoint"]
    assert created.headers["cache-control"] == "no-store"
    path = f"/access/v1/requests/{task['id']}"
    assert client.get(path).json()["task"]["status"] == "pending"

    inbox = client.get("/access/v1/approvals", headers=as_approver("maria")).json()
    assert task["id"] in [t["id"] for t in inbox["access_requests"]]
    decided = client.post(
        f"/access/v1/approvals/{task['id']}",
        json={"decision": "approve", "justification": "renewal"},
        headers=as_approver("maria"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["access_request"]["status"] == "approved"

    status = client.get(path).json()
    assert status["task"]["status"] == "approved"
    approval = status["result"]["approval"]
    again = secret_doc("plan", approval=approval)
    permitted = client.post("/access/v1/evaluation", json=again).json()
    assert permitted["decision"] is True
    assert permitted["context"]["approval"]["id"] == approval["id"]


def test_requester_errors_are_problems(client: httpx.Client) -> None:
    url = "/access/v1/requests"
    is_problem(client.post(url, content=b"{", headers={"Content-Type": "application/json"}), 400)
    is_problem(client.post(url, content=b"{}", headers={"Content-Type": "text/plain"}), 415)
    is_problem(client.post(url, json=secret_doc("x")), 400, "not_requestable")
    body = submission(client, "memo")
    tampered = {**body, "resource": {"type": "Doc", "id": "other", "properties": {"secret": True}}}
    is_problem(client.post(url, json=tampered), 400, "invalid_denial_binding")
    first = client.post(url, json=body, headers={"Idempotency-Key": "same"})
    assert first.status_code == 202
    replay = client.post(url, json=body, headers={"Idempotency-Key": "same"})
    assert replay.json()["task"]["id"] == first.json()["task"]["id"]
    other = submission(client, "memo-2")
    is_problem(
        client.post(url, json=other, headers={"Idempotency-Key": "same"}), 409, "duplicate_request"
    )
    is_problem(client.get(f"{url}/arq_unknown"), 404, "unknown_task")
    task_id = first.json()["task"]["id"]
    cancelled = client.post(f"{url}/{task_id}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200 and cancelled.json()["task"]["status"] == "cancelled"
    is_problem(client.delete(f"{url}/{task_id}/cancel"), 409, "invalid_task_state")


def test_approver_errors(client: httpx.Client) -> None:
    task_id = client.post("/access/v1/requests", json=submission(client, "budget")).json()["task"][
        "id"
    ]
    url = f"/access/v1/approvals/{task_id}"
    missing = is_problem(client.get("/access/v1/approvals"), 401)
    assert missing["type"] == "about:blank"
    challenge = client.get("/access/v1/approvals").headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "error" not in challenge
    wrong_aud = client.post(
        url, json={"decision": "approve"}, headers=as_approver("maria", audience="x")
    )
    is_problem(wrong_aud, 401)
    assert 'error="invalid_token"' in wrong_aud.headers["www-authenticate"]
    stranger = as_approver("maria", issuer=OTHER_IDP)
    is_problem(client.post(url, json={"decision": "approve"}, headers=stranger), 401)
    # Alice may approve manager requests, but this one is her own.
    is_problem(client.post(url, json={"decision": "approve"}, headers=as_approver("alice")), 403)
    is_problem(client.get(url, headers=as_approver("bob")), 403)
    for bad in ({"decision": "yes"}, {"decision": "approve", "approved_until": "later"}):
        is_problem(client.post(url, json=bad, headers=as_approver("maria")), 400)
    shown = client.get(url, headers=as_approver("maria")).json()["access_request"]
    assert shown["status"] == "pending" and shown["actionable_items"] == [0]
    denied = client.post(url, json={"decision": "deny"}, headers=as_approver("maria"))
    assert denied.json()["access_request"]["status"] == "denied"
    again = client.post(url, json={"decision": "deny"}, headers=as_approver("maria"))
    is_problem(again, 409, "invalid_task_state")


def test_requesters_are_the_stores_peps(tmp_path: Path) -> None:
    auth = PEPAuthSettings.model_validate({"api_keys": ["key-a", "key-b"]})
    with running(tmp_path, auth) as c:
        a, b = {"Authorization": "Bearer key-a"}, {"Authorization": "key-b"}
        body = submission(c, "plan", **a)
        refused = c.post("/access/v1/requests", json=body)
        is_problem(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        task_id = c.post("/access/v1/requests", json=body, headers=a).json()["task"]["id"]
        assert c.get(f"/access/v1/requests/{task_id}", headers=a).status_code == 200
        is_problem(c.get(f"/access/v1/requests/{task_id}", headers=b), 404, "unknown_task")
        is_problem(c.post(f"/access/v1/requests/{task_id}/cancel", headers=b), 404, "unknown_task")


def test_metadata_additions() -> None:
    base = StoreEndpoints("default", BRIDGE).metadata()
    merged = with_access_requests(
        base, endpoint=BRIDGE + "/access/v1/requests", jwks_uri=BRIDGE + "/jwks"
    )
    assert merged["access_request_endpoint"] == BRIDGE + "/access/v1/requests"
    assert merged["jwks_uri"] == BRIDGE + "/jwks"
    assert merged["capabilities"] == [CAPABILITY]
    assert with_access_requests(merged, endpoint="e", jwks_uri="j")["capabilities"] == [CAPABILITY]
    assert base["capabilities"] == []  # the original is not changed


async def test_jwt_requesters_are_named_by_sub() -> None:
    auth = PEPAuthSettings.model_validate(
        {"jwt_issuer": IDP, "jwks": {"keys": [IDP_KEY.as_dict(private=False)]}}
    )
    requesters = RequesterAuthenticator(auth, realm=BRIDGE)

    def request(token: str) -> Request:
        headers = [(b"authorization", f"Bearer {token}".encode())]
        return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})

    token = approver_token("pep-7", issuer=IDP, audience=BRIDGE)
    assert await requesters.identify(request(token)) == "pep:pep-7"
    with pytest.raises(Unauthorized):
        await requesters.identify(request(approver_token("pep-7", audience="elsewhere")))
    anonymous = RequesterAuthenticator(PEPAuthSettings(), realm=BRIDGE, allow_anonymous=True)
    assert await anonymous.identify(request("whatever")) == "pep:anonymous"
    # Without the option, a store that asks for no credential refuses requesters.
    refused = RequesterAuthenticator(PEPAuthSettings(), realm=BRIDGE)
    with pytest.raises(Unauthorized, match="authenticated requester"):
        await refused.identify(request("whatever"))
