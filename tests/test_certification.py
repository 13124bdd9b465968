"""The AuthZEN Authorization API 1.0 certification scenario against the `certification` store.

Everything here goes over real HTTP to the bridge serving the demo configuration (`client`
fixture) at `/stores/certification/access/v1/...`. Expected values come from the
certification scenario (shared/specs/authzen-api.md §8) and the bridge's documented choices
(§2, §4, §5).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

BASE = "/stores/certification/access/v1"
EVALUATION = f"{BASE}/evaluation"
EVALUATIONS = f"{BASE}/evaluations"
SEARCH_SUBJECT = f"{BASE}/search/subject"
SEARCH_RESOURCE = f"{BASE}/search/resource"
SEARCH_ACTION = f"{BASE}/search/action"

ALICE = {"type": "user", "id": "alice"}
BOB = {"type": "user", "id": "bob"}
BOB_ADMIN = {"type": "user", "id": "bob", "properties": {"role": "admin"}}
RECORD_1 = {"type": "record", "id": "record-1"}
RECORD_1_ACTIVE = {"type": "record", "id": "record-1", "properties": {"status": "active"}}
RECORD_2 = {"type": "record", "id": "record-2"}
RECORD_2_ARCHIVED = {"type": "record", "id": "record-2", "properties": {"status": "archived"}}
READ = {"name": "read"}
WRITE = {"name": "write"}
DELETE_SOFT = {"name": "delete", "properties": {"soft": True}}
DELETE_HARD = {"name": "delete", "properties": {"soft": False}}

CONTEXT = {"time": "1985-10-26T01:22-07:00", "ip": "192.0.2.7", "channel": "web"}

MANDATORY = [
    pytest.param(ALICE, READ, RECORD_1, True, id="1-alice-read-record-1"),
    pytest.param(ALICE, WRITE, RECORD_1, True, id="2-alice-write-record-1"),
    pytest.param(BOB, READ, RECORD_1, True, id="3-bob-read-record-1"),
    pytest.param(BOB, WRITE, RECORD_1, False, id="4-bob-write-record-1"),
    pytest.param(ALICE, WRITE, RECORD_2_ARCHIVED, False, id="5-alice-write-archived"),
    pytest.param(BOB_ADMIN, WRITE, RECORD_2_ARCHIVED, True, id="6-admin-write-archived"),
    pytest.param(ALICE, DELETE_SOFT, RECORD_1, True, id="7-alice-soft-delete"),
    pytest.param(ALICE, DELETE_HARD, RECORD_1, False, id="8-alice-hard-delete"),
]


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body)


def ok_json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def assert_error(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "message"}
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def evaluation(subject: Any, action: Any, resource: Any, context: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": subject, "action": action, "resource": resource}
    if context is not None:
        body["context"] = context
    return body


def decide(client: httpx.Client, body: Any) -> bool:
    answer = ok_json(post(client, EVALUATION, body))
    assert isinstance(answer["decision"], bool)
    return bool(answer["decision"])


def results(client: httpx.Client, path: str, body: Any) -> list[dict[str, Any]]:
    answer = ok_json(post(client, path, body))
    assert isinstance(answer["results"], list)
    return list(answer["results"])


# -- Access Evaluation: the mandatory decisions ----------------------------------------------


@pytest.mark.parametrize("with_context", [False, True], ids=["no-context", "context"])
@pytest.mark.parametrize(("subject", "action", "resource", "expected"), MANDATORY)
def test_mandatory_decision(
    client: httpx.Client,
    subject: Any,
    action: Any,
    resource: Any,
    expected: bool,
    with_context: bool,
) -> None:
    body = evaluation(subject, action, resource, CONTEXT if with_context else None)
    answer = ok_json(post(client, EVALUATION, body))
    # The store has no explanations: a decision is exactly {"decision": b}.
    assert answer == {"decision": expected}


def test_alice_read_record_2_is_true(client: httpx.Client) -> None:
    assert decide(client, evaluation(ALICE, READ, RECORD_2)) is True


def test_delete_without_soft_property_is_denied(client: httpx.Client) -> None:
    assert decide(client, evaluation(ALICE, {"name": "delete"}, RECORD_1)) is False


def test_request_properties_win_over_stored_attributes(client: httpx.Client) -> None:
    # Stored: record-2 archived, record-1 active. The request's properties take precedence.
    assert decide(client, evaluation(ALICE, WRITE, {**RECORD_2, "properties": {"status": "x"}}))
    assert not decide(client, evaluation(ALICE, WRITE, RECORD_2))
    assert not decide(
        client, evaluation(ALICE, WRITE, {**RECORD_1, "properties": {"status": "archived"}})
    )


def test_unknown_subject_and_unknown_type_are_denied_not_errors(client: httpx.Client) -> None:
    assert not decide(
        client, evaluation({"type": "user", "id": "nonexistent-user"}, READ, RECORD_1)
    )
    assert not decide(client, evaluation({"type": "spaceship", "id": "alice"}, READ, RECORD_1))
    # Types that are not Cedar type names are escaped, never a 400 or 500.
    assert not decide(client, evaluation({"type": "user name!", "id": "alice"}, READ, RECORD_1))
    assert not decide(client, evaluation(ALICE, {"name": "fly to the moon"}, RECORD_1))


def test_extra_properties_on_every_entity_still_permit_rule_1(client: httpx.Client) -> None:
    extra = {
        "department": "Sales",
        "tags": ["a", "b"],
        "nested": {"level": {"deep": [1, 2, {"x": None}]}},
        "nothing": None,
        "score": 0.5,
        "ratio": 1.0,
        "huge": 2**70,
        "flag": False,
        "__entity": {"type": "user", "id": "bob"},
    }
    body = {
        "subject": {**ALICE, "properties": extra},
        "action": {**READ, "properties": extra},
        "resource": {**RECORD_1, "properties": extra},
        "context": extra,
        "unknown_top_level_member": {"anything": [1, 2]},
    }
    assert ok_json(post(client, EVALUATION, body)) == {"decision": True}


def test_unknown_members_ignored_at_every_level(client: httpx.Client) -> None:
    body = {
        "subject": {**ALICE, "extra": 1},
        "action": {**READ, "extra": [1]},
        "resource": {**RECORD_1, "extra": {"a": "b"}},
        "extra": "ignored",
    }
    assert ok_json(post(client, EVALUATION, body)) == {"decision": True}


def test_repeated_identical_requests_give_identical_answers(client: httpx.Client) -> None:
    for subject, action, resource, expected in [p.values for p in MANDATORY]:
        body = evaluation(subject, action, resource, CONTEXT)
        answers = [post(client, EVALUATION, body).json() for _ in range(3)]
        assert answers == [{"decision": expected}] * 3


def test_member_order_is_not_significant(client: httpx.Client) -> None:
    raw = (
        b'{"resource": {"id": "record-2", "properties": {"status": "archived"}, "type": "record"},'
        b' "action": {"name": "write"},'
        b' "subject": {"properties": {"role": "admin"}, "id": "bob", "type": "user"}}'
    )
    response = client.post(EVALUATION, content=raw, headers={"content-type": "application/json"})
    assert ok_json(response) == {"decision": True}


# -- §2 validation errors on Access Evaluation ----------------------------------------------

GOOD = evaluation(ALICE, READ, RECORD_1)


def _without(key: str) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    del body[key]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    target = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return body


def _drop(entity: str, member: str) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    del body[entity][member]
    return body


INVALID_EVALUATIONS = [
    pytest.param(_without("subject"), id="no-subject"),
    pytest.param(_without("action"), id="no-action"),
    pytest.param(_without("resource"), id="no-resource"),
    pytest.param(_with("subject", "alice"), id="subject-string"),
    pytest.param(_with("resource", ["record-1"]), id="resource-array"),
    pytest.param(_with("action", "read"), id="action-string"),
    pytest.param(_with("action", {}), id="action-empty"),
    pytest.param(_with("action.name", 123), id="action-name-number"),
    pytest.param(_drop("subject", "type"), id="subject-no-type"),
    pytest.param(_drop("subject", "id"), id="subject-no-id"),
    pytest.param(_drop("resource", "type"), id="resource-no-type"),
    pytest.param(_drop("resource", "id"), id="resource-no-id"),
    pytest.param(_with("subject.id", 7), id="subject-id-number"),
    pytest.param(_with("resource.id", True), id="resource-id-bool"),
    pytest.param(_with("subject.type", {"t": "user"}), id="subject-type-object"),
    pytest.param(_with("subject.properties", "admin"), id="subject-properties-string"),
    pytest.param(_with("resource.properties", []), id="resource-properties-array"),
    pytest.param(_with("action.properties", 1), id="action-properties-number"),
    pytest.param(_with("context", "now"), id="context-string"),
    pytest.param(_with("context", [1]), id="context-array"),
    pytest.param(_with("subject", None), id="subject-null"),
    pytest.param(_with("subject.id", None), id="subject-id-null"),
    pytest.param(_with("action.name", None), id="action-name-null"),
]


@pytest.mark.parametrize("body", INVALID_EVALUATIONS)
def test_invalid_evaluation_request_is_400(client: httpx.Client, body: Any) -> None:
    assert_error(post(client, EVALUATION, body))


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"{bad json", b'[{"subject": {}}]', b'"x"', b"42", b"null", b"true"],
    ids=["empty", "blank", "bad-json", "array", "string", "number", "null", "true"],
)
def test_malformed_evaluation_body_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post(EVALUATION, content=raw, headers={"content-type": "application/json"})
    assert_error(response)


def test_null_optional_members_are_absent(client: httpx.Client) -> None:
    body = {
        "subject": {**ALICE, "properties": None},
        "action": {**READ, "properties": None},
        "resource": {**RECORD_1, "properties": None},
        "context": None,
    }
    assert ok_json(post(client, EVALUATION, body)) == {"decision": True}


# -- Access Evaluations: the certification batch cases --------------------------------------


def items(answer: Any) -> list[Any]:
    assert set(answer) == {"evaluations"}, answer
    return list(answer["evaluations"])


def test_batch_bob_record_1_read_write(client: httpx.Client) -> None:
    body = {
        "subject": BOB,
        "resource": RECORD_1,
        "evaluations": [{"action": READ}, {"action": WRITE}],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]


def test_batch_alice_write_active_then_archived(client: httpx.Client) -> None:
    body = {
        "subject": ALICE,
        "action": WRITE,
        "evaluations": [{"resource": RECORD_1_ACTIVE}, {"resource": RECORD_2_ARCHIVED}],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]


def test_batch_write_archived_alice_then_admin(client: httpx.Client) -> None:
    body = {
        "action": WRITE,
        "resource": RECORD_2_ARCHIVED,
        "evaluations": [{"subject": ALICE}, {"subject": BOB_ADMIN}],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": False},
        {"decision": True},
    ]


def test_batch_two_fully_specified_items(client: httpx.Client) -> None:
    body = {
        "evaluations": [
            evaluation(ALICE, READ, RECORD_1),
            evaluation(BOB, WRITE, RECORD_1),
        ]
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]


def test_batch_empty_item_uses_defaults_complete_item_replaces_them(client: httpx.Client) -> None:
    body = {
        **evaluation(ALICE, WRITE, RECORD_1_ACTIVE),
        "evaluations": [{}, {"resource": RECORD_2_ARCHIVED}],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]


def test_batch_partial_resource_inherits_missing_members(client: httpx.Client) -> None:
    body = {
        "subject": ALICE,
        "action": WRITE,
        "resource": {"type": "record"},
        "evaluations": [
            {"resource": {"id": "record-1", "properties": {"status": "active"}}},
            {"resource": {"id": "record-2"}},
        ],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]


def test_batch_execute_all_with_item_missing_resource(client: httpx.Client) -> None:
    body = {
        "subject": ALICE,
        "action": READ,
        "options": {"evaluations_semantic": "execute_all"},
        "evaluations": [{"resource": RECORD_1}, {}],
    }
    first, second = items(ok_json(post(client, EVALUATIONS, body)))
    assert first == {"decision": True}
    assert second["decision"] is False
    assert set(second) == {"decision", "context"}
    assert set(second["context"]) == {"error"}
    assert second["context"]["error"]["status"] == 400
    assert "resource" in second["context"]["error"]["message"]


def test_batch_items_with_different_properties_are_independent(client: httpx.Client) -> None:
    # Items are independent (§4.1): properties sent with one item never reach another item.
    record_2_active = {**RECORD_2, "properties": {"status": "active"}}
    body = {
        "subject": ALICE,
        "action": WRITE,
        "evaluations": [{"resource": record_2_active}, {"resource": RECORD_2}],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": True},
        {"decision": False},
    ]
    body["evaluations"].reverse()
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": False},
        {"decision": True},
    ]


def test_batch_subject_properties_do_not_leak_between_items(client: httpx.Client) -> None:
    body = {
        "action": WRITE,
        "resource": RECORD_2,
        "evaluations": [
            {"subject": {**BOB, "properties": {"role": "auditor"}}},
            {"subject": BOB},
        ],
    }
    assert items(ok_json(post(client, EVALUATIONS, body))) == [
        {"decision": False},
        {"decision": True},
    ]


@pytest.mark.parametrize(
    "extra",
    [{}, {"evaluations": []}, {"evaluations": None}],
    ids=["absent", "empty", "null"],
)
def test_batch_without_items_is_a_single_evaluation(client: httpx.Client, extra: Any) -> None:
    body = {**evaluation(ALICE, READ, RECORD_1), **extra}
    assert ok_json(post(client, EVALUATIONS, body)) == {"decision": True}


def test_batch_of_all_mandatory_decisions(client: httpx.Client) -> None:
    table = [p.values for p in MANDATORY]
    body = {"evaluations": [evaluation(s, a, r, CONTEXT) for s, a, r, _ in table]}
    assert items(ok_json(post(client, EVALUATIONS, body))) == [{"decision": e} for *_, e in table]


# -- Search: S1-S6 -------------------------------------------------------------------------

S1 = {"subject": {"type": "user"}, "action": READ, "resource": RECORD_1}
S2 = {"subject": ALICE, "action": READ, "resource": {"type": "record"}}
S3 = {"subject": ALICE, "resource": RECORD_1}
S4 = {"subject": {"type": "user"}, "action": WRITE, "resource": RECORD_2_ARCHIVED}
S5 = {"subject": BOB_ADMIN, "action": WRITE, "resource": {"type": "record"}}
S6 = {"subject": BOB_ADMIN, "resource": RECORD_2_ARCHIVED}

SEARCHES = [
    pytest.param(SEARCH_SUBJECT, S1, [ALICE, BOB], id="S1"),
    pytest.param(SEARCH_RESOURCE, S2, [RECORD_1], id="S2"),
    pytest.param(SEARCH_ACTION, S3, [{"name": "read"}, {"name": "write"}], id="S3"),
    pytest.param(SEARCH_SUBJECT, S4, [BOB], id="S4"),
    pytest.param(SEARCH_RESOURCE, S5, [RECORD_2], id="S5"),
    pytest.param(SEARCH_ACTION, S6, [{"name": "write"}], id="S6"),
]


def _check_result_shape(path: str, found: list[dict[str, Any]]) -> None:
    keys = ["name"] if path == SEARCH_ACTION else ["type", "id"]
    for result in found:
        assert list(result) == keys, result
        assert all(isinstance(v, str) for v in result.values())
    assert len({tuple(r.values()) for r in found}) == len(found), "duplicate results"
    assert found == sorted(found, key=lambda r: tuple(r.values())), "not in sorted order"


@pytest.mark.parametrize(("path", "body", "expected"), SEARCHES)
def test_search_expectation(
    client: httpx.Client, path: str, body: Any, expected: list[dict[str, Any]]
) -> None:
    found = results(client, path, body)
    for entity in expected:
        assert entity in found, f"{entity} missing from {found}"
    _check_result_shape(path, found)


def test_search_results_are_the_fixture_sets(client: httpx.Client) -> None:
    # The fixture policy (§8) determines the complete sets, not just the "at least" parts.
    assert results(client, SEARCH_SUBJECT, S1) == [ALICE, BOB]
    assert results(client, SEARCH_RESOURCE, S2) == [RECORD_1, RECORD_2]
    assert results(client, SEARCH_ACTION, S3) == [{"name": "read"}, {"name": "write"}]
    assert results(client, SEARCH_SUBJECT, S4) == [BOB]
    assert results(client, SEARCH_RESOURCE, S5) == [RECORD_2]
    assert results(client, SEARCH_ACTION, S6) == [{"name": "read"}, {"name": "write"}]


@pytest.mark.parametrize(("path", "body", "expected"), SEARCHES)
def test_search_context_never_changes_results(
    client: httpx.Client, path: str, body: Any, expected: list[dict[str, Any]]
) -> None:
    del expected
    without = post(client, path, body).json()
    with_context = post(client, path, {**body, "context": CONTEXT}).json()
    assert "results" in without
    assert with_context == without


def test_action_search_never_lists_soft_only_delete(client: httpx.Client) -> None:
    # Action search sends no action, so `delete` (soft only) is never among alice's actions.
    assert {"name": "delete"} not in results(client, SEARCH_ACTION, S3)


@pytest.mark.parametrize("stray", ["alice", "bob", "nonexistent-user", ""])
def test_stray_id_on_searched_subject_is_ignored(client: httpx.Client, stray: str) -> None:
    plain = post(client, SEARCH_SUBJECT, S4).json()
    with_id = post(client, SEARCH_SUBJECT, {**S4, "subject": {"type": "user", "id": stray}})
    assert ok_json(with_id) == plain
    assert BOB in plain["results"]


def test_stray_id_on_searched_resource_is_ignored(client: httpx.Client) -> None:
    plain = post(client, SEARCH_RESOURCE, S5).json()
    stray = {**S5, "resource": {"type": "record", "id": "record-1"}}
    assert ok_json(post(client, SEARCH_RESOURCE, stray)) == plain
    assert RECORD_2 in plain["results"]


def test_action_member_in_action_search_is_ignored(client: httpx.Client) -> None:
    plain = post(client, SEARCH_ACTION, S3).json()
    assert ok_json(post(client, SEARCH_ACTION, {**S3, "action": {"name": "delete"}})) == plain
    assert ok_json(post(client, SEARCH_ACTION, {**S3, "action": "garbage"})) == plain


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            SEARCH_RESOURCE,
            {**S2, "subject": {"type": "user", "id": "nonexistent-user"}},
            id="resource-search-unknown-subject",
        ),
        pytest.param(
            SEARCH_ACTION,
            {**S3, "subject": {"type": "user", "id": "nonexistent-user"}},
            id="action-search-unknown-subject",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            {**S1, "resource": {"type": "record", "id": "record-404"}},
            id="subject-search-unknown-resource",
        ),
        pytest.param(
            SEARCH_ACTION,
            {**S3, "resource": {"type": "record", "id": "record-404"}},
            id="action-search-unknown-resource",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            {**S2, "subject": {"type": "user", "id": "nonexistent-user", "properties": {"x": 1}}},
            id="resource-search-unknown-subject-with-properties",
        ),
        pytest.param(SEARCH_SUBJECT, {**S1, "subject": {"type": "spaceship"}}, id="subject-type"),
        pytest.param(
            SEARCH_RESOURCE, {**S2, "resource": {"type": "spaceship"}}, id="resource-type"
        ),
        pytest.param(
            SEARCH_RESOURCE,
            {**S2, "subject": {"type": "spaceship", "id": "alice"}},
            id="input-type",
        ),
        pytest.param(
            SEARCH_SUBJECT, {**S1, "subject": {"type": "not a type!"}}, id="unmappable-type"
        ),
        pytest.param(SEARCH_SUBJECT, {**S1, "action": {"name": "fly"}}, id="unknown-action"),
    ],
)
def test_unknown_entities_give_empty_results(client: httpx.Client, path: str, body: Any) -> None:
    assert ok_json(post(client, path, body)) == {"results": []}


def test_search_page_limit_one_and_follow_up_token(client: httpx.Client) -> None:
    first = ok_json(post(client, SEARCH_SUBJECT, {**S1, "page": {"limit": 1}}))
    assert first["results"] == [ALICE]
    assert next(iter(first)) == "page"
    assert first["page"]["count"] == 1
    assert first["page"]["total"] == 2
    token = first["page"]["next_token"]
    assert isinstance(token, str) and token

    second = ok_json(post(client, SEARCH_SUBJECT, {**S1, "page": {"limit": 1, "token": token}}))
    assert second["results"] == [BOB]
    assert second["page"]["next_token"] == ""
    assert second["page"]["count"] == 1


def test_search_page_follow_up_with_context_repeated(client: httpx.Client) -> None:
    body = {**S3, "context": CONTEXT, "page": {"limit": 1}}
    first = ok_json(post(client, SEARCH_ACTION, body))
    token = first["page"]["next_token"]
    second = ok_json(post(client, SEARCH_ACTION, {**body, "page": {"limit": 1, "token": token}}))
    assert first["results"] + second["results"] == [{"name": "read"}, {"name": "write"}]
    assert second["page"]["next_token"] == ""


# -- Search: §5.1 error cases ---------------------------------------------------------------


def _minus(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


SEARCH_ERRORS = [
    pytest.param(SEARCH_SUBJECT, _minus(S1, "subject"), id="subject-search-no-subject"),
    pytest.param(SEARCH_SUBJECT, _minus(S1, "resource"), id="subject-search-no-resource"),
    pytest.param(SEARCH_SUBJECT, _minus(S1, "action"), id="subject-search-no-action"),
    pytest.param(SEARCH_RESOURCE, _minus(S2, "subject"), id="resource-search-no-subject"),
    pytest.param(SEARCH_RESOURCE, _minus(S2, "resource"), id="resource-search-no-resource"),
    pytest.param(SEARCH_RESOURCE, _minus(S2, "action"), id="resource-search-no-action"),
    pytest.param(SEARCH_ACTION, _minus(S3, "subject"), id="action-search-no-subject"),
    pytest.param(SEARCH_ACTION, _minus(S3, "resource"), id="action-search-no-resource"),
    pytest.param(
        SEARCH_SUBJECT, {**S1, "resource": {"type": "record"}}, id="subject-search-resource-no-id"
    ),
    pytest.param(
        SEARCH_SUBJECT, {**S1, "resource": {"id": "record-1"}}, id="subject-search-resource-no-type"
    ),
    pytest.param(
        SEARCH_RESOURCE, {**S2, "subject": {"type": "user"}}, id="resource-search-subject-no-id"
    ),
    pytest.param(
        SEARCH_RESOURCE, {**S2, "subject": {"id": "alice"}}, id="resource-search-subject-no-type"
    ),
    pytest.param(SEARCH_ACTION, {**S3, "subject": {"type": "user"}}, id="action-search-subj-no-id"),
    pytest.param(
        SEARCH_ACTION, {**S3, "resource": {"type": "record"}}, id="action-search-res-no-id"
    ),
    pytest.param(
        SEARCH_SUBJECT, {**S1, "subject": {"id": "alice"}}, id="subject-search-searched-no-type"
    ),
    pytest.param(SEARCH_SUBJECT, {**S1, "subject": {}}, id="subject-search-searched-empty"),
    pytest.param(
        SEARCH_RESOURCE,
        {**S2, "resource": {"id": "record-1"}},
        id="resource-search-searched-no-type",
    ),
    pytest.param(SEARCH_SUBJECT, {**S1, "action": "read"}, id="subject-search-action-string"),
    pytest.param(SEARCH_RESOURCE, {**S2, "action": "read"}, id="resource-search-action-string"),
    pytest.param(SEARCH_SUBJECT, {**S1, "action": {}}, id="subject-search-action-no-name"),
    pytest.param(SEARCH_SUBJECT, {**S1, "subject": "user"}, id="subject-search-searched-string"),
    pytest.param(SEARCH_SUBJECT, {**S1, "subject": {"type": 5}}, id="searched-type-number"),
    pytest.param(SEARCH_SUBJECT, {**S1, "context": "now"}, id="subject-search-context-string"),
    pytest.param(SEARCH_SUBJECT, {**S1, "page": "1"}, id="subject-search-page-string"),
    pytest.param(SEARCH_SUBJECT, {**S1, "page": {"limit": -1}}, id="page-limit-negative"),
    pytest.param(SEARCH_SUBJECT, {**S1, "page": {"limit": "1"}}, id="page-limit-string"),
    pytest.param(SEARCH_SUBJECT, {**S1, "page": {"limit": 1.5}}, id="page-limit-float"),
    pytest.param(SEARCH_SUBJECT, {**S1, "page": {"token": 5}}, id="page-token-number"),
]


@pytest.mark.parametrize(("path", "body"), SEARCH_ERRORS)
def test_search_error_cases_are_400(client: httpx.Client, path: str, body: Any) -> None:
    assert_error(post(client, path, body))
