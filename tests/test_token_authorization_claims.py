"""Authorization claims from AuthZEN resource searches (the authorization claims profile):
`groups`, `roles` and `entitlements` in the access token, each the ids a Resource Search
finds for the token's subject.

With the embedded Cedar engine (a store of its own where membership is policy: `member` of
a `group` the principal is in): the three registered bindings, a claim with no result is
`[]`, a deployment's own binding. With a scripted remote PDP over HTTP: what a search asks
(the subject, the binding, the evaluations' context and the token's `audience`), results
deduplicated across pages and sorted, no search for a refused request, and a failed search
(an error, a result of another type) leaving the claim out or refusing the token as
`on_failure` says, never an empty claim and never naming the claim to the client.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.settings import ConfigError, load_settings
from tests.conftest import POLICIES, ServerThread, serve
from tests.oauth_fixtures import OAuthServer, assert_oauth_error, server_config
from tests.support.scripted_pdp import Answer, ScriptedPDP

READ = {"grant_type": "client_credentials", "scope": "customer_records:read"}

MEMBERSHIP_POLICIES = """
@id("demo-agent-reads")
permit (principal == client::"demo-agent", action == Action::"read", resource is CustomerRecord);

@id("members")
permit (principal, action == Action::"member", resource is group) when { principal in resource };

@id("assignees")
permit (principal, action == Action::"assignee", resource is role) when { principal in resource };

@id("holders")
permit (principal, action == Action::"holder", resource is entitlement)
when { principal in resource };

@id("regions")
permit (principal, action == Action::"works_in", resource is region) when { principal in resource };
"""


def entity(kind: str, ident: str, *parents: tuple[str, str]) -> dict[str, Any]:
    return {
        "uid": {"type": kind, "id": ident},
        "attrs": {},
        "parents": [{"type": t, "id": i} for t, i in parents],
    }


ENTITIES = [
    entity(
        "client",
        "demo-agent",
        ("group", "release-managers"),
        ("role", "deployer"),
        ("region", "emea"),
    ),
    # Membership is transitive: release managers are engineers.
    entity("group", "release-managers", ("group", "engineering")),
    entity("group", "engineering"),
    entity("group", "sales"),
    entity("role", "deployer"),
    entity("role", "auditor"),
    entity("entitlement", "gold"),
    entity("region", "emea"),
]


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body


def bound(**claims: str) -> str:
    """`[pdp.authorization_claims.<claim>]` tables; each value is the table's body."""
    return "".join(f"\n[pdp.authorization_claims.{c}]\n{body}\n" for c, body in claims.items())


def running(config: Path) -> Iterator[OAuthServer]:
    with serve(load_settings(config)) as thread, httpx.Client(base_url=thread.url) as http:
        yield OAuthServer(thread, http, config, POLICIES / "default")


# -- the embedded engine ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cedar_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    folder = tmp_path_factory.mktemp("claims-cedar")
    store = folder / "store"
    store.mkdir()
    (store / "policies.cedar").write_text(MEMBERSHIP_POLICIES, encoding="utf-8")
    (store / "entities.json").write_text(json.dumps(ENTITIES), encoding="utf-8")
    extra = bound(
        groups='on_failure = "omit"',
        roles='on_failure = "refuse"',
        entitlements='on_failure = "omit"',
        regions='resource_type = "region"\naction = "works_in"\non_failure = "omit"',
    )
    yield from running(server_config(folder, policies=store, extra=extra))


def test_the_registered_claims_come_from_the_engines_searches(cedar_server: OAuthServer) -> None:
    claims = claims_of(cedar_server.issued(READ)["access_token"])
    assert claims["groups"] == ["engineering", "release-managers"]
    assert claims["roles"] == ["deployer"]
    # The search succeeded and found nothing: the claim says so, it is not left out.
    assert claims["entitlements"] == []
    # A deployment's own binding.
    assert claims["regions"] == ["emea"]
    # Enrichment is not authorization: what is granted is what was asked and permitted.
    assert claims["scope"] == "customer_records:read"


def test_claims_configured_change_no_refusal(cedar_server: OAuthServer) -> None:
    # A client the policies do not allow is refused as without claims (no token, no claim).
    form = {"grant_type": "client_credentials", "scope": "customer_records:read"}
    response = cedar_server.token(form, client="other-agent")
    assert_oauth_error(response, "invalid_scope")


# -- a remote PDP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdp() -> Iterator[ScriptedPDP]:
    scripted = ScriptedPDP()
    with ServerThread(scripted.app) as thread:
        scripted.url = thread.url
        yield scripted


@pytest.fixture
def scripted(pdp: ScriptedPDP) -> ScriptedPDP:
    pdp.reset()
    return pdp


def remote(pdp: ScriptedPDP) -> str:
    return f'\n[pdp]\nkind = "remote"\n\n[pdp.remote]\nurl = "{pdp.url}"\nretries = 0\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pdp: ScriptedPDP) -> Iterator[OAuthServer]:
    folder = tmp_path_factory.mktemp("claims-remote")
    extra = remote(pdp) + bound(groups='on_failure = "omit"', entitlements='on_failure = "refuse"')
    yield from running(server_config(folder, extra=extra))


