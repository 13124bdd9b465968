"""Transport rules of the AuthZEN HTTPS JSON binding as the bridge serves them.

One test per rule, over real HTTP to the real app: content type, methods, body parsing,
unknown and null members, request ids, size and batch limits, error shapes, batch semantics,
search pagination, metadata, health and 404s (shared/specs/authzen-api.md §2, §4, §5, §6, §7).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.request_id import new_request_id
from tests.conftest import (
    DEMO_PUBLIC_URL,
    DEMO_STORES,
    POLICIES,
    ServerThread,
    serve,
    settings_for,
)

JSON = {"content-type": "application/json"}
CERT = "/stores/certification/access/v1"
SEARCH = "/stores/search/access/v1"

ALICE = {"type": "user", "id": "alice"}
BOB = {"type": "user", "id": "bob"}
RECORD_1 = {"type": "record", "id": "record-1"}
RECORD_2 = {"type": "record", "id": "record-2"}
READ = {"name": "read"}
WRITE = {"name": "write"}

# A valid request for each of the five POST endpoints of the certification store.
VALID = {
    "evaluation": {"subject": ALICE, "action": READ, "resource": RECORD_1},
    "evaluations": {
        "subject": ALICE,
        "action": READ,
        "evaluations": [{"resource": RECORD_1}, {"resource": RECORD_2}],
    },
    "search/subject": {"subject": {"type": "user"}, "action": READ, "resource": RECORD_1},
    "search/resource": {"subject": ALICE, "action": READ, "resource": {"type": "record"}},
    "search/action": {"subject": ALICE, "resource": RECORD_1},
}
ENDPOINTS = list(VALID)

STORES = DEMO_STORES


def url(endpoint: str) -> str:
    return f"{CERT}/{endpoint}"


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"status", "message"}, body
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The default store behind an API key, for the 401 request-id case."""
    extra = '[stores.default.auth]\napi_keys = ["transport-test-key"]\n'
    settings = settings_for(
        tmp_path_factory.mktemp("auth"), {"default": POLICIES / "default"}, extra
    )
    with serve(settings) as server:
        yield server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The certification store with the smallest body limit and a batch limit of 3."""
    extra = "[limits]\nmax_body_bytes = 1024\nmax_batch_items = 3\n"
    settings = settings_for(
        tmp_path_factory.mktemp("small"),
        {"certification": POLICIES / "certification"},
        extra,
    )
    with serve(settings) as server:
        yield server


# -- content type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/xml",
        "application/jsonx",
        "application/x-www-form-urlencoded",
    ],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_content_type_is_415(
    client: httpx.Client, endpoint: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = json.dumps(VALID[endpoint]).encode()
    assert_error(client.post(url(endpoint), content=body, headers=headers), 415)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON ; charset=UTF-8"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_json_media_type_is_compared_case_insensitively_with_parameters(
    client: httpx.Client, endpoint: str, content_type: str
) -> None:
    body = json.dumps(VALID[endpoint]).encode()
    ok(client.post(url(endpoint), content=body, headers={"content-type": content_type}))


# -- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_other_methods_are_405_with_allow_post(
    client: httpx.Client, endpoint: str, method: str
) -> None:
    response = client.request(method, url(endpoint))
    assert_error(response, 405)
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_head_is_405_with_allow_post(client: httpx.Client, endpoint: str) -> None:
    response = client.head(url(endpoint))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# -- body -----------------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", id="empty"),
    pytest.param(b" \r\n\t ", id="whitespace"),
    pytest.param(b"{bad json", id="bad-json"),
    pytest.param(b'{"subject": {"type": "user", "id": "alice"},}', id="trailing-comma"),
    pytest.param(b"{'a': 1}", id="single-quotes"),
    pytest.param(b'[{"subject": {"type": "user", "id": "alice"}}]', id="array"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'"x"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="true"),
    pytest.param(b'{"a": "\xff\xfe"}', id="not-utf8"),
    pytest.param(b'{"a": 1} {"b": 2}', id="two-documents"),
    pytest.param(b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="deep-nesting"),
]


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_or_non_object_body_is_400(
    client: httpx.Client, endpoint: str, raw: bytes
) -> None:
    assert_error(client.post(url(endpoint), content=raw, headers=JSON), 400)


def _dup(endpoint: str, where: str) -> bytes:
    """The valid body of `endpoint` with one member name repeated at `where`."""
    text = json.dumps(VALID[endpoint])
    if where == "top":
        return ('{"context": {}, ' + text[1:-1] + ', "context": {}}').encode()
    if where == "nested":
        # Inside the subject object (every endpoint's body has one).
        return text.replace(
            '"subject": {"type": "user"', '"subject": {"type": "user", "type": "user"', 1
        ).encode()
    # Deep inside a context value.
    return ('{"context": {"a": {"b": 1, "b": 1}}, ' + text[1:]).encode()


@pytest.mark.parametrize("where", ["top", "nested", "deep"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_duplicate_member_names_are_400(client: httpx.Client, endpoint: str, where: str) -> None:
    raw = _dup(endpoint, where)
    assert raw != json.dumps(VALID[endpoint]).encode()
    response = client.post(url(endpoint), content=raw, headers=JSON)
    assert_error(response, 400)


def test_duplicate_member_inside_batch_item_is_400(client: httpx.Client) -> None:
    raw = (
        b'{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},'
        b' "evaluations": [{"resource": {"type": "record", "id": "record-1", "id": "record-2"}}]}'
    )
    assert_error(client.post(url("evaluations"), content=raw, headers=JSON), 400)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_nan_and_infinity_are_400(client: httpx.Client, endpoint: str, constant: str) -> None:
    text = json.dumps(VALID[endpoint])
    raw = ('{"context": {"score": ' + constant + "}, " + text[1:]).encode()
    assert_error(client.post(url(endpoint), content=raw, headers=JSON), 400)


# -- unknown and null members ---------------------------------------------------------------


def _with_unknowns(endpoint: str) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID[endpoint]))
    body["unknown_top"] = {"x": [1, 2, 3]}
    for key in ("subject", "action", "resource"):
        if isinstance(body.get(key), dict):
            body[key]["unknown_member"] = "ignored"
    if endpoint == "evaluations":
        body["options"] = {"evaluations_semantic": "execute_all", "unknown_option": True}
        for item in body["evaluations"]:
            item["unknown_item_member"] = 1
            item["resource"]["unknown_member"] = 2
    if endpoint.startswith("search/"):
        body["page"] = {"unknown_page_member": "x"}
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_members_are_ignored_at_every_level(client: httpx.Client, endpoint: str) -> None:
    plain = ok(client.post(url(endpoint), json=VALID[endpoint]))
    assert ok(client.post(url(endpoint), json=_with_unknowns(endpoint))) == plain


def _with_nulls(endpoint: str) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID[endpoint]))
    body["context"] = None
    for key in ("subject", "action", "resource"):
        if isinstance(body.get(key), dict):
            body[key]["properties"] = None
    if endpoint == "evaluations":
        body["options"] = None
    if endpoint.startswith("search/"):
        body["page"] = None
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_null_optional_members_are_absent(client: httpx.Client, endpoint: str) -> None:
    plain = ok(client.post(url(endpoint), json=VALID[endpoint]))
    assert ok(client.post(url(endpoint), json=_with_nulls(endpoint))) == plain


def test_null_optional_members_inside_options_and_page_are_absent(client: httpx.Client) -> None:
    batch = {**VALID["evaluations"], "options": {"evaluations_semantic": None}}
    assert ok(client.post(url("evaluations"), json=batch)) == {
        "evaluations": [{"decision": True}, {"decision": True}]
    }
    search = {**VALID["search/subject"], "page": {"limit": None, "token": None}}
    assert ok(client.post(url("search/subject"), json=search)) == {"results": [ALICE, BOB]}


def test_null_member_of_a_batch_item_is_absent(client: httpx.Client) -> None:
    # An item's `resource: null` is an absent optional member: the default resource applies.
    body = {
        "subject": ALICE,
        "action": WRITE,
        "resource": {"type": "record", "id": "record-1"},
        "evaluations": [{}, {"resource": None}],
    }
    assert ok(client.post(url("evaluations"), json=body)) == {
        "evaluations": [{"decision": True}, {"decision": True}]
    }


def test_null_properties_of_a_batch_item_entity_are_absent(client: httpx.Client) -> None:
    # record-1 is stored as active; the default says archived, so alice may not write it. An
    # item that sets `properties: null` has no properties of its own and inherits the default's.
    body = {
        "subject": ALICE,
        "action": WRITE,
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "archived"}},
        "evaluations": [{"resource": {"properties": None}}],
    }
    assert ok(client.post(url("evaluations"), json=body)) == {"evaluations": [{"decision": False}]}
    body["evaluations"] = [{"resource": {"properties": {}}}]
    assert ok(client.post(url("evaluations"), json=body)) == {"evaluations": [{"decision": True}]}


NULL_REQUIRED = {
    "evaluation": [
        {"subject": None, "action": READ, "resource": RECORD_1},
        {"subject": {"type": "user", "id": None}, "action": READ, "resource": RECORD_1},
        {"subject": ALICE, "action": {"name": None}, "resource": RECORD_1},
        {"subject": ALICE, "action": READ, "resource": {"type": None, "id": "record-1"}},
    ],
    "evaluations": [
        {"subject": ALICE, "action": READ, "resource": None, "evaluations": []},
        {"subject": ALICE, "action": None, "resource": RECORD_1},
    ],
    "search/subject": [
        {"subject": {"type": None}, "action": READ, "resource": RECORD_1},
        {"subject": {"type": "user"}, "action": None, "resource": RECORD_1},
        {"subject": {"type": "user"}, "action": READ, "resource": {"type": "record", "id": None}},
    ],
    "search/resource": [
        {"subject": None, "action": READ, "resource": {"type": "record"}},
        {"subject": ALICE, "action": READ, "resource": {"type": None}},
    ],
    "search/action": [
        {"subject": ALICE, "resource": None},
        {"subject": {"type": "user", "id": None}, "resource": RECORD_1},
    ],
}


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [(e, b) for e, bodies in NULL_REQUIRED.items() for b in bodies],
)
def test_null_required_member_is_missing(client: httpx.Client, endpoint: str, body: Any) -> None:
    message = assert_error(client.post(url(endpoint), json=body), 400)["message"]
    assert "required" in message or "must be" in message


# -- X-Request-ID ---------------------------------------------------------------------------


def _requests_by_status(client: httpx.Client, auth_url: str) -> dict[int, Any]:
    """One request per status, each given its own X-Request-ID; returns status -> sender."""
    big = b'{"context": {"pad": "' + b"x" * (1_048_576 + 10) + b'"}}'
    return {
        200: lambda rid: client.post(url("evaluation"), json=VALID["evaluation"], headers=rid),
        400: lambda rid: client.post(url("evaluation"), content=b"{", headers={**JSON, **rid}),
        404: lambda rid: client.post("/no/such/path", json={}, headers=rid),
        405: lambda rid: client.get(url("evaluation"), headers=rid),
        413: lambda rid: client.post(url("evaluation"), content=big, headers={**JSON, **rid}),
        415: lambda rid: client.post(url("evaluation"), content=b"{}", headers=rid),
        401: lambda rid: httpx.post(f"{auth_url}/access/v1/evaluation", json={}, headers=rid),
    }


@pytest.mark.parametrize("status", [200, 400, 404, 405, 413, 415, 401])
def test_request_id_is_echoed_on_every_status(
    client: httpx.Client, auth_server: ServerThread, status: int
) -> None:
    send = _requests_by_status(client, auth_server.url)[status]
    request_id = f"test-{status}-0c9f3a"
    response = send({"X-Request-ID": request_id})
    assert response.status_code == status
    assert response.headers["x-request-id"] == request_id
    assert response.headers.get_list("x-request-id") == [request_id]


@pytest.mark.parametrize("status", [200, 400, 404, 405, 413, 415, 401])
def test_request_id_is_generated_when_absent(
    client: httpx.Client, auth_server: ServerThread, status: int
) -> None:
    send = _requests_by_status(client, auth_server.url)[status]
    first, second = send({}), send({})
    assert first.status_code == second.status_code == status
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert ids[0] != ids[1]


def test_generated_request_ids_stay_distinct_across_refills_and_a_fork() -> None:
    # Ids come from a pool of system randomness: past its refills, and in a forked worker
    # (which must not hand out its parent's next ids), every id is new.
    parent = [new_request_id() for _ in range(1000)]
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, then out at once
        os.write(writer, " ".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 4096).decode().split()
    os.close(reader)
    os.waitpid(pid, 0)
    after = [new_request_id() for _ in range(3)]
    ids = parent + child + after
    assert len(child) == 3 and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_request_id_on_metadata_and_health(client: httpx.Client) -> None:
    for path in ("/.well-known/authzen-configuration", "/healthz", "/readyz"):
        response = client.get(path, headers={"X-Request-ID": "abc-123"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "abc-123"


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_body_over_the_limit_is_413(client: httpx.Client, endpoint: str) -> None:
    pad = "x" * (1_048_576 + 1)
    body = {**VALID[endpoint], "context": {"pad": pad}}
    assert_error(client.post(url(endpoint), json=body), 413)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_streamed_body_over_the_limit_is_413(client: httpx.Client, endpoint: str) -> None:
    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold while reading the stream.
        yield b'{"context": {"pad": "'
        for _ in range(70):
            yield b"y" * 16_384
        yield b'"}}'

    response = client.post(url(endpoint), content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_error(response, 413)


def _padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_body_limit_boundary(small_server: ServerThread) -> None:
    body = VALID["evaluation"]
    target = f"{small_server.url}{CERT}/evaluation"
    at_limit = _padded(body, 1024)
    over = _padded(body, 1025)
    assert len(at_limit) == 1024 and len(over) == 1025
    assert ok(httpx.post(target, content=at_limit, headers=JSON)) == {"decision": True}
    assert_error(httpx.post(target, content=over, headers=JSON), 413)


def test_more_than_max_batch_items_is_400(client: httpx.Client) -> None:
    base = {"subject": ALICE, "action": READ}
    at_limit = {**base, "evaluations": [{"resource": RECORD_1}] * 100}
    assert ok(client.post(url("evaluations"), json=at_limit)) == {
        "evaluations": [{"decision": True}] * 100
    }
    over = {**base, "evaluations": [{"resource": RECORD_1}] * 101}
    assert_error(client.post(url("evaluations"), json=over), 400)


def test_configured_max_batch_items(small_server: ServerThread) -> None:
    target = f"{small_server.url}{CERT}/evaluations"
    base = {"subject": ALICE, "action": READ}
    three = {**base, "evaluations": [{"resource": RECORD_1}] * 3}
    assert ok(httpx.post(target, json=three)) == {"evaluations": [{"decision": True}] * 3}
    assert_error(
        httpx.post(target, json={**base, "evaluations": [{"resource": RECORD_1}] * 4}), 400
    )


# -- batch envelope, per-item errors, semantics ---------------------------------------------


def test_batch_item_failure_is_a_deny_with_error_context(client: httpx.Client) -> None:
    body = {
        "subject": ALICE,
        "action": READ,
        "evaluations": [
            {"resource": RECORD_1},
            {},
            {"resource": {"type": "record"}},
            {"resource": RECORD_2, "action": {"name": 5}},
            {"resource": RECORD_2},
        ],
    }
    response = client.post(url("evaluations"), json=body)
    answer = ok(response)
    assert set(answer) == {"evaluations"}
    first, *failed, last = answer["evaluations"]
    assert first == {"decision": True} and last == {"decision": True}
    assert len(failed) == 3
    for item in failed:
        assert set(item) == {"decision", "context"}
        assert item["decision"] is False
        assert set(item["context"]) == {"error"}
        assert set(item["context"]["error"]) == {"status", "message"}
        assert item["context"]["error"]["status"] == 400
        assert isinstance(item["context"]["error"]["message"], str)
        assert item["context"]["error"]["message"]


# alice/write: record-1 true, record-2 false.
T = {"resource": RECORD_1}
F = {"resource": RECORD_2}
E = {"resource": {"type": "record"}}  # fails: no id
TRUE, FALSE = {"decision": True}, {"decision": False}

SEMANTICS = [
    ("execute_all", [T, F, T], [TRUE, FALSE, TRUE]),
    ("deny_on_first_deny", [T, F, T], [TRUE, FALSE]),
    ("permit_on_first_permit", [T, F, T], [TRUE]),
    ("deny_on_first_deny", [T, T, T], [TRUE, TRUE, TRUE]),
    ("permit_on_first_permit", [F, F, F], [FALSE, FALSE, FALSE]),
    ("permit_on_first_permit", [F, F, T, F], [FALSE, FALSE, TRUE]),
    ("deny_on_first_deny", [F, T], [FALSE]),
    ("deny_on_first_deny", [T, E, T], [TRUE, "error"]),
    ("permit_on_first_permit", [E, F, T, T], ["error", FALSE, TRUE]),
    ("execute_all", [E, T, F], ["error", TRUE, FALSE]),
    (None, [T, F, T], [TRUE, FALSE, TRUE]),
]


@pytest.mark.parametrize(("semantic", "evaluations", "expected"), SEMANTICS)
def test_evaluations_semantics_and_truncation(
    client: httpx.Client, semantic: str | None, evaluations: list[Any], expected: list[Any]
) -> None:
    body: dict[str, Any] = {"subject": ALICE, "action": WRITE, "evaluations": evaluations}
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    answer = ok(client.post(url("evaluations"), json=body))
    assert set(answer) == {"evaluations"}
    got = answer["evaluations"]
    assert len(got) == len(expected), got
    for item, want in zip(got, expected, strict=True):
        if want == "error":
            assert item["decision"] is False
            assert item["context"]["error"]["status"] == 400
        else:
            assert item == want


@pytest.mark.parametrize("semantic", ["bogus_value", "", "EXECUTE_ALL", 1, True, ["execute_all"]])
def test_unknown_evaluations_semantic_is_400(client: httpx.Client, semantic: Any) -> None:
    body = {**VALID["evaluations"], "options": {"evaluations_semantic": semantic}}
    assert_error(client.post(url("evaluations"), json=body), 400)


@pytest.mark.parametrize("options", ["execute_all", [], 5, True])
def test_options_not_an_object_is_400(client: httpx.Client, options: Any) -> None:
    body = {**VALID["evaluations"], "options": options}
    assert_error(client.post(url("evaluations"), json=body), 400)


@pytest.mark.parametrize("evaluations", [{}, {"resource": RECORD_1}, "x", 3, True])
def test_evaluations_not_an_array_is_400(client: httpx.Client, evaluations: Any) -> None:
    body = {**VALID["evaluation"], "evaluations": evaluations}
    assert_error(client.post(url("evaluations"), json=body), 400)


@pytest.mark.parametrize(
    "evaluations",
    [[1], ["x"], [[]], [None], [{"resource": RECORD_1}, 5], [{"resource": RECORD_1}, [T]]],
)
def test_evaluations_element_not_an_object_is_400(client: httpx.Client, evaluations: Any) -> None:
    body = {**VALID["evaluation"], "evaluations": evaluations}
    assert_error(client.post(url("evaluations"), json=body), 400)


@pytest.mark.parametrize("evaluations", [None, []], ids=["absent", "empty"])
def test_batch_without_items_is_a_plain_decision(client: httpx.Client, evaluations: Any) -> None:
    body: dict[str, Any] = {"subject": ALICE, "action": WRITE, "resource": RECORD_2}
    if evaluations is not None:
        body["evaluations"] = evaluations
    assert ok(client.post(url("evaluations"), json=body)) == {"decision": False}
    body["resource"] = RECORD_1
    assert ok(client.post(url("evaluations"), json=body)) == {"decision": True}
    # Without items the top-level entities are required, as for Access Evaluation.
    del body["resource"]
    assert_error(client.post(url("evaluations"), json=body), 400)


def test_ordinary_batch_items_are_exactly_decision(client: httpx.Client) -> None:
    body = {"subject": ALICE, "action": WRITE, "evaluations": [T, F] * 5}
    answer = ok(client.post(url("evaluations"), json=body))
    assert answer == {"evaluations": [TRUE, FALSE] * 5}
    assert all(list(item) == ["decision"] for item in answer["evaluations"])


def test_decisions_carry_no_context_without_explanations(client: httpx.Client) -> None:
    for resource, decision in ((RECORD_1, True), (RECORD_2, False)):
        body = {"subject": ALICE, "action": WRITE, "resource": resource, "context": {"a": 1}}
        assert ok(client.post(url("evaluation"), json=body)) == {"decision": decision}


def test_explanations_list_determining_policies(tmp_path: Path) -> None:
    folder = POLICIES / "certification"
    extra = f"[stores.certification]\npath = {json.dumps(str(folder))}\nexplanations = true\n"
    with (
        serve(settings_for(tmp_path, {}, extra)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        single = ok(http.post(url("evaluation"), json=VALID["evaluation"]))
        assert single == {
            "decision": True,
            "context": {"determining_policies": ["read-known-users-fixture-records"]},
        }
        batch = {
            "subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
            "action": WRITE,
            "evaluations": [
                {"resource": RECORD_2},
                {"resource": RECORD_1},
                {"subject": ALICE, "resource": RECORD_1},
            ],
        }
        items = ok(http.post(url("evaluations"), json=batch))["evaluations"]
        assert [i["decision"] for i in items] == [True, False, True]
        assert items[0]["context"]["determining_policies"] == ["write-admin-archived"]
        assert items[1]["context"]["determining_policies"] == []
        assert items[2]["context"]["determining_policies"] == ["write-alice-unarchived"]
        # Search results stay {"type", "id"} whatever the store explains.
        found = ok(http.post(url("search/subject"), json=VALID["search/subject"]))
        assert found == {"results": [ALICE, BOB]}


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/no/such/path",
        "/access/v1/nothing",
        "/stores/nope/access/v1/evaluation",
        "/stores/certification/access/v2/evaluation",
        "/.well-known/authzen-configuration/stores/nope",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_path_is_404_json(client: httpx.Client, path: str, method: str) -> None:
    assert_error(client.request(method, path, json={} if method == "POST" else None), 404)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_success_is_a_json_object(client: httpx.Client, endpoint: str) -> None:
    response = client.post(url(endpoint), json=VALID[endpoint])
    body = ok(response)
    assert isinstance(body, dict)
    json.loads(response.content)  # strict JSON (no NaN etc. from the server either)


# -- search pagination ----------------------------------------------------------------------

PAGED_SEARCHES = [
    pytest.param(
        "search/resource",
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "view"},
            "resource": {"type": "record"},
        },
        id="resource",
    ),
    pytest.param(
        "search/subject",
        {
            "subject": {"type": "user"},
            "action": {"name": "view"},
            "resource": {"type": "record", "id": "101"},
        },
        id="subject",
    ),
    pytest.param(
        "search/action",
        {"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "101"}},
        id="action",
    ),
]


def _all_pages(
    client: httpx.Client, endpoint: str, body: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    collected: list[dict[str, Any]] = []
    page: dict[str, Any] = {"limit": limit}
    for _ in range(100):
        answer = ok(client.post(f"{SEARCH}/{endpoint}", json={**body, "page": page}))
        assert next(iter(answer)) == "page"
        assert len(answer["results"]) <= limit
        assert answer["page"]["count"] == len(answer["results"])
        collected += answer["results"]
        token = answer["page"]["next_token"]
        assert isinstance(token, str)
        if token == "":
            return collected
        assert answer["results"], "a non-final page must not be empty"
        page = {"limit": limit, "token": token}
    raise AssertionError("pagination never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
@pytest.mark.parametrize(("endpoint", "body"), PAGED_SEARCHES)
def test_pagination_over_all_pages_equals_the_unpaged_answer(
    client: httpx.Client, endpoint: str, body: dict[str, Any], limit: int
) -> None:
    unpaged = ok(client.post(f"{SEARCH}/{endpoint}", json=body))
    assert "page" not in unpaged
    everything = unpaged["results"]
    assert len(everything) >= 2
    assert _all_pages(client, endpoint, body, limit) == everything


def test_pagination_reports_total(client: httpx.Client) -> None:
    endpoint, body = PAGED_SEARCHES[0].values
    everything = ok(client.post(f"{SEARCH}/{endpoint}", json=body))["results"]
    first = ok(client.post(f"{SEARCH}/{endpoint}", json={**body, "page": {"limit": 3}}))
    assert len(everything) > 3
    assert first["page"]["total"] == len(everything)
    assert first["page"]["count"] == 3
    assert first["results"] == everything[:3]
    assert first["page"]["next_token"]


def test_page_limit_zero_means_no_explicit_limit(client: httpx.Client) -> None:
    endpoint, body = PAGED_SEARCHES[0].values
    everything = ok(client.post(f"{SEARCH}/{endpoint}", json=body))["results"]
    answer = ok(client.post(f"{SEARCH}/{endpoint}", json={**body, "page": {"limit": 0}}))
    assert answer["results"] == everything
    assert answer.get("page", {"next_token": ""})["next_token"] == ""


def _first_token(client: httpx.Client, endpoint: str, body: dict[str, Any]) -> str:
    answer = ok(client.post(f"{SEARCH}/{endpoint}", json={**body, "page": {"limit": 2}}))
    token = answer["page"]["next_token"]
    assert token
    return str(token)


def _flip(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    new = alphabet[(alphabet.index(token[at]) + 1) % 64]
    return token[:at] + new + token[at + 1 :]


def test_tampered_page_token_is_400(client: httpx.Client) -> None:
    endpoint, body = PAGED_SEARCHES[0].values
    token = _first_token(client, endpoint, body)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    forged_offset = base64.urlsafe_b64encode(b"\x00" * 7 + b"\x05" + raw[8:]).decode().rstrip("=")
    for bad in [
        _flip(token, 0),
        _flip(token, len(token) // 2),
        token[:-4],
        token + "AAAA",
        forged_offset,
        "not-a-token",
        "!!!",
        "é",
    ]:
        page = {"limit": 2, "token": bad}
        response = client.post(f"{SEARCH}/{endpoint}", json={**body, "page": page})
        assert_error(response, 400)


def test_page_token_reused_with_a_changed_request_is_400(client: httpx.Client) -> None:
    endpoint, body = PAGED_SEARCHES[0].values
    token = _first_token(client, endpoint, body)
    same = {**body, "page": {"limit": 2, "token": token}}
    ok(client.post(f"{SEARCH}/{endpoint}", json=same))
    changed = [
        (endpoint, {**body, "action": {"name": "edit"}, "page": {"limit": 2, "token": token}}),
        (endpoint, {**body, "subject": {"type": "user", "id": "dan"}, "page": same["page"]}),
        (endpoint, {**same, "context": {"x": 1}}),
        (endpoint, {**body, "page": {"limit": 3, "token": token}}),
        (endpoint, {**body, "page": {"token": token}}),
        (endpoint, {**body, "page": {"limit": 2, "token": token, "properties": {"p": 1}}}),
        (
            "search/subject",
            {
                "subject": {"type": "user"},
                "action": {"name": "view"},
                "resource": {"type": "record", "id": "101"},
                "page": {"limit": 2, "token": token},
            },
        ),
    ]
    for target, request in changed:
        assert_error(client.post(f"{SEARCH}/{target}", json=request), 400)
    # The same request on another store is another request too.
    assert_error(client.post(f"{CERT}/{endpoint}", json=same), 400)


def test_unknown_page_members_are_ignored_and_token_still_matches(client: httpx.Client) -> None:
    endpoint, body = PAGED_SEARCHES[0].values
    first = ok(client.post(f"{SEARCH}/{endpoint}", json={**body, "page": {"limit": 2, "z": 1}}))
    token = first["page"]["next_token"]
    follow = {**body, "page": {"limit": 2, "token": token, "z": 2}}
    second = ok(client.post(f"{SEARCH}/{endpoint}", json=follow))
    assert second["results"] and second["results"][0] not in first["results"]


# -- metadata -------------------------------------------------------------------------------

ENDPOINT_MEMBERS = {
    "access_evaluation_endpoint": "evaluation",
    "access_evaluations_endpoint": "evaluations",
    "search_subject_endpoint": "search/subject",
    "search_resource_endpoint": "search/resource",
    "search_action_endpoint": "search/action",
}


def _check_metadata(document: Any, pdp: str) -> None:
    assert isinstance(document, dict)
    assert document["policy_decision_point"] == pdp
    for member, endpoint in ENDPOINT_MEMBERS.items():
        assert document[member] == f"{pdp}/access/v1/{endpoint}"
    assert isinstance(document["capabilities"], list)
    assert all(isinstance(c, str) for c in document["capabilities"])
    assert all(v is not None for v in document.values())


@pytest.mark.parametrize("store", STORES)
def test_metadata_document_per_store(client: httpx.Client, store: str) -> None:
    suffix = "" if store == "default" else f"/stores/{store}"
    response = client.get(f"/.well-known/authzen-configuration{suffix}")
    _check_metadata(ok(response), DEMO_PUBLIC_URL + suffix)


def test_metadata_endpoints_are_served_where_they_point(client: httpx.Client) -> None:
    document = ok(client.get("/.well-known/authzen-configuration/stores/certification"))
    for member, endpoint in ENDPOINT_MEMBERS.items():
        path = httpx.URL(document[member]).path
        assert path == url(endpoint)
        ok(client.post(path, json=VALID[endpoint]))


def test_metadata_comes_from_public_url_not_request_headers(tmp_path: Path) -> None:
    extra = '[server]\npublic_url = "https://bridge.example.com/pdp"\n'
    stores = {"default": POLICIES / "default", "cert": POLICIES / "certification"}
    with serve(settings_for(tmp_path, stores, extra)) as server:
        spoof = {
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example;proto=http",
        }
        default = httpx.get(f"{server.url}/.well-known/authzen-configuration", headers=spoof)
        _check_metadata(ok(default), "https://bridge.example.com/pdp")
        cert = httpx.get(f"{server.url}/.well-known/authzen-configuration/stores/cert")
        _check_metadata(ok(cert), "https://bridge.example.com/pdp/stores/cert")


def test_metadata_does_not_accept_post(client: httpx.Client) -> None:
    response = client.post("/.well-known/authzen-configuration", json={})
    assert_error(response, 405)
    assert "GET" in response.headers["allow"]


# -- health ---------------------------------------------------------------------------------


def test_healthz(client: httpx.Client) -> None:
    assert ok(client.get("/healthz")) == {"status": "ok"}


def test_readyz_lists_every_store(client: httpx.Client) -> None:
    body = ok(client.get("/readyz"))
    assert body["status"] == "ready"
    assert sorted(body["stores"]) == sorted(STORES)
    for state in body["stores"].values():
        assert state["ready"] is True
        assert state["policies"] > 0
    assert body["stores"]["certification"]["policies"] == 4
