"""The real bridge with approver notifications configured, for tests/notifications/ (this
module holds no tests).

A policy store of its own (Cedar policies, entities and `approvals.toml`):

- `export` of a `Record` needs template `manager` (one step); managers `maria` and `mark`
  may approve it, the clerk `bob` may not, and nobody approves a request made for them;
- `share` of a `Record` needs template `two-step`: a manager, then the data-protection
  officer `dora`;
- `delete` of a `Record` needs template `urgent`, which policy approves at once for an
  emergency; a manager reviews it.

Requests are filed as a PEP files them (`/access/v1/evaluation`, then `/access/v1/requests`
with the denial, anonymously: `allow_anonymous_requesters`); approvers decide through the
approver API with tokens of the demo approver issuer. The bridge runs in a thread
(`tests.conftest.ServerThread`) or as `bridge serve` processes; either way its state is a
database the tests read from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bridge.app import create_app
from bridge.demo_approvers import mint
from bridge.settings import Settings, load_settings
from bridge.store.backends import store_for
from tests.conftest import ServerThread

PUBLIC_URL = "https://bridge.test"
CLIENT = "report-agent"

POLICIES = """
@id("export-records")
permit (principal is user, action == Action::"export", resource is Record);

@id("exports-need-a-manager")
@approval("manager")
forbid (principal, action == Action::"export", resource is Record)
unless { context has approval && context.approval.template == "manager" };

@id("share-records")
permit (principal is user, action == Action::"share", resource is Record);

@id("shares-need-two-steps")
@approval("two-step")
forbid (principal, action == Action::"share", resource is Record)
unless { context has approval && context.approval.template == "two-step" };

@id("delete-records")
permit (principal is user, action == Action::"delete", resource is Record);

@id("deletes-need-a-manager-or-an-emergency")
@approval("urgent")
forbid (principal, action == Action::"delete", resource is Record)
unless { context has approval && context.approval.template == "urgent" };

@id("emergencies-approved-at-once")
permit (principal is user, action == Action::"approve_emergency", resource is AccessRequest)
when { resource.template == "urgent" };

@id("managers-approve")
permit (principal is user, action == Action::"approve", resource is AccessRequest)
when { principal has role && principal.role == "manager" && resource.step != "data-protection" };

@id("dpo-approves-data-protection")
permit (principal is user, action == Action::"approve", resource is AccessRequest)
when { principal has role && principal.role == "dpo" && resource.step == "data-protection" };

@id("no-self-approval")
forbid (principal, action == Action::"approve", resource is AccessRequest)
when { resource.subject_id == context.approver_id };
"""

ENTITIES = [
    {"uid": {"type": "user", "id": "maria"}, "attrs": {"role": "manager"}, "parents": []},
    {"uid": {"type": "user", "id": "mark"}, "attrs": {"role": "manager"}, "parents": []},
    {"uid": {"type": "user", "id": "dora"}, "attrs": {"role": "dpo"}, "parents": []},
    {"uid": {"type": "user", "id": "bob"}, "attrs": {"role": "clerk"}, "parents": []},
]

TEMPLATES = """
[templates.manager]
description = "A manager approves every export of a record."

[templates.two-step]
description = "A shared record needs a manager and then data protection."

[[templates.two-step.steps]]
name = "manager"

[[templates.two-step.steps]]
name = "data-protection"