def results(kind: str, *ids: str, next_token: str = "") -> Answer:
    page = {"next_token": next_token} if next_token else {}
    return {"results": [{"type": kind, "id": i} for i in ids], **({"page": page} if page else {})}


def test_each_claim_is_one_search_for_the_tokens_subject(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    body = server.issued(READ | {"resource": "https://crm.example.com"})
    searches = sorted(scripted.asked("search"), key=lambda s: s["action"]["name"])
    assert [(s["action"], s["resource"]) for s in searches] == [
        ({"name": "holder"}, {"type": "entitlement"}),
        ({"name": "member"}, {"type": "group"}),
    ]
    (evaluations,) = scripted.asked("evaluations")
    asked = evaluations["evaluations"][0]
    for search in searches:
        assert search["subject"] == asked["subject"]
        # The evaluations' context, and the token's targets (advisory, §6.3).
        assert search["context"] == {**asked["context"], "audience": ["https://crm.example.com"]}
    claims = claims_of(body["access_token"])
    assert claims["aud"] == ["https://crm.example.com"]
    assert claims["groups"] == [] and claims["entitlements"] == []


def test_results_are_a_set_across_pages_in_a_stable_order(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    def search(body: Answer) -> Answer:
        if body["resource"]["type"] != "group":
            return results("entitlement")
        if (body.get("page") or {}).get("token") == "p2":
            return results("group", "sales", "engineering")
        return results("group", "ops", "engineering", "ops", next_token="p2")

    scripted.search = search
    claims = claims_of(server.issued(READ)["access_token"])
    assert claims["groups"] == ["engineering", "ops", "sales"]


def test_a_search_that_never_ends_fails(server: OAuthServer, scripted: ScriptedPDP) -> None:
    pages = itertools.count(1)

    def search(body: Answer) -> Answer:
        if body["resource"]["type"] != "group":
            return results("entitlement")
        n = next(pages)
        return results("group", f"g-{n}", next_token=f"p{n + 1}")

    scripted.search = search
    claims = claims_of(server.issued(READ)["access_token"])
    # groups may be left out (on_failure = "omit"): a PDP paging forever gives no claim. A
    # remote PDP's pages are followed by the AuthZEN client, 1,000 at the most.
    assert "groups" not in claims and claims["entitlements"] == []
    groups = [s for s in scripted.asked("search") if s["resource"]["type"] == "group"]
    assert len(groups) == 1000


def test_a_result_carrying_obligations_is_left_out(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    step_up = {"id": "o-1", "type": "step-up", "properties": {"acr_value": "urn:loa:3"}}

    def search(body: Answer) -> Answer:
        if body["resource"]["type"] != "group":
            return results("entitlement")
        found = results("group", "engineering")
        found["results"].append({"type": "group", "id": "admins", "obligations": [step_up]})
        return found

    scripted.search = search
    # The obligations profile's Search rule: the bridge carries out none on results.
    claims = claims_of(server.issued(READ)["access_token"])
    assert claims["groups"] == ["engineering"]


def test_no_search_is_asked_for_a_token_not_issued(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    scripted.decide = lambda item: {"decision": False}
    assert_oauth_error(server.token(READ), "invalid_scope")
    assert scripted.asked("search") == []


def test_a_failed_search_leaves_its_claim_out_when_it_may(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    def search(body: Answer) -> Answer:
        if body["resource"]["type"] == "group":
            return {"status": 500, "error": {"status": 500, "message": "down"}}
        return results("entitlement", "gold")

    scripted.search = search
    claims = claims_of(server.issued(READ)["access_token"])
    # Not an empty claim: that would say the subject is in no group.
    assert "groups" not in claims
    assert claims["entitlements"] == ["gold"]


def test_a_result_of_another_type_fails_the_search(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    def search(body: Answer) -> Answer:
        if body["resource"]["type"] == "group":
            return results("role", "deployer")
        return results("entitlement")

    scripted.search = search
    claims = claims_of(server.issued(READ)["access_token"])
    assert "groups" not in claims and claims["entitlements"] == []


def test_a_failed_search_refuses_the_token_when_its_binding_says_so(
    server: OAuthServer, scripted: ScriptedPDP
) -> None:
    scripted.search = lambda body: (
        {"status": 503} if body["resource"]["type"] == "entitlement" else results("group", "x")
    )
    body = assert_oauth_error(server.token(READ), "server_error", 500)
    # A fault of the bridge's dependencies, and which claim failed is not said.
    assert "entitlement" not in body["error_description"]


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tables", "problem"),
    [
        (bound(groups=""), "on_failure"),
        (bound(departments='on_failure = "omit"'), "give resource_type and action"),
        (bound(sub='on_failure = "omit"'), "not a claim name a search may supply"),
        (
            '[pdp]\ntoken_claims = ["groups"]\n' + bound(groups='on_failure = "omit"'),
            "also in token_claims",
        ),
    ],
    ids=["no failure policy", "unbound claim", "reserved claim", "two sources"],
)
def test_a_claim_binding_the_bridge_cannot_use_is_refused(
    tmp_path: Path, tables: str, problem: str
) -> None:
    (tmp_path / "bridge.toml").write_text(tables, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_settings(tmp_path / "bridge.toml")
