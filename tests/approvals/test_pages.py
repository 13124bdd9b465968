"""The approval pages over HTTP, as a browser without scripts uses them (a cookie-keeping
client, redirects looked at one by one): who must sign in, the CSRF token on every form,
nothing changed by a GET, who may see and decide what, and what each form accepts. Every
refusal is an HTML error page with the status of the rule, and leaves the request as it was.

The browser's way through the same pages is tests/approvals/test_pages_browser.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.approvals.helpers import (
    approval_ids,
    assert_error_page,
    csrf_of,
    decide_on_page,
    file_export,
    pages_server,
    person,
    post_page,
    signed_in,
    task_state,
)
from tests.dtr_fixtures import DTRServer, parse_rfc3339


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with pages_server(tmp_path_factory.mktemp("pages")) as running:
        yield running


@pytest.fixture(scope="module")
def manager(server: DTRServer) -> Iterator[httpx.Client]:
    with signed_in(server, "manager-1") as browser:
        yield browser


@pytest.fixture(scope="module")
def alice(server: DTRServer) -> Iterator[httpx.Client]:
    with signed_in(server, "alice", "/my-requests") as browser:
        yield browser


@pytest.fixture(scope="module")
def finance(server: DTRServer) -> Iterator[httpx.Client]:
    with signed_in(server, "finance-1") as browser:
        yield browser


def pending_export(server: DTRServer, who: str = "alice", *records: str) -> str:
    """A new access request, waiting for a manager: its id."""
    task = file_export(server, who, list(records) or ["cust-0001"])
    assert task["status"] == "pending"
    return str(task["id"])


def approved_export(server: DTRServer, manager: httpx.Client) -> tuple[str, str]:
    """A request manager-1 approved on the page: (its id, the approval's id)."""
    task_id = pending_export(server)
    done = decide_on_page(manager, task_id)
    assert done.status_code == 303, done.text
    [approval] = approval_ids(manager.get(f"/approvals/{task_id}").text)
    return task_id, approval


# -- signed in, or off to sign in ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/approvals",
        "/approvals?state=decided&template=manager",
        "/approvals/granted",
        "/approvals/arq_someone",
        "/my-requests",
    ],
)
def test_a_signed_out_visit_goes_to_sign_in_and_comes_back(server: DTRServer, path: str) -> None:
    with httpx.Client(base_url=server.oauth.url, follow_redirects=False) as browser:
        answer = browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in?next=" + quote(path, safe="")
    with signed_in(server, "manager-1", path) as browser:  # lands on `path` (asserted)
        assert browser.get("/approvals").status_code == 200


def test_a_post_without_a_session_is_refused(server: DTRServer) -> None:
    task_id = pending_export(server)
    with httpx.Client(base_url=server.oauth.url, follow_redirects=False) as browser:
        answer = browser.post(f"/approvals/{task_id}/decision", data={"decision": "approve"})
    assert_error_page(answer, 403, "The form has expired")
    assert task_state(server, task_id)["task"]["status"] == "pending"


def test_a_signed_out_session_is_over_even_with_a_copy_of_its_cookie(server: DTRServer) -> None:
    task_id = pending_export(server)
    with signed_in(server, "manager-1") as browser:
        token = csrf_of(browser)
        cookies = dict(browser.cookies)
        assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 200
    with httpx.Client(base_url=server.oauth.url, cookies=cookies, follow_redirects=False) as copy:
        assert copy.get("/approvals").status_code == 303
        answer = copy.post(
            f"/approvals/{task_id}/decision", data={"csrf_token": token, "decision": "approve"}
        )
    assert_error_page(answer, 401, "Your sign-in has ended")
    assert task_state(server, task_id)["task"]["status"] == "pending"


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "not-the-token", "x" * 5000])
def test_a_decision_without_the_sessions_token_changes_nothing(
    server: DTRServer, manager: httpx.Client, token: str | None
) -> None:
    task_id = pending_export(server)
    answer = decide_on_page(manager, task_id, csrf_token=token)
    assert_error_page(answer, 403, "The form has expired")
    assert task_state(server, task_id)["task"]["status"] == "pending"