[templates.urgent]
description = "Deleting a record: in an emergency at once, reviewed by a manager."
emergency_approval_seconds = 900
"""


def address(person: str) -> str:
    return f"{person}@example.test"


def people_toml(*names: str, webhooks: dict[str, str] | None = None) -> str:
    """`[notifications.people.<name>]` tables: each reached at `address(name)`, and at their
    own webhook when `webhooks` names one."""
    out = []
    for name in names:
        out += [f"[notifications.people.{name}]", f'email = "{address(name)}"']
        if webhooks and name in webhooks:
            out.append(f'webhook = "{webhooks[name]}"')
        out.append("")
    return "\n".join(out)


def smtp_toml(port: int) -> str:
    return (
        "[notifications.smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'security = "none"\n'
        'from_address = "Access requests <bridge@bridge.test>"\n'
        "timeout_seconds = 5\n\n"
    )


def write_config(folder: Path, notifications: str = "", *, storage: str | None = None) -> Path:
    """`folder/bridge.toml`: the store above, the demo approver issuer, the state under
    `folder` (SQLite unless `storage` gives the `[storage]` table's lines), and the
    `[notifications]` TOML given."""
    store = folder / "store"
    store.mkdir(parents=True, exist_ok=True)
    (store / "policies.cedar").write_text(POLICIES, encoding="utf-8")
    (store / "entities.json").write_text(json.dumps(ENTITIES), encoding="utf-8")
    (store / "approvals.toml").write_text(TEMPLATES, encoding="utf-8")
    storage = storage or f"path = {json.dumps(str(folder / 'bridge.sqlite3'))}"
    text = f"""
[server]
public_url = "{PUBLIC_URL}"
access_log = false

[reload]
enabled = false

[access_requests]
demo_approver_key_file = {json.dumps(str(folder / "demo-approvers.jwk"))}
allow_anonymous_requesters = true

[oauth]
key_encryption_key_file = {json.dumps(str(folder / "keys" / "signing.kek"))}
clients_file = {json.dumps(str(folder / "clients.toml"))}
profiles_dir = {json.dumps(str(folder / "profiles"))}

[stores.default]
path = {json.dumps(str(store))}

[storage]
{storage}

{notifications}
"""
    config = folder / "bridge.toml"
    config.write_text(text, encoding="utf-8")
    return config


def unique_record() -> str:
    return "r-" + uuid.uuid4().hex[:10]


def wait_for(what: str, condition: Callable[[], Any], seconds: float = 20.0) -> Any:
    """`condition()` once it is truthy; fails after `seconds` saying `what` never came."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    payload: bytes
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Message:
    """An `approver_message` row, as its dedupe key names it."""

    reason: str
    step: int
    recipient: str
    channel: str
    status: str
    attempts: int
    last_error: str | None


@dataclass
class Bridge:
    """A running bridge: its settings, an HTTP client bound to it, its database."""

    settings: Settings
    http: httpx.Client

    # -- filing and deciding ---------------------------------------------------------

    def file(
        self,
        record: str,
        *,
        action: str = "export",
        user: str = "alice",
        justification: str | None = None,
        emergency: bool = False,
    ) -> str:
        """File an access request for `user` to `action` the record; its task id."""
        request = {
            "subject": {"type": "user", "id": user},
            "action": {"name": action},
            "resource": {"type": "Record", "id": record},
            "context": {"client_id": CLIENT},
        }
        denied = self.http.post("/access/v1/evaluation", json=request)
        assert denied.status_code == 200, denied.text
        context = denied.json()["context"]
        ar = context["access_request"]
        body: dict[str, Any] = {
            **request,
            "denial": {
                "evaluation_id": context["evaluation_id"],
                "expires_at": ar["expires_at"],
                "binding_token": ar["binding_token"],
            },
        }
        access: dict[str, Any] = {"justification": justification} if justification else {}
        if emergency:
            access["emergency"] = True
        if access:
            body["requested_access"] = access
        created = self.http.post("/access/v1/requests", json=body)
        assert created.status_code == 202, created.text
        task_id: str = created.json()["task"]["id"]
        return task_id

    def approve(self, approver: str, task_id: str) -> dict[str, Any]:
        token = mint(self.settings, approver, 10)
        response = self.http.post(
            f"/access/v1/approvals/{task_id}",
            json={"decision": "approve"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()["access_request"]
        return view

    # -- the database, from outside --------------------------------------------------

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """A query on the bridge's database (`?` placeholders), through a connection of the
        test's own."""
        url = self.settings.storage.url
        if url is not None:
            with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
                return conn.execute(query.replace("?", "%s"), args).fetchall()
        path = self.settings.resolve(self.settings.storage.path)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute(query, args).fetchall()

    def settled(self) -> None:
        """Wait until the outbox holds nothing pending: every fan-out and message done (or
        given up)."""
        wait_for(
            "the outbox to settle",
            lambda: not self.rows("SELECT id FROM outbox WHERE status = 'pending'"),
        )

    def outbox(self, kind: str) -> list[OutboxRow]:
        found = self.rows(
            "SELECT id, kind, payload, status, attempts, last_error FROM outbox WHERE kind = ? "
            "ORDER BY id",
            kind,
        )
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in found]

    def messages_about(self, task_id: str) -> list[Message]:
        """The `approver_message` rows queued about `task_id` (read from their dedupe keys:
        a delivered row keeps no payload)."""
        found = self.rows(
            "SELECT dedupe_key, status, attempts, last_error FROM outbox "
            "WHERE kind = 'approver_message' ORDER BY id"
        )
        out = []
        for key, status, attempts, error in found:
            _, task, reason, step, _item, recipient, channel = json.loads(key)
            if task == task_id:
                out.append(Message(reason, step, recipient, channel, status, attempts, error))
        return out

    def notified(self, task_id: str) -> list[tuple[str, str]]:
        """(recipient, channel) of the audit trail's `notified` entries about `task_id`."""
        found = self.rows(
            "SELECT data FROM audit_log WHERE task_id = ? AND event = 'notified' ORDER BY seq",
            task_id,
        )
        return [(json.loads(d)["recipient"], json.loads(d)["channel"]) for (d,) in found]

    def enqueue(self, kind: str, *payloads: bytes) -> None:
        """Queue outbox rows as the service would (a notice the test delivers again)."""

        async def work() -> None:
            store = store_for(self.settings)
            await store.open()
            try:
                for payload in payloads:
                    await store.enqueue(kind, payload, time.time())
            finally:
                await store.close()

        asyncio.run(work())


@contextlib.contextmanager
def running(config: Path) -> Iterator[Bridge]:
    """The bridge configured by `config`, in a thread of this process."""
    settings = load_settings(config)
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield Bridge(load_settings(config), http)
