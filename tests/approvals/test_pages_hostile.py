"""Hostile input at the approval pages: odd, long and markup-laden values in query strings,
paths and forms. Each answer is a page or an error page with the status of the rule, never a
500; nothing sent is written back unescaped; and a form that cannot be read changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.approvals.helpers import (
    assert_error_page,
    csrf_of,
    decide_on_page,
    file_export,
    linked_requests,
    pages_server,
    post_page,
    signed_in,
    task_state,
)
from tests.dtr_fixtures import DTRServer

MARKUP = "<script>alert(1)</script>"
ATTRIBUTE = "\"'><svg onload=alert(1)>"
HOSTILE = [
    MARKUP,
    ATTRIBUTE,
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "-1e11",
    "0x10",
    "1_000",
    "x" * 8000,
    "\u202e\u0000\u0007",
    "%ff%fe",
    "../../../etc/passwd",
    "arq_" + "A" * 300,
]
NAMES = ["state", "template", "before", "done"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with pages_server(tmp_path_factory.mktemp("pages-hostile")) as running:
        yield running


@pytest.fixture(scope="module")
def manager(server: DTRServer) -> Iterator[httpx.Client]:
    with signed_in(server, "manager-1") as browser:
        yield browser


@pytest.fixture(scope="module")
def waiting(server: DTRServer) -> str:
    """A request that waits for manager-1 (the tests here leave it waiting)."""
    return str(file_export(server, "alice", ["cust-0001"])["id"])


def assert_not_reflected(text: str) -> None:
    assert MARKUP not in text and "<svg" not in text
    assert "\u0000" not in text and "\u202e" not in text


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("path", ["/approvals", "/approvals/granted", "/my-requests", "request"])
def test_hostile_query_strings_are_never_a_500_nor_reflected(
    server: DTRServer, manager: httpx.Client, waiting: str, path: str, value: str
) -> None:
    target = f"/approvals/{waiting}" if path == "request" else path
    answer = manager.get(target, params=dict.fromkeys(NAMES, value))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'none'" in answer.headers["content-security-policy"]
    assert_not_reflected(answer.text)
    assert task_state(server, waiting)["task"]["status"] == "pending"


@pytest.mark.parametrize("before", ["nan", "inf", "-inf", "1e400", "not a number", ""])
def test_a_before_that_is_no_time_is_ignored(
    manager: httpx.Client, waiting: str, before: str
) -> None:
    assert waiting in linked_requests(manager.get("/approvals", params={"before": before}).text)


def test_an_unknown_state_shows_what_waits(manager: httpx.Client, waiting: str) -> None:
    page = manager.get("/approvals", params={"state": MARKUP}).text
    assert '<option value="pending" selected>' in page
    assert waiting in linked_requests(page)


@pytest.mark.parametrize("template", [ATTRIBUTE, "\u202e\u0000", "x" * 8000, "manager\n"])
def test_a_template_filter_no_template_could_be_named_is_no_filter(
    manager: httpx.Client, waiting: str, template: str
) -> None:
    page = manager.get("/approvals", params={"template": template}).text
    assert 'name="template" value=""' in page
    assert waiting in linked_requests(page)
    assert_not_reflected(page)


@pytest.mark.parametrize(
    "task_id",
    ["<script>", ATTRIBUTE, "a" * 4000, "\u202e", "\u0000", "%00", "arq_..", "granted.html"],
)
def test_a_hostile_request_id_is_a_not_found_page(manager: httpx.Client, task_id: str) -> None:
    quoted = quote(task_id, safe="")
    assert_not_reflected(assert_error_page(manager.get(f"/approvals/{quoted}"), 404))
    answer = decide_on_page(manager, quoted)
    assert_not_reflected(assert_error_page(answer, 404))


def test_a_request_id_with_a_slash_is_no_page_at_all(manager: httpx.Client) -> None:
    # `%2F` is a `/` to the router: a path of no page (answered by the router, not a page).
    for path in [f"/approvals/{quote(MARKUP, safe='')}", "/approvals/arq_x/decision/more"]:
        answer = manager.get(path)
        assert answer.status_code == 404
        assert_not_reflected(answer.text)


def test_a_hostile_justification_is_shown_as_text(server: DTRServer, manager: httpx.Client) -> None:
    task_id = file_export(server, "alice", ["cust-0001"])["id"]
    note = f"{MARKUP} {ATTRIBUTE} & “quoted” \u00e9\u4e2d"
    assert decide_on_page(manager, task_id, justification=note).status_code == 303
    page = manager.get(f"/approvals/{task_id}").text
    assert_not_reflected(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&amp; “quoted” \u00e9\u4e2d" in page


def test_a_hostile_justification_from_the_requester_is_shown_as_text(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = file_export(server, "alice", ["cust-0001"], justification=MARKUP)["id"]
    page = manager.get(f"/approvals/{task_id}").text
    assert_not_reflected(page)
    assert '<dd id="justification">&lt;script&gt;' in page
    with signed_in(server, "alice", "/my-requests") as alice:
        assert_not_reflected(alice.get("/my-requests").text)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"approve_for": MARKUP}, "Choose one of the offered lengths."),
        ({"decision": MARKUP}, "Choose Approve or Deny."),
        ({"justification": MARKUP * 100}, "at most 1000 characters"),
        ({"item-999": "on"}, "has no item 999"),
    ],
)
def test_hostile_decision_fields_are_refused_without_echo(
    server: DTRServer, manager: httpx.Client, waiting: str, fields: dict[str, str], words: str
) -> None:
    answer = decide_on_page(manager, waiting, **{"decision": "approve", **fields})
    assert_not_reflected(assert_error_page(answer, 400, words))
    assert task_state(server, waiting)["task"]["status"] == "pending"


def test_a_form_that_cannot_be_read_changes_nothing(
    server: DTRServer, manager: httpx.Client, waiting: str
) -> None:
    token = csrf_of(manager)
    path = f"/approvals/{waiting}/decision"
    form = "application/x-www-form-urlencoded"
    bodies: list[tuple[bytes, str]] = [
        (f"csrf_token={token}&decision=approve&decision=deny".encode(), form),  # repeated
        (f"csrf_token={token}&decision=approve&justification=\xff".encode("latin-1"), form),
        (f'{{"csrf_token": "{token}", "decision": "approve"}}'.encode(), "application/json"),
        (f"csrf_token={token}&decision=approve&justification=".encode() + b"x" * 1_100_000, form),
    ]
    for body, media_type in bodies:
        answer = manager.post(path, content=body, headers={"content-type": media_type})
        assert_error_page(answer, 400, "The form could not be read.")
    in_url = manager.post(path + f"?csrf_token={token}&decision=approve", data={"x": "y"})
    assert_error_page(in_url, 400, "The form could not be read.")
    assert task_state(server, waiting)["task"]["status"] == "pending"


def test_a_hostile_back_stays_on_the_bridge(server: DTRServer, manager: httpx.Client) -> None:
    task_id = file_export(server, "alice", ["cust-0001"])["id"]
    assert decide_on_page(manager, task_id).status_code == 303
    approval = task_state(server, task_id)["result"]["approval"]["id"]
    back = f"/approvals/{task_id}\r\nSet-Cookie: planted=1"
    answer = post_page(manager, f"/approvals/granted/{approval}/revoke", back=back)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(f"/approvals/{task_id}") and "\n" not in location
    assert "planted" not in answer.headers.get("set-cookie", "")