def test_another_sessions_token_is_refused_everywhere(
    server: DTRServer, manager: httpx.Client, alice: httpx.Client
) -> None:
    """alice's token in manager-1's session: each form refuses it, and nothing changes."""
    task_id, approval = approved_export(server, manager)
    waiting = pending_export(server)
    hers = csrf_of(alice)
    assert hers != csrf_of(manager)
    for path, fields in [
        (f"/approvals/{waiting}/decision", {"decision": "deny"}),
        (f"/approvals/{waiting}/review", {}),
        (f"/approvals/granted/{approval}/revoke", {}),
        (f"/my-requests/{waiting}/cancel", {}),
    ]:
        assert_error_page(post_page(manager, path, csrf_token=hers, **fields), 403)
    # And manager-1's token in alice's session does not cancel her request.
    answer = post_page(alice, f"/my-requests/{waiting}/cancel", csrf_token=csrf_of(manager))
    assert_error_page(answer, 403, "The form has expired")
    assert task_state(server, waiting)["task"]["status"] == "pending"
    assert approval in approval_ids(manager.get("/approvals/granted").text)
    assert approval_ids(manager.get(f"/approvals/{task_id}").text) == [approval]


# -- nothing changes on a GET --------------------------------------------------------------


def test_nothing_changes_on_a_get(server: DTRServer, manager: httpx.Client) -> None:
    _, approval = approved_export(server, manager)
    waiting = pending_export(server)
    token = csrf_of(manager)
    for path in [
        f"/approvals/{waiting}/decision?decision=approve&csrf_token={token}",
        f"/approvals/{waiting}/review?csrf_token={token}",
        f"/approvals/granted/{approval}/revoke?csrf_token={token}",
        f"/my-requests/{waiting}/cancel?csrf_token={token}",
    ]:
        assert manager.get(path).status_code == 405, path
    page = manager.get(f"/approvals/{waiting}?decision=approve&csrf_token={token}")
    assert page.status_code == 200
    assert task_state(server, waiting)["task"]["status"] == "pending"
    assert approval in approval_ids(manager.get("/approvals/granted").text)


# -- who may see and decide what -----------------------------------------------------------


def test_a_person_policy_does_not_name_may_not_see_the_request(
    server: DTRServer, finance: httpx.Client
) -> None:
    task_id = pending_export(server)
    assert_error_page(
        finance.get(f"/approvals/{task_id}"), 403, "you may not decide this access request"
    )
    assert_error_page(decide_on_page(finance, task_id), 403)
    assert task_id not in finance.get("/approvals").text
    assert task_state(server, task_id)["task"]["status"] == "pending"


def test_nobody_decides_a_request_made_for_them(server: DTRServer, alice: httpx.Client) -> None:
    task_id = pending_export(server, "alice")
    not_hers = "not yours to decide"
    assert_error_page(alice.get(f"/approvals/{task_id}"), 403, not_hers)
    assert_error_page(decide_on_page(alice, task_id), 403, not_hers)
    assert task_id not in alice.get("/approvals").text
    assert task_state(server, task_id)["task"]["status"] == "pending"


def test_an_unknown_request_is_a_not_found_page(manager: httpx.Client) -> None:
    assert_error_page(manager.get("/approvals/arq_nope"), 404, "no such access request")
    assert_error_page(decide_on_page(manager, "arq_nope"), 404)
    assert_error_page(post_page(manager, "/approvals/arq_nope/review"), 404)
    assert_error_page(post_page(manager, "/approvals/granted/apr_nope/revoke"), 404)


# -- deciding --------------------------------------------------------------------------------


