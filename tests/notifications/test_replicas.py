"""Once per approver and channel with two `bridge serve` processes on one PostgreSQL
database: each notice is also delivered again three more times (as a crash or an expired
lease would), so both replicas fan out the same notice at once, and still each message is
queued, sent and recorded once."""

from __future__ import annotations

import base64
import json
import shutil
from collections import Counter
from pathlib import Path

import httpx

from bridge.access_requests.notices import APPROVAL_NEEDED, DECIDE, ApprovalNeeded
from bridge.demo_approvers import demo_key
from bridge.jose.sealing import load_key_encryption_key
from bridge.settings import load_settings
from tests.conftest import bridge_process
from tests.notifications.harness import (
    Bridge,
    address,
    people_toml,
    smtp_toml,
    unique_record,
    wait_for,
    write_config,
)
from tests.support.postgres import PostgresDatabase
from tests.support.smtp import SmtpServer
from tests.support.web import LocalWebServer, WebResponse

pytest_plugins = ["tests.support.plugin"]

REQUESTS = 6
REDELIVERIES = 3


def test_two_replicas_send_each_message_once(
    tmp_path: Path, postgres_database: PostgresDatabase, smtp: SmtpServer
) -> None:
    with LocalWebServer({"/ops": lambda request: WebResponse(b"", 204)}) as web:
        notifications = (
            smtp_toml(smtp.port)
            + people_toml("maria", "mark")
            + f'[notifications.webhooks.ops]\nurl = "{web.url}/ops"\n'
            + "allow_private_network = true\n\n"
            + '[notifications.templates.manager]\npeople = ["maria", "mark"]\nwebhooks = ["ops"]\n'
        )
        storage = f"url = {json.dumps(postgres_database.url)}\npool_max_size = 4"
        config = write_config(tmp_path, notifications, storage=storage)
        settings = load_settings(config)
        # Provisioned before the replicas start, as an operator would.
        load_key_encryption_key(settings.resolve(settings.oauth.key_encryption_key_file))
        key_file = settings.access_requests.demo_approver_key_file
        assert key_file is not None
        demo_key(settings.resolve(key_file))
        copies = []
        for name in ("a", "b"):
            copies.append(tmp_path / f"{name}.toml")
            shutil.copyfile(config, copies[-1])

        with (
            bridge_process(copies[0]) as first,
            bridge_process(copies[1]) as second,
            httpx.Client(base_url=first.url, timeout=20) as http_a,  # type: ignore[attr-defined]
            httpx.Client(base_url=second.url, timeout=20) as http_b,  # type: ignore[attr-defined]
        ):
            replicas = [Bridge(settings, http_a), Bridge(settings, http_b)]
            records = [unique_record() for _ in range(REQUESTS)]
            tasks = [replicas[n % 2].file(record) for n, record in enumerate(records)]
            notices = [ApprovalNeeded(task, DECIDE, "manager", 0, 0).payload() for task in tasks]
            replicas[0].enqueue(APPROVAL_NEEDED, *(notices * REDELIVERIES))

            def settled() -> bool:
                pending = replicas[0].rows("SELECT id FROM outbox WHERE status != 'done'")
                fanned = replicas[0].outbox(APPROVAL_NEEDED)
                return not pending and len(fanned) == REQUESTS * (REDELIVERIES + 1)

            wait_for("every notice and message to be done", settled, seconds=60)
            queued = {task: replicas[0].messages_about(task) for task in tasks}
            notified = {task: replicas[0].notified(task) for task in tasks}
        posted = [json.loads(_claims(r.body))["notice"]["task_id"] for r in web.requests]

    expected = {("person:maria", "email"), ("person:mark", "email"), ("webhook:ops", "webhook:ops")}
    for task, record in zip(tasks, records, strict=True):
        assert sorted((m.recipient, m.channel) for m in queued[task]) == sorted(expected)
        mails = Counter(m.rcpt_tos for m in smtp.messages if record in m.subject)
        assert mails == {(address("maria"),): 1, (address("mark"),): 1}
    assert Counter(posted) == dict.fromkeys(tasks, 1)
    # Each message sent is recorded once in the audit trail, whichever replica sent it.
    for task in tasks:
        assert sorted(notified[task]) == sorted(expected)


def _claims(token: bytes) -> bytes:
    """A JWS's payload, unverified (the webhook tests check signatures)."""
    payload = token.split(b".")[1]
    return base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
