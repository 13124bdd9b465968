"""Request forms and the ARAP Catalog profile, the bridge as PDP and access request service,
over real HTTP. The demo's `manager` template names a request form (`forms/export.json`)
whose cost centre and project come from catalogs (`catalogs/cost-centers.json`, and
`catalogs/projects.json` narrowed by the cost centre): its denials point at the form and
the Catalogs Document; the catalogs answer searches, scopes and pages; a submission is
requestable only with what the form requires and values the catalogs hold; approvers see
the form in words, on the API and the pages, and nobody approves once a value was retired;
the token endpoint, which cannot fill a form, files nothing."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.approval_templates import templates_problems
from tests.arap_profile_fixtures import (
    APPROVALS,
    REQUESTS,
    Bridge,
    bridge,
    demo_store,
    export,
    is_problem,
)
from tests.dtr_fixtures import auth_for, export_details
from tests.front_door.helpers import PASSWORDS, hidden, users_toml
from tests.oauth_fixtures import exchange_form, idp_token

FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "business_justification": {
            "type": "string",
            "title": "Why the export is needed",
            "minLength": 5,
        },
        "cost_center": {"type": "string", "title": "Cost centre"},
        "project": {"type": "string", "title": "Project"},
        "requested_until": {"type": "string", "format": "date-time"},
    },
    "required": ["business_justification", "cost_center", "project"],
}
COST_CENTERS = {
    "items": [
        {"value": "cc-100", "label": "Sales EMEA", "risk_level": "low", "owner": "manager-1"},
        {"value": "cc-200", "label": "Sales APAC", "description": "Asia and Pacific"},
        {"value": "cc-900", "label": "Old sales", "retired": True},
    ]
}
PROJECTS = {
    "items": [
        {"value": "p-1", "label": "Renewals 2026", "scope": {"cost_center": "cc-100"}},
        {"value": "p-2", "label": "Churn study", "scope": {"cost_center": "cc-100"}},
        {"value": "p-3", "label": "New markets", "scope": {"cost_center": "cc-200"}},
    ]
}
TEMPLATES = """
[templates.manager]
description = "A manager approves every export of a customer record."
request_schema = "export.json"

[templates.manager.catalog_fields."/cost_center"]
catalog = "cost-centers"

[templates.manager.catalog_fields."/project"]
catalog = "projects"
scope_params = { cost_center = "/cost_center" }