def test_the_manager_approves_with_a_justification(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = pending_export(server)
    page = manager.get(f"/approvals/{task_id}").text
    assert 'id="decide"' in page and 'name="item-0"' in page
    answer = decide_on_page(manager, task_id, justification="Quarterly audit, ticket 4711")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/approvals/{task_id}?done=approve"
    page = manager.get(answer.headers["location"]).text
    assert 'id="done">You approved.' in page
    assert '<dd id="status">approved</dd>' in page
    assert "Approved by manager-1: “Quarterly audit, ticket 4711”" in page
    assert 'id="decide"' not in page, "nothing is left to decide"
    state = task_state(server, task_id)
    assert state["task"]["status"] == "approved"
    assert state["result"]["approval"]["id"] in approval_ids(page)


def test_a_denial_on_the_page_ends_the_request(server: DTRServer, manager: httpx.Client) -> None:
    task_id = pending_export(server)
    answer = decide_on_page(manager, task_id, "deny", justification="not for this purpose")
    assert answer.headers["location"] == f"/approvals/{task_id}?done=deny"
    page = manager.get(answer.headers["location"]).text
    assert 'id="done">You denied.' in page
    assert "Denied by manager-1 at step “approve”: “not for this purpose”" in page
    assert approval_ids(page) == []
    assert task_state(server, task_id)["task"]["status"] == "denied"


def test_deciding_twice_is_a_conflict(server: DTRServer, manager: httpx.Client) -> None:
    task_id = pending_export(server)
    assert decide_on_page(manager, task_id).status_code == 303
    assert_error_page(decide_on_page(manager, task_id, "deny"), 409, "already approved")
    assert task_state(server, task_id)["task"]["status"] == "approved"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"decision": None}, "Choose Approve or Deny."),
        ({"decision": "maybe"}, "Choose Approve or Deny."),
        ({"approve_for": "42"}, "Choose one of the offered lengths."),
        ({"approve_for": "forever"}, "Choose one of the offered lengths."),
        ({"justification": "x" * 1001}, "at most 1000 characters"),
        ({"item-7": "on"}, "has no item 7"),
        ({"item-1000": "on"}, "names an item that is not on the request"),
        ({"item-x": "on"}, "names an item that is not on the request"),
    ],
)
def test_the_decision_form_is_checked(
    server: DTRServer, manager: httpx.Client, fields: dict[str, str | None], words: str
) -> None:
    task_id = pending_export(server)
    answer = decide_on_page(manager, task_id, **{"decision": "approve", **fields})
    assert_error_page(answer, 400, words)
    assert task_state(server, task_id)["task"]["status"] == "pending"


