"""The lists of the approval pages over HTTP: the inbox (what waits for the approver, what
they decided, one template's, twenty to a page with a link to the older ones), the emergency
approvals waiting for a review, the approvals granted by the approver, and a person's own
requests (theirs only)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.approvals.helpers import (
    SENSITIVE_RECORD,
    approval_ids,
    decide_on_page,
    denial_of,
    file_export,
    file_request,
    linked_requests,
    pages_server,
    person,
    post_page,
    signed_in,
    task_state,
)
from tests.dtr_fixtures import DTRServer

PAGE_SIZE = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DTRServer]:
    with pages_server(tmp_path_factory.mktemp("pages-lists")) as running:
        yield running


@pytest.fixture(scope="module")
def manager(server: DTRServer) -> Iterator[httpx.Client]:
    with signed_in(server, "manager-1") as browser:
        yield browser


def older_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]*)"[^>]*>Older requests</a>', page)
    return html.unescape(found.group(1)) if found else None


def every_page(browser: httpx.Client, first: str, list_id: str = "requests") -> list[list[str]]:
    """The ids each page lists, following "Older requests" from `first` to the last page."""
    pages: list[list[str]] = []
    path: str | None = first
    while path is not None:
        assert len(pages) < 50, "the pages never end"
        page = browser.get(path)
        assert page.status_code == 200, page.text
        pages.append(linked_requests(page.text, list_id))
        path = older_link(page.text)
    return pages


def emergency_payment(server: DTRServer, who: str, cents: int) -> dict[str, Any]:
    """`who` pays `cents` EUR cents in an emergency: approved at once, to be reviewed."""
    evaluation = {
        "subject": {"type": "user", "id": who},
        "action": {"name": "initiate"},
        "resource": {
            "type": "Payment",
            "id": "payment",
            "properties": {"amount_minor": cents, "currency": "EUR"},
        },
    }
    return file_request(
        server,
        {
            **evaluation,
            "denial": denial_of(server, evaluation),
            "requested_access": {"emergency": True, "justification": "the supplier stops"},
        },
    )


# -- the inbox ----------------------------------------------------------------------------


def test_the_inbox_lists_what_waits_and_what_was_decided(
    server: DTRServer, manager: httpx.Client
) -> None:
    waiting = file_export(server, person(), ["cust-0001"])["id"]
    decided = file_export(server, person(), ["cust-0001"])["id"]
    assert decide_on_page(manager, decided, "deny").status_code == 303
    pending_page = manager.get("/approvals").text
    assert waiting in linked_requests(pending_page)
    assert decided not in linked_requests(pending_page)
    assert '<option value="pending" selected>' in pending_page
    decided_page = manager.get("/approvals?state=decided").text
    assert decided in linked_requests(decided_page)
    assert waiting not in linked_requests(decided_page)
    assert '<option value="decided" selected>' in decided_page


def test_the_inbox_shows_one_templates_requests(server: DTRServer, manager: httpx.Client) -> None:
    who = person()
    usual = file_export(server, who, ["cust-0001"])["id"]
    sensitive = file_export(server, who, [SENSITIVE_RECORD])["id"]
    everything = linked_requests(manager.get("/approvals").text)
    assert usual in everything and sensitive in everything
    only = manager.get("/approvals?template=sensitive-export").text
    assert sensitive in linked_requests(only) and usual not in linked_requests(only)
    assert 'name="template" value="sensitive-export"' in only
    managers = linked_requests(manager.get("/approvals?template=manager").text)
    assert usual in managers and sensitive not in managers
    none = manager.get("/approvals?template=no-such-template").text
    assert linked_requests(none) == [] and 'id="inbox-empty"' in none


def test_more_than_a_page_links_to_the_older_requests_none_twice(
    server: DTRServer, manager: httpx.Client
) -> None:
    who = person()
    filed = [file_export(server, who, [f"cust-{n:04d}"])["id"] for n in range(PAGE_SIZE + 5)]
    first = manager.get("/approvals?template=manager").text
    link = older_link(first)
    assert link is not None and "template=manager" in link and "before=" in link
    pages = every_page(manager, "/approvals?template=manager")
    assert len(pages[0]) == PAGE_SIZE
    assert len(pages) >= 2 and 0 < len(pages[-1]) <= PAGE_SIZE
    listed = [task_id for page in pages for task_id in page]
    assert len(listed) == len(set(listed)), "a request on two pages"
    assert set(filed) <= set(listed), "a request on no page"
    # Newest first: the last one filed opens the list, the first one filed comes later.
    assert listed.index(filed[-1]) < listed.index(filed[0])


def test_the_emergency_approvals_wait_for_a_review(server: DTRServer) -> None:
    task = emergency_payment(server, "alice", 350_000)
    assert task["status"] == "approved"
    with signed_in(server, "finance-1") as finance:
        inbox = finance.get("/approvals").text
        assert "Emergency approvals to review" in inbox
        assert task["id"] in linked_requests(inbox, "reviews")
        page = finance.get(f"/approvals/{task['id']}").text
        assert 'id="review"' in page and 'id="emergency">Yes' in page
        assert "Approved at once by the policy (emergency)" in page
        answer = post_page(finance, f"/approvals/{task['id']}/review", justification="needed")
        assert answer.headers["location"] == f"/approvals/{task['id']}?done=review"
        page = finance.get(answer.headers["location"]).text
        assert 'id="done">You confirmed the emergency approval.' in page
        assert "Emergency approval reviewed by finance-1: “needed”" in page
        assert 'id="review"' not in page
        assert task["id"] not in linked_requests(finance.get("/approvals").text, "reviews")
        assert task["id"] in linked_requests(finance.get("/approvals?state=decided").text)


def test_only_the_templates_approvers_review_an_emergency(
    server: DTRServer, manager: httpx.Client
) -> None:
    task = emergency_payment(server, person(), 250_000)
    assert task["id"] not in manager.get("/approvals").text
    answer = post_page(manager, f"/approvals/{task['id']}/review")
    assert answer.status_code == 403, answer.text
    with signed_in(server, "finance-1") as finance:
        assert task["id"] in linked_requests(finance.get("/approvals").text, "reviews")


# -- granted by you ---------------------------------------------------------------------


def test_granted_by_you_lists_the_approvals_in_force_of_this_approver(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = file_export(server, person(), ["cust-0001"])["id"]
    assert decide_on_page(manager, task_id, approve_for="3600").status_code == 303
    approval = task_state(server, task_id)["result"]["approval"]["id"]
    granted = manager.get("/approvals/granted").text
    assert approval in approval_ids(granted)
    entry = granted.split(f'href="/approvals/{task_id}"')[0].rsplit("<li>", 1)[1]
    assert "export CustomerRecord cust-0001 for user" in entry
    with signed_in(server, "dpo-1") as dpo:
        theirs = dpo.get("/approvals/granted").text
        assert approval_ids(theirs) == [] and 'id="granted-empty"' in theirs


# -- my requests -------------------------------------------------------------------------


def test_my_requests_shows_only_the_persons_own(server: DTRServer) -> None:
    hers = file_export(server, "alice", ["cust-0001"], justification="customer asked")["id"]
    theirs = file_export(server, person(), ["cust-0001"])["id"]
    with signed_in(server, "alice", "/my-requests") as alice:
        mine = alice.get("/my-requests").text
    assert f'action="/my-requests/{hers}/cancel"' in mine
    assert theirs not in mine
    assert "step 1 of 1: approve" in mine
    with signed_in(server, "dpo-1", "/my-requests") as dpo:
        nothing = dpo.get("/my-requests").text
    assert 'id="mine-empty"' in nothing and "arq_" not in nothing


def test_my_requests_say_until_when_an_approval_holds(
    server: DTRServer, manager: httpx.Client
) -> None:
    task_id = file_export(server, "alice", ["cust-0009"])["id"]
    assert decide_on_page(manager, task_id).status_code == 303
    with signed_in(server, "alice", "/my-requests") as alice:
        mine = alice.get("/my-requests").text
    entry = re.search(r"<li>(.*?)</li>", mine, re.S)  # the newest first
    assert entry is not None and "cust-0009" in entry.group(1)
    assert entry is not None and "approved" in entry.group(1)
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d UTC", entry.group(1)), entry.group(1)


def test_my_requests_come_a_page_at_a_time(server: DTRServer) -> None:
    filed = {file_export(server, "finance-1", ["cust-0001"])["id"] for _ in range(PAGE_SIZE + 2)}
    with signed_in(server, "finance-1", "/my-requests") as finance:
        seen: list[str] = []
        path: str | None = "/my-requests"
        while path is not None:
            page = finance.get(path).text
            ids = re.findall(r'action="/my-requests/([^"/]+)/cancel"', page)
            assert len(ids) <= PAGE_SIZE
            seen += ids
            path = older_link(page)
    assert sorted(seen) == sorted(filed)
