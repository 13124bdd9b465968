"""Helpers of the approval tests: the real bridge for deferred approvals (`dtr_server`'s
configuration) on a copy of the demo policies that a test may extend, and what these tests
read back (the audit trail through `bridge audit export`, the access request of a subject).

For the approval pages: the same bridge also serving the front door with the demo's local
accounts (`pages_server`), a person signed in there with a cookie-keeping HTTP client
(`signed_in`), and access requests filed over ARAP for a person (`file_export`).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bridge.app import create_app
from bridge.settings import load_settings
from tests.conftest import POLICIES, ServerThread, serve
from tests.dtr_fixtures import REQUESTS, DTRServer, dtr_clients, dtr_config_text, export_details
from tests.front_door.helpers import PASSWORDS, hidden, users_toml
from tests.oauth_fixtures import OAuthServer, exchange_form, idp_token, server_config

SENSITIVE_RECORD = "cust-0042"  # entities.json marks it sensitive: two steps to export it


def demo_policies(folder: Path, *, policies: str = "", templates: str = "") -> Path:
    """A copy of the demo store in `folder`, with `policies` appended to its Cedar and
    `templates` to its approvals.toml."""
    store = folder / "policies"
    shutil.copytree(POLICIES / "default", store)
    if policies:
        with (store / "policies.cedar").open("a", encoding="utf-8") as cedar:
            cedar.write("\n" + policies)
    if templates:
        with (store / "approvals.toml").open("a", encoding="utf-8") as toml:
            toml.write("\n" + templates)
    return store


@contextlib.contextmanager
def approvals_server(
    folder: Path, store: Path | None = None, extra: str = ""
) -> Iterator[DTRServer]:
    """The bridge of the DTR tests (token exchange for people, the demo approver issuer,
    anonymous ARAP requesters) serving `store` (default: the demo store as it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = server_config(
        folder,
        clients=dtr_clients(),
        policies=store or POLICIES / "default",
        # Clients poll every second: a test waits for the outcome, not the clock.
        extra=dtr_config_text(folder, deferral={"interval_seconds": 1}) + extra,
    )
    settings = load_settings(config)
    with (
        serve(settings) as thread,
        httpx.Client(base_url=thread.url, timeout=10) as http,
    ):
        oauth = OAuthServer(thread, http, config, settings.store_path("default"))
        yield DTRServer(oauth, settings, folder)


def person() -> str:
    """A person's id no other test uses (their requests are theirs alone)."""
    return f"p-{uuid.uuid4().hex[:10]}@example.com"


def export_for(who: str, record: str) -> dict[str, str]:
    """demo-agent's token exchange for `who` exporting `record` (deferred when it needs one)."""
    return exchange_form(export_details(record), subject_token=idp_token(who))


def request_of(server: DTRServer, approver: str, who: str) -> dict[str, Any] | None:
    """The access request for `who` in `approver`'s inbox, if it is there."""
    found = [r for r in server.inbox(approver) if r["subject"]["id"] == who]
    assert len(found) <= 1, found
    return found[0] if found else None


def bridge(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """`bridge <args> --config <config>`, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit(server: DTRServer, task_id: str | None = None) -> list[dict[str, Any]]:
    """The audit trail as `bridge audit export` writes it (of one request, when given)."""
    done = bridge("audit", "export", config=server.oauth.config)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    return [e for e in entries if task_id is None or e["task_id"] == task_id]


def events(server: DTRServer, task_id: str) -> list[str]:
    return [e["event"] for e in audit(server, task_id)]


# -- the approval pages ------------------------------------------------------------------


class _Holder:
    """An ASGI app set after the socket is bound (the configuration needs the port)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@contextlib.contextmanager
def pages_server(folder: Path, store: Path | None = None, extra: str = "") -> Iterator[DTRServer]:
    """`approvals_server`'s bridge serving the front door too: its public URL is its own
    port (what a browser sees), with the demo's local accounts (`PASSWORDS`)."""
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "pages-users.toml"
    users.write_text(users_toml(PASSWORDS), encoding="utf-8")
    holder = _Holder()
    with contextlib.ExitStack() as stack:
        thread = ServerThread(holder)
        front = (
            f"\n[server]\npublic_url = {json.dumps(thread.url)}\n"
            f"\n[front_door]\nusers_file = {json.dumps(str(users))}\n"
        )
        config = server_config(
            folder,
            clients=dtr_clients(),
            policies=store or POLICIES / "default",
            # Clients poll every second: a browser test waits for the token, not the clock.
            extra=dtr_config_text(folder, deferral={"interval_seconds": 1}) + front + extra,
        )
        settings = load_settings(config)
        holder.app = create_app(settings)
        stack.enter_context(thread)
        http = stack.enter_context(httpx.Client(base_url=thread.url, timeout=10))
        oauth = OAuthServer(thread, http, config, settings.store_path("default"))
        yield DTRServer(oauth, settings, folder)


@contextlib.contextmanager
def signed_in(server: DTRServer, who: str, next_path: str = "/approvals") -> Iterator[httpx.Client]:
    """A cookie-keeping client (redirects not followed) in which `who` has signed in with
    the password form of `/sign-in?next=...`, and was sent on to `next_path`."""
    with httpx.Client(base_url=server.oauth.url, timeout=30, follow_redirects=False) as browser:
        page = browser.get("/sign-in", params={"next": next_path})
        assert page.status_code == 200, page.text
        answer = browser.post(
            "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": who,
                "password": PASSWORDS[who],
                "next": next_path,
            },
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == next_path
        yield browser


def export_evaluation(who: str, record: str, client_id: str = "demo-web") -> dict[str, Any]:
    """The AuthZEN evaluation of `client_id` exporting customer `record` for user `who`."""
    return {
        "subject": {"type": "user", "id": who},
        "action": {"name": "export"},
        "resource": {"type": "CustomerRecord", "id": record},
        "context": {"client_id": client_id},
    }


def denial_of(server: DTRServer, evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """The `denial` member of a submission: the requestable denial of `evaluation`."""
    answer = server.http.post("/access/v1/evaluation", json=evaluation).json()
    assert answer["decision"] is False, answer
    asked = answer["context"]["access_request"]
    return {"binding_token": asked["binding_token"], "expires_at": asked["expires_at"]}


def file_request(server: DTRServer, body: Mapping[str, Any]) -> dict[str, Any]:
    """ARAP's submission of `body`, as an anonymous requester; the new task."""
    created = server.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    task: dict[str, Any] = created.json()["task"]
    return task


def file_export(
    server: DTRServer,
    who: str,
    records: Sequence[str],
    *,
    client_id: str = "demo-web",
    **access: Any,
) -> dict[str, Any]:
    """An access request for user `who` to export `records` through `client_id` (one
    record: a single request; more: a bundle), each with the words of the RAR profile;
    `access` is its `requested_access` (justification, requested_until, emergency)."""
    evaluations = [export_evaluation(who, record, client_id) for record in records]
    items = [
        {
            "resource": evaluation["resource"],
            "action": evaluation["action"],
            "denial": denial_of(server, evaluation),
            "requested_access": {"description": f"Export customer record {record}"},
        }
        for evaluation, record in zip(evaluations, records, strict=True)
    ]
    body: dict[str, Any] = {
        "subject": evaluations[0]["subject"],
        "context": {"client_id": client_id},
    }
    if len(items) == 1:
        body.update(items[0])
        body["requested_access"] = {**body["requested_access"], **access}
    else:
        body["items"] = items
        if access:
            body["requested_access"] = access
    return file_request(server, body)


def csrf_of(browser: httpx.Client) -> str:
    """The CSRF token of the session `browser` is signed in with (every page carries it)."""
    page = browser.get("/approvals")
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


def post_page(browser: httpx.Client, path: str, **fields: str | None) -> httpx.Response:
    """POST a page's form with the session's CSRF token (`csrf_token=None` leaves it out,
    any other value replaces it); fields given as None are left out."""
    form = {"csrf_token": csrf_of(browser), **fields}
    return browser.post(path, data={k: v for k, v in form.items() if v is not None})


def decide_on_page(
    browser: httpx.Client, task_id: str, decision: str | None = "approve", **fields: str | None
) -> httpx.Response:
    return post_page(browser, f"/approvals/{task_id}/decision", decision=decision, **fields)


def assert_error_page(response: httpx.Response, status: int, words: str | None = None) -> str:
    """An error page: HTML with the status and, when given, `words` in its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert message is not None, response.text
    if words is not None:
        assert words in html.unescape(message.group(1)), message.group(1)
    return html.unescape(message.group(1))


def task_state(server: DTRServer, task_id: str) -> dict[str, Any]:
    """The access request as its (anonymous) requester reads it over ARAP."""
    response = server.http.get(f"{REQUESTS}/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def linked_requests(page: str, list_id: str = "requests") -> list[str]:
    """The access request ids a list page links to, in its order, from the list `list_id`."""
    found = re.search(rf'<ul class="asked" id="{list_id}">(.*?)</ul>', page, re.S)
    if found is None:
        return []
    return re.findall(r'href="/approvals/(arq_[^"?]+)"', found.group(1))


def approval_ids(page: str) -> list[str]:
    """The approvals a page offers to revoke, in its order."""
    return re.findall(r'action="/approvals/granted/([^"/]+)/revoke"', page)