def test_a_justification_of_the_longest_length_is_kept(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = pending_export(server)
    assert decide_on_page(manager, task_id, justification="y" * 1000).status_code == 303
    assert "y" * 1000 in manager.get(f"/approvals/{task_id}").text


def test_deciding_some_items_of_a_bundle_leaves_the_others_waiting(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = pending_export(server, "alice", "cust-0002", "cust-0003")
    page = manager.get(f"/approvals/{task_id}").text
    assert 'name="item-0"' in page and 'name="item-1"' in page
    answer = decide_on_page(manager, task_id, **{"item-1": "on"})
    assert answer.status_code == 303, answer.text
    items = task_state(server, task_id)["task"]["items"]
    assert [i["status"] for i in items] == ["pending", "approved"]
    page = manager.get(f"/approvals/{task_id}").text
    assert 'name="item-0"' in page and 'name="item-1"' not in page, "only item 0 waits"
    assert len(approval_ids(page)) == 1
    # Denying the rest ends the bundle: some approved, some denied.
    assert decide_on_page(manager, task_id, "deny").status_code == 303
    state = task_state(server, task_id)["task"]
    assert [i["status"] for i in state["items"]] == ["denied", "approved"]
    assert state["status"] == "partial"


def test_approve_for_narrows_approved_until(server: DTRServer, manager: httpx.Client) -> None:
    usual, short = pending_export(server), pending_export(server)
    before = time.time()
    assert decide_on_page(manager, usual).status_code == 303
    assert decide_on_page(manager, short, approve_for="900").status_code == 303
    after = time.time()
    usual_until = parse_rfc3339(task_state(server, usual)["result"]["approval"]["approved_until"])
    short_until = parse_rfc3339(task_state(server, short)["result"]["approval"]["approved_until"])
    assert before + 900 - 1 <= short_until <= after + 900 + 1
    assert short_until < usual_until - 1800, "the usual length is an hour"


# -- reviewing, revoking, cancelling ---------------------------------------------------------


def test_revoking_on_the_granted_page(server: DTRServer, manager: httpx.Client) -> None:
    task_id, approval = approved_export(server, manager)
    granted = manager.get("/approvals/granted").text
    assert approval in approval_ids(granted) and f'href="/approvals/{task_id}"' in granted
    answer = post_page(manager, f"/approvals/granted/{approval}/revoke", justification="mistake")
    assert answer.headers["location"] == "/approvals/granted?done=revoke"
    granted = manager.get(answer.headers["location"]).text
    assert 'id="done">The approval is revoked.' in granted
    assert approval not in approval_ids(granted)
    assert "Approval revoked by manager-1: “mistake”" in manager.get(f"/approvals/{task_id}").text
    again = post_page(manager, f"/approvals/granted/{approval}/revoke")
    assert_error_page(again, 409, "already revoked")


def test_revoking_from_the_request_page_goes_back_there(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id, approval = approved_export(server, manager)
    back = f"/approvals/{task_id}"
    answer = post_page(manager, f"/approvals/granted/{approval}/revoke", back=back)
    assert answer.headers["location"] == back + "?done=revoke"
    page = manager.get(back + "?done=revoke").text
    assert 'id="done">The approval is revoked.' in page
    # The item keeps the approval it was granted; the page says it is withdrawn, and offers
    # no second revocation.
    assert "approved · manager · step 1 of 1: approve · approval revoked" in page
    assert approval_ids(page) == []


@pytest.mark.parametrize("back", ["https://evil.example/approvals/arq_x", "//evil.example/"])
def test_revoking_never_sends_the_browser_elsewhere(
    server: DTRServer, manager: httpx.Client, back: str
) -> None:
    _, approval = approved_export(server, manager)
    answer = post_page(manager, f"/approvals/granted/{approval}/revoke", back=back)
    assert answer.headers["location"] == "/approvals/granted?done=revoke"


def test_revoking_an_approval_policy_does_not_let_one_revoke(
    server: DTRServer, manager: httpx.Client, finance: httpx.Client
) -> None:
    _, approval = approved_export(server, manager)
    answer = post_page(finance, f"/approvals/granted/{approval}/revoke")
    assert_error_page(answer, 403, "you may not revoke this approval")
    assert approval in approval_ids(manager.get("/approvals/granted").text)
    assert approval_ids(finance.get("/approvals/granted").text) == []


def test_a_review_of_a_request_without_an_emergency_is_a_conflict(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = pending_export(server)
    page = manager.get(f"/approvals/{task_id}").text
    assert 'id="review"' not in page
    answer = post_page(manager, f"/approvals/{task_id}/review")
    assert_error_page(answer, 409, "nothing in this access request waits for a review")


def test_alice_cancels_her_own_request(server: DTRServer, alice: httpx.Client) -> None:
    task_id = pending_export(server, "alice")
    mine = alice.get("/my-requests").text
    assert f'action="/my-requests/{task_id}/cancel"' in mine
    answer = post_page(alice, f"/my-requests/{task_id}/cancel")
    assert answer.headers["location"] == "/my-requests?done=cancel"
    mine = alice.get(answer.headers["location"]).text
    assert 'id="done">The request is cancelled.' in mine
    assert f'action="/my-requests/{task_id}/cancel"' not in mine
    assert task_state(server, task_id)["task"]["status"] == "cancelled"
    assert_error_page(post_page(alice, f"/my-requests/{task_id}/cancel"), 409)


def test_cancelling_someone_elses_request_is_refused(
    server: DTRServer, alice: httpx.Client, manager: httpx.Client
) -> None:
    theirs = pending_export(server, person())
    assert_error_page(post_page(alice, f"/my-requests/{theirs}/cancel"), 404)
    assert_error_page(post_page(manager, f"/my-requests/{theirs}/cancel"), 404)
    assert task_state(server, theirs)["task"]["status"] == "pending"


def test_routing_errors_under_the_pages_are_pages(server: DTRServer, manager: httpx.Client) -> None:
    wrong_method = manager.get("/approvals/arq_x/decision")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("text/html")
    assert wrong_method.headers["allow"] == "POST"
    assert "Method Not Allowed" in wrong_method.text
    nowhere = manager.get("/my-requests/arq_x/cancel/again")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"].startswith("text/html")
    assert "<script" not in manager.get("/approvals/%3Cscript%3E/x/y").text
