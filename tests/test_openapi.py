"""openapi/bridge.json describes exactly the routes the app serves with bridge.toml.

Routes of named stores are concrete (`/stores/todo/access/v1/evaluation`); the description
has them once, templated (`/stores/{store}/access/v1/evaluation`). Other path parameters
(`{task_id}`) are templated in the routes as well and must be named as the routes name them.
Every route must match a described path and method, and every described path and method
must be served, for every named store when the path is templated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from joserfc.jwk import ECKey
from starlette.routing import Route

from bridge.access_requests import problems
from bridge.access_requests.metadata import with_access_requests
from bridge.access_requests.routes import API_PATH
from bridge.app import create_app
from bridge.authzen.routes import StoreEndpoints
from bridge.ciba.assembly import CibaMetadata
from bridge.ciba.endpoint import BACKCHANNEL_PATH
from bridge.deferral.extension import DeferredResponses
from bridge.deferral.models import GRANT_DEFERRED
from bridge.errors import OAuthError
from bridge.events.event_types import SESSION_REVOKED
from bridge.front_door.metadata import PAR_PATH, FrontDoorMetadata
from bridge.oauth.metadata import (
    INTROSPECTION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
)
from bridge.oauth.obligations import Obligations
from bridge.settings import EventsSettings, Settings, load_settings
from tests.conftest import serve

REPO = Path(__file__).resolve().parents[1]
DESCRIPTION = REPO / "openapi" / "bridge.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# These answer RFC 6749 errors; routing (405) and faults (500) answer in the bridge's shape.
OAUTH_ENDPOINTS = {TOKEN_PATH, INTROSPECTION_PATH, REVOCATION_PATH, PAR_PATH, BACKCHANNEL_PATH}
# The front door's pages answer HTML, errors included; routing (405) in the bridge's shape.
PAGE_ENDPOINTS = (
    "/authorize",
    "/interaction",
    "/sign-in",
    "/sign-out",
    "/signed-in",
    "/pages",
    "/approvals",
    "/my-requests",
    "/ciba/requests",
)
# These answer RFC 9457 problems; routing (405) answers in the bridge's shape.
PROBLEM_ENDPOINTS = (
    f"{API_PATH}/requests",
    f"{API_PATH}/approvals",
    f"{API_PATH}/forms",
    f"{API_PATH}/catalogs",
)
# These answer SSF's and RFC 8935's refusals; routing (405) and faults (500) the bridge's.
SSF_ENDPOINTS = {"/ssf/events": "SETError"}
SSF_PREFIX = "/ssf/"
ERROR = {"$ref": "#/components/schemas/Error"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthError"}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data = json.loads(DESCRIPTION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def shipped_settings(state: Path) -> Settings:
    """bridge.toml, with the files the app makes when it is built (the key-encryption key,
    the demo approver key; the database too, should it be opened) in `state`, not in the
    repository's var/."""
    settings = load_settings(REPO / "bridge.toml")
    oauth = settings.oauth.model_copy(update={"key_encryption_key_file": state / "kek"})
    access = settings.access_requests
    if access.demo_approver_key_file is not None:
        access = access.model_copy(update={"demo_approver_key_file": state / "demo.jwk"})
    storage = settings.storage.model_copy(update={"path": state / "bridge.sqlite3"})
    return settings.model_copy(
        update={"oauth": oauth, "access_requests": access, "storage": storage}
    )


