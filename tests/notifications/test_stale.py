"""Notices that come late, and escalations: the real bridge (in a thread, SQLite) fans out
`approval_needed` rows it finds in its outbox, as the access request service wrote them.

The late notice is made as a crash makes one: the bridge files and decides a request while
nobody is configured to be told (its notice is handled and tells nobody), and after a
restart with notifications configured, the same notice is delivered again."""

from __future__ import annotations

from pathlib import Path

import jwt

from bridge.access_requests.notices import APPROVAL_NEEDED, DECIDE, ESCALATION, ApprovalNeeded
from tests.notifications.harness import (
    Bridge,
    address,
    people_toml,
    running,
    smtp_toml,
    unique_record,
    wait_for,
    write_config,
)
from tests.support.smtp import SmtpServer
from tests.support.web import LocalWebServer, WebResponse

pytest_plugins = ["tests.support.plugin"]


def fanned_out(bridge: Bridge) -> None:
    wait_for(
        "every notice to be fanned out",
        lambda: {r.status for r in bridge.outbox(APPROVAL_NEEDED)} == {"done"},
    )


def notifications(smtp: SmtpServer, hook: str) -> str:
    return (
        smtp_toml(smtp.port)
        + people_toml("maria", "mark", "bob")
        + f'[notifications.webhooks.ops]\nurl = "{hook}"\nallow_private_network = true\n\n'
        + "[notifications.templates.manager]\n"
        + 'people = ["maria", "mark"]\nwebhooks = ["ops"]\n'
        + 'escalation_people = ["bob"]\nescalation_webhooks = ["ops"]\n'
    )


def test_a_notice_delivered_after_its_request_was_decided_tells_nobody(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    record = unique_record()
    with running(write_config(tmp_path)) as bridge:  # nobody to tell yet
        task = bridge.file(record)
        fanned_out(bridge)
        assert bridge.approve("maria", task)["status"] == "approved"

    with LocalWebServer({"/ops": lambda request: WebResponse(b"", 204)}) as web:
        config = write_config(tmp_path, notifications(smtp, f"{web.url}/ops"))
        with running(config) as bridge:
            late = ApprovalNeeded(task, DECIDE, "manager", 0, 0)
            bridge.enqueue(APPROVAL_NEEDED, late.payload())
            bridge.enqueue(APPROVAL_NEEDED, late.payload())
            # The same configuration tells the approvers of a request still waiting.
            waiting_record = unique_record()
            waiting = bridge.file(waiting_record)
            smtp.wait_for_message(lambda m: waiting_record in m.subject, to=address("mark"))
            web.wait_for_request("/ops")
            fanned_out(bridge)
            late_messages = bridge.messages_about(task)
            waiting_messages = {(m.recipient, m.channel) for m in bridge.messages_about(waiting)}

    assert late_messages == []
    assert [m for m in smtp.messages if record in m.subject] == []
    assert len(web.requests) == 1  # the waiting request's
    assert waiting_messages == {
        ("person:maria", "email"),
        ("person:mark", "email"),
        ("webhook:ops", "webhook:ops"),
    }


def test_an_escalation_tells_the_escalation_recipients_without_asking_policy(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    with LocalWebServer({"/ops": lambda request: WebResponse(b"", 204)}) as web:
        config = write_config(tmp_path, notifications(smtp, f"{web.url}/ops"))
        with running(config) as bridge:
            waiting_record, decided_record = unique_record(), unique_record()
            waiting = bridge.file(waiting_record)
            decided = bridge.file(decided_record)
            bridge.approve("mark", decided)
            bridge.settled()
            told_before = len(web.requests)
            for task in (waiting, decided):
                notice = ApprovalNeeded(task, ESCALATION, "manager", 0, 0)
                bridge.enqueue(APPROVAL_NEEDED, notice.payload())
            mail = smtp.wait_for_message(lambda m: waiting_record in m.subject, to=address("bob"))
            bridge.settled()
            escalations = [
                (m.recipient, m.channel)
                for task in (waiting, decided)
                for m in bridge.messages_about(task)
                if m.reason == ESCALATION
            ]
        posted = [
            jwt.decode(r.body, options={"verify_signature": False})["notice"]
            for r in web.requests[told_before:]
        ]

    # bob may not approve (policy says clerks do not), but escalations go to him as named.
    assert mail.subject.strip() == (
        f"Still waiting for approval: export Record {waiting_record} for user alice"
    )
    assert "has waited longer than its step allows" in mail.text
    assert sorted(escalations) == [("person:bob", "email"), ("webhook:ops", "webhook:ops")]
    assert [(n["task_id"], n["reason"]) for n in posted] == [(waiting, "escalation")]
    assert [m for m in smtp.messages if decided_record in m.subject and "Still" in m.subject] == []