[templates.finance]
description = "The finance team approves payments above 1,000.00 EUR."
"""
FILLED = {"cost_center": "cc-100", "project": "p-1"}
WHY = {"business_justification": "renewal review for the key account"}


def write_forms(store: Path) -> None:
    (store / "approvals.toml").write_text(TEMPLATES, encoding="utf-8")
    (store / "forms").mkdir()
    (store / "forms" / "export.json").write_text(json.dumps(FORM), encoding="utf-8")
    (store / "catalogs").mkdir()
    for name, data in (("cost-centers", COST_CENTERS), ("projects", PROJECTS)):
        (store / "catalogs" / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridge]:
    folder = tmp_path_factory.mktemp("catalog")
    store = demo_store(folder)
    write_forms(store)
    users = folder / "users.toml"
    users.write_text(users_toml(PASSWORDS), encoding="utf-8")
    extra = f"\n[front_door]\nusers_file = {json.dumps(str(users))}\n"
    async with bridge(folder, store=store, extra=extra) as running:
        yield running


def store_of(running: Bridge) -> Path:
    return running.settings.store_path("default")


async def filed(running: Bridge, record: str, who: str = "alice", **access: Any) -> httpx.Response:
    """A submission of `who`'s export of `record`: `WHY` in the context, `access` (the
    rest of the form) in `requested_access`."""
    body = {
        **export(record, who),
        "denial": await running.denial(export(record, who)),
        "requested_access": access,
    }
    body["context"] = {**body["context"], **WHY}
    return await running.http.post(REQUESTS, json=body)


async def test_the_denial_points_at_the_form_and_its_catalogs(running: Bridge) -> None:
    access = (await running.evaluate(export("cust-0001")))["context"]["access_request"]
    form_url = f"{running.url}/access/v1/forms/default/manager"
    assert access["request_schema_url"] == form_url
    assert access["request_catalogs_url"] == form_url + "/catalogs"
    schema = await running.http.get(form_url)
    assert schema.status_code == 200, schema.text
    assert schema.headers["content-type"].startswith("application/schema+json")
    assert schema.json() == FORM
    document = (await running.http.get(form_url + "/catalogs")).json()
    assert document == {
        "fields": {
            "/cost_center": {
                "endpoint": f"{running.url}/access/v1/catalogs/default/cost-centers",
                "search_param": "q",
            },
            "/project": {
                "endpoint": f"{running.url}/access/v1/catalogs/default/projects",
                "search_param": "q",
                "scope_params": {"cost_center": "/cost_center"},
            },
        }
    }
    # A template without a form: its denials name none, and there is none to read.
    payment = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "initiate"},
        "resource": {
            "type": "Payment",
            "id": "pay-1",
            "properties": {"amount_minor": 500000, "currency": "EUR"},
        },
        "context": {"client_id": "demo-web"},
    }
    other = (await running.evaluate(payment))["context"]["access_request"]
    assert "request_schema_url" not in other and "request_catalogs_url" not in other
    is_problem(await running.http.get("/access/v1/forms/default/finance"), 404, "unknown_task")
    is_problem(await running.http.get("/access/v1/forms/nowhere/manager"), 404)


async def test_a_catalog_searches_scopes_and_pages(running: Bridge) -> None:
    url = "/access/v1/catalogs/default"
    every = (await running.http.get(f"{url}/cost-centers")).json()
    assert [i["value"] for i in every["items"]] == ["cc-100", "cc-200"]  # none retired
    assert every["total"] == 2 and "next_cursor" not in every
    assert every["items"][0] == {
        "value": "cc-100",
        "label": "Sales EMEA",
        "risk_level": "low",
        "owner": "manager-1",
    }
    found = (await running.http.get(f"{url}/cost-centers", params={"q": "asia"})).json()
    assert [i["value"] for i in found["items"]] == ["cc-200"]  # the description matched
    scoped = (await running.http.get(f"{url}/projects", params={"cost_center": "cc-100"})).json()
    assert [i["value"] for i in scoped["items"]] == ["p-1", "p-2"]
    first = (
        await running.http.get(f"{url}/projects", params={"cost_center": "cc-100", "limit": "1"})
    ).json()
    assert [i["value"] for i in first["items"]] == ["p-1"] and first["total"] == 2
    rest = (
        await running.http.get(
            f"{url}/projects",
            params={"cost_center": "cc-100", "limit": "1", "cursor": first["next_cursor"]},
        )
    ).json()
    assert [i["value"] for i in rest["items"]] == ["p-2"] and "next_cursor" not in rest
    ignored = await running.http.get(f"{url}/projects", params={"color": "blue"})
    assert ignored.json()["total"] == 3  # an unknown parameter is ignored
    is_problem(await running.http.get(f"{url}/projects", params={"cursor": "%%%"}), 400)
    is_problem(await running.http.get(f"{url}/projects", params={"limit": "0"}), 400)
    is_problem(await running.http.get(f"{url}/entities"), 404)  # not a catalog of a form
    assert (await running.http.get(f"{url}/projects")).headers["cache-control"] == "no-store"


async def test_a_submission_is_requestable_only_with_the_form(running: Bridge) -> None:
    empty = is_problem(await filed(running, "cust-0002", "bob"), 400, "not_requestable")
    assert "request_schema_url" in empty["detail"]
    assert "/cost_center is required" in empty["detail"]
    for access, words in (
        ({"cost_center": "cc-999", "project": "p-1"}, '/cost_center: "cc-999" is not in'),
        ({"cost_center": "cc-900", "project": "p-1"}, "is retired"),
        ({"cost_center": "cc-200", "project": "p-1"}, '/project: "p-1" is not in'),
        ({"cost_center": "cc-100", "project": 7}, "/project must be of type"),
    ):
        detail = is_problem(await filed(running, "cust-0002", "bob", **access), 400)["detail"]
        assert words in detail, detail
    # A denial the form turned away is not spent: filled in, it is filed.
    created = await filed(running, "cust-0002", "bob", **FILLED)
    assert created.status_code == 202, created.text


@contextlib.asynccontextmanager
async def signed_in(running: Bridge, who: str) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client in which `who` signed in with the password form."""
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as browser:
        page = await browser.get("/sign-in", params={"next": "/approvals"})
        answer = await browser.post(
            "/sign-in",
            data={
                "csrf_token": hidden(page.text, "csrf_token"),
                "username": who,
                "password": PASSWORDS[who],
                "next": "/approvals",
            },
        )
        assert answer.status_code == 303, answer.text
        yield browser


def form_lines(page: str, n: int = 0) -> list[tuple[str, str]]:
    found = re.search(rf'<dl class="form" id="form-{n}">(.*?)</dl>', page, re.S)
    assert found is not None, page
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", found.group(1))
    return [(html.unescape(a), html.unescape(b)) for a, b in pairs]