def with_events(settings: Settings) -> Settings:
    """`settings` with a transmitter to receive from and the bridge's transmitter on: the
    routes of `[events]` (docs/events.md), served only then."""
    transmitter = {
        "name": "idp",
        "issuer": "https://idp.example.com",
        "jwks": {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]},
        "events": [SESSION_REVOKED],
    }
    events = {"transmitters": [transmitter], "transmitter": {"enabled": True}}
    return settings.model_copy(update={"events": EventsSettings.model_validate(events)})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(path, method) of every route the app serves with bridge.toml (and with `[events]`
    configured), HEAD left out."""
    shipped = shipped_settings(tmp_path_factory.mktemp("openapi"))
    out: set[tuple[str, str]] = set()
    for settings in (shipped, with_events(shipped)):
        for route in create_app(settings).routes:
            assert isinstance(route, Route), f"unexpected route kind: {route!r}"
            out |= {(route.path, m.lower()) for m in route.methods or () if m != "HEAD"}
    return out


@pytest.fixture(scope="module")
def named_stores() -> list[str]:
    settings = load_settings(REPO / "bridge.toml")
    names = [name for name in settings.stores if name != "default"]
    assert names, "bridge.toml should serve at least one named store"
    return names


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def answers_problems(path: str) -> bool:
    return any(path == base or path.startswith(base + "/") for base in PROBLEM_ENDPOINTS)


def path_parameters(path: str) -> set[str]:
    return set(re.findall(r"\{([^}]+)\}", path))


def template_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def test_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"] and document["info"]["version"]
    assert document["paths"]


def test_every_served_route_is_described(
    document: dict[str, Any], served: set[tuple[str, str]]
) -> None:
    templates = [(template_regex(path), path, method) for path, method in described(document)]
    missing = []
    for path, method in sorted(served):
        matches = [t for rx, t, m in templates if m == method and rx.fullmatch(path)]
        if path in matches:
            # OpenAPI 3.1, "Path Templating Matching": a concrete path is matched before
            # the templated ones (`/approvals/granted` before `/approvals/{id}`).
            matches = [path]
        if len(matches) != 1:
            missing.append((path, method, matches))
    assert not missing, f"served but not described exactly once: {missing}"


def test_every_described_operation_is_served(
    document: dict[str, Any], served: set[tuple[str, str]], named_stores: list[str]
) -> None:
    absent = []
    for path, method in sorted(described(document)):
        if "store" not in path_parameters(path):
            # Any other parameter must be named exactly as the route names it.
            concrete = [path]
        else:
            concrete = [path.replace("{store}", name) for name in named_stores]
        absent += [(p, method) for p in concrete if (p, method) not in served]
    assert not absent, f"described but not served: {absent}"


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            resolved = [_resolve(document, p) for p in parameters]
            declared = {p["name"] for p in resolved if p["in"] == "path"}
            assert declared == path_parameters(path), (path, method)


def test_default_store_has_no_store_prefix(served: set[tuple[str, str]]) -> None:
    assert not any(path.startswith("/stores/default/") for path, _ in served)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"unresolved {ref}"
            node = node[part]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def test_every_response_carries_request_id_and_errors_share_one_shape(
    document: dict[str, Any],
) -> None:
    for path, method in described(document):
        operation = document["paths"][path][method]
        for status, response in operation["responses"].items():
            response = _resolve(document, response)
            assert "X-Request-ID" in response.get("headers", {}), (path, method, status)
            if int(status) < 400 or status == "503":
                continue
            if answers_problems(path) and status != "405":
                assert set(response["content"]) == {"application/problem+json"}, (path, status)
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == PROBLEM, (path, method, status)
                continue
            if path.startswith(SSF_PREFIX) and status not in ("405", "500"):
                kind = SSF_ENDPOINTS.get(path, "StreamError")
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{kind}"}, (path, status)
                continue
            if path.startswith(PAGE_ENDPOINTS):  # their routing errors are pages too
                assert set(response["content"]) == {"text/html"}, (path, method, status)
                continue
            schema = response["content"]["application/json"]["schema"]
            if path not in OAUTH_ENDPOINTS or status == "405":
                assert schema == ERROR, (path, method, status)
            elif status == "500":
                # `server_error` from the endpoint itself, or the generic answer to a fault.
                assert schema in (ERROR, {"oneOf": [OAUTH_ERROR, ERROR]}), (path, method, status)
            else:
                assert schema == OAUTH_ERROR, (path, method, status)


def test_api_operations_list_the_transport_errors(document: dict[str, Any]) -> None:
    """Every API operation: one success, 401, 405, 500. The JSON body's errors (400, 413,
    415) exactly where there is a body: a bodiless request is never read."""
    for path, method in described(document):
        if "/access/v1/" in path:
            operation = document["paths"][path][method]
            statuses = set(operation["responses"])
            assert len({s for s in statuses if s.startswith("2")}) == 1, (path, method)
            assert {"401", "405", "500"} <= statuses, (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= statuses, (path, method)
            else:
                assert not statuses & {"413", "415"}, (path, method)


def test_oauth_operations_list_the_transport_errors(document: dict[str, Any]) -> None:
    for path in OAUTH_ENDPOINTS:
        statuses = set(document["paths"][path]["post"]["responses"])
        success = "201" if path == PAR_PATH else "200"  # RFC 9126 §2.2: Created
        assert {success, "400", "401", "405", "413", "500"} <= statuses, path


def test_oauth_error_codes_are_the_bridges(document: dict[str, Any]) -> None:
    def codes(cls: type[OAuthError]) -> set[str]:
        return {cls.error}.union(*(codes(sub) for sub in cls.__subclasses__()))

    described_codes = document["components"]["schemas"]["OAuthError"]["properties"]["error"]
    assert set(described_codes["enum"]) <= codes(OAuthError)


def test_problem_types_are_the_bridges(document: dict[str, Any]) -> None:
    def types(cls: type[problems.AccessRequestProblem]) -> set[str]:
        return {cls.type}.union(*(types(sub) for sub in cls.__subclasses__()))

    described_types = document["components"]["schemas"]["Problem"]["properties"]["type"]
    assert set(described_types["enum"]) == types(problems.AccessRequestProblem)


def test_metadata_schema_lists_the_members_the_bridge_sends(document: dict[str, Any]) -> None:
    # What every store publishes: its endpoints, and those of the access request service.
    sent = set(
        with_access_requests(
            StoreEndpoints("search", "https://pdp.example.com").metadata(),
            endpoint=f"https://pdp.example.com{API_PATH}/requests",
            jwks_uri="https://pdp.example.com/jwks",
        )
    )
    schema = document["components"]["schemas"]["Metadata"]
    assert set(schema["properties"]) == sent
    assert set(schema["required"]) <= sent


def test_oauth_metadata_schema_lists_the_members_the_bridge_sends(
    document: dict[str, Any],
) -> None:
    def sent(*, deferred: bool) -> set[str]:
        # The deferral extension's metadata needs none of its services.
        # With every optional member: direct deferral on when deferrals are served.
        front_door = FrontDoorMetadata(
            "https://bridge.example.com", False, direct_deferral=deferred
        )
        extensions = [front_door, DeferredResponses(None, None, None)] if deferred else [front_door]  # type: ignore[arg-type]
        extensions.append(Obligations())  # type: ignore[arg-type]  # always sent
        if deferred:  # CIBA rides on deferrals
            extensions.append(CibaMetadata("https://bridge.example.com"))  # type: ignore[arg-type]
        grants = ["client_credentials", GRANT_DEFERRED] if deferred else ["client_credentials"]
        return set(
            authorization_server_metadata(
                Settings(), ["customer_records"], ["read"], grants, extensions
            )
        )

    assert sent(deferred=False) <= sent(deferred=True)
    schema = document["components"]["schemas"]["AuthorizationServerMetadata"]
    assert set(schema["properties"]) == sent(deferred=True)
    # Required: what is sent whether or not deferred token responses are served.
    assert set(schema["required"]) <= sent(deferred=False)


def test_readiness_answers_as_described(document: dict[str, Any], tmp_path: Path) -> None:
    """/readyz of the shipped configuration, every part reported, against its schema (the
    document's own references resolved in place)."""
    with serve(shipped_settings(tmp_path)) as server:
        body = httpx.get(server.url + "/readyz", timeout=10).json()
    assert set(body) == {"status", "stores", "clients", "database"}
    schema = {
        **document["components"]["schemas"]["Readiness"],
        "components": document["components"],
    }
    jsonschema.validate(body, schema)