async def test_approvers_read_the_form_and_it_is_checked_again(running: Bridge) -> None:
    source = {"session_id": "chat-7", "integration_id": "crm"}
    body = {
        **export("cust-0003", "carol"),
        "denial": await running.denial(export("cust-0003", "carol")),
        "requested_access": FILLED,
        "client": {"id": "demo-web", "source": source},
    }
    body["context"] = {**body["context"], **WHY}
    created = await running.http.post(REQUESTS, json=body)
    assert created.status_code == 202, created.text
    task_id = created.json()["task"]["id"]
    shown = await running.http.get(f"{APPROVALS}/{task_id}", headers=running.approver("manager-1"))
    assert shown.json()["access_request"]["items"][0]["form"] == {
        "template": "manager",
        "fields": [
            {
                "name": "business_justification",
                "title": "Why the export is needed",
                "value": WHY["business_justification"],
            },
            {
                "name": "cost_center",
                "title": "Cost centre",
                "value": "cc-100",
                "label": "Sales EMEA",
            },
            {"name": "project", "title": "Project", "value": "p-1", "label": "Renewals 2026"},
        ],
        "problems": [],
    }
    async with signed_in(running, "manager-1") as manager:
        page = (await manager.get(f"/approvals/{task_id}")).text
        assert form_lines(page) == [
            ("Why the export is needed", WHY["business_justification"]),
            ("Cost centre", "Sales EMEA (cc-100)"),
            ("Project", "Renewals 2026 (p-1)"),
        ]
        assert 'class="source">chat-7<' in page and 'class="source">crm<' in page
        assert 'id="form-problems-0"' not in page

        # The project is retired while the request waits: nobody approves it any more.
        retired = {"items": [{**PROJECTS["items"][0], "retired": True}, *PROJECTS["items"][1:]]}
        path = store_of(running) / "catalogs" / "projects.json"
        path.write_text(json.dumps(retired) + "\n", encoding="utf-8")
        seen = await running.http.get(
            f"{APPROVALS}/{task_id}", headers=running.approver("manager-1")
        )
        [problem] = seen.json()["access_request"]["items"][0]["form"]["problems"]
        assert "/project" in problem and "retired" in problem
        refused = await running.http.post(
            f"{APPROVALS}/{task_id}",
            json={"decision": "approve"},
            headers=running.approver("manager-1"),
        )
        is_problem(refused, 409, "invalid_task_state")
        page = (await manager.get(f"/approvals/{task_id}")).text
        assert 'id="form-problems-0"' in page
        tried = await manager.post(
            f"/approvals/{task_id}/decision",
            data={"csrf_token": hidden(page, "csrf_token"), "decision": "approve"},
        )
        assert tried.status_code == 409 and "no longer holds" in html.unescape(tried.text)
        assert (await running.task(task_id))["task"]["status"] == "pending"
        denied = await manager.post(
            f"/approvals/{task_id}/decision",
            data={"csrf_token": hidden(page, "csrf_token"), "decision": "deny"},
        )
        assert denied.status_code == 303, denied.text
        assert (await running.task(task_id))["task"]["status"] == "denied"
        path.write_text(json.dumps(PROJECTS), encoding="utf-8")


async def test_the_token_endpoint_files_nothing_it_cannot_fill(running: Bridge) -> None:
    who = "form-less@example.com"
    form = exchange_form(export_details("cust-0004"), subject_token=idp_token(who))
    headers, extra = auth_for("demo-agent")
    answer = await running.http.post(
        "/token", data={**form, **extra, "completion_mode": "deferred"}, headers=headers
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_authorization_details", body
    assert "completion_mode=deferred" not in body.get("error_description", "")
    inbox = await running.http.get(APPROVALS, headers=running.approver("manager-1"))
    assert not [r for r in inbox.json()["access_requests"] if r["subject"]["id"] == who]


def test_bridge_check_names_what_is_wrong_with_a_form(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    write_forms(store)
    assert templates_problems([store]) == []
    (store / "forms" / "export.json").write_text('{"type": "string"}', encoding="utf-8")
    (store / "catalogs" / "projects.json").unlink()
    problems = [(Path(p.file).name, p.message) for p in templates_problems([store])]
    assert ("export.json", 'a request form has "type": "object"') in problems
    assert ("projects.json", "no such file") in problems
    (store / "approvals.toml").write_text(
        '[templates.x.catalog_fields."/a"]\ncatalog = "c"\n', encoding="utf-8"
    )
    [problem] = templates_problems([store])
    assert "catalog_fields need a request_schema" in problem.message
