"""Approver e-mail end to end: the real bridge (in a thread, SQLite) files an access request,
its outbox fans the notice out, and the message reaches a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller

from tests.conftest import free_port
from tests.notifications.harness import (
    PUBLIC_URL,
    address,
    people_toml,
    running,
    smtp_toml,
    unique_record,
    wait_for,
    write_config,
)
from tests.support.smtp import ReceivedMessage, SmtpServer, smtp_server

pytest_plugins = ["tests.support.plugin"]


def received(smtp: SmtpServer, record: str) -> list[ReceivedMessage]:
    return [m for m in smtp.messages if record in m.subject]


def subject(mail: ReceivedMessage) -> str:
    """The subject as a mail client shows it: a long one is folded onto the line after
    `Subject:`, and the parser keeps that fold's leading space."""
    return mail.subject.strip()


def test_the_approvers_policy_allows_get_an_email_with_the_link(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    notifications = (
        smtp_toml(smtp.port)
        + people_toml("maria", "bob")
        + '[notifications.templates.manager]\npeople = ["maria", "bob"]\n'
    )
    with running(write_config(tmp_path, notifications)) as bridge:
        record = unique_record()
        task = bridge.file(record, justification="Quarterly audit for the regulator")
        mail = smtp.wait_for_message(lambda m: record in m.subject, to=address("maria"))
        bridge.settled()
        queued = bridge.messages_about(task)
        notified = bridge.notified(task)

    assert subject(mail) == f"Approval needed: export Record {record} for user alice"
    assert mail.rcpt_tos == (address("maria"),)
    assert mail.mail_from == "bridge@bridge.test"
    assert mail.message["From"] == "Access requests <bridge@bridge.test>"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    text = mail.text
    assert f"{PUBLIC_URL}/approvals/{task}" in text
    assert "For: user alice" in text
    assert "Through: report-agent" in text
    assert "Why: A manager approves every export of a record." in text
    assert "Step: 1 of 1 (approve)" in text
    assert "Justification: Quarterly audit for the regulator" in text
    assert "Open until: " in text
    # bob is named for the template, but policy does not let a clerk approve: not told.
    assert [(m.recipient, m.channel, m.status) for m in queued] == [
        ("person:maria", "email", "done")
    ]
    assert [m.rcpt_tos for m in received(smtp, record)] == [(address("maria"),)]
    assert notified == [("person:maria", "email")]


def test_other_templates_use_the_fallback_and_each_step_is_told(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    notifications = (
        smtp_toml(smtp.port)
        + people_toml("mark", "dora")
        + '[notifications.templates."*"]\npeople = ["mark", "dora"]\n'
    )
    with running(write_config(tmp_path, notifications)) as bridge:
        record = unique_record()
        task = bridge.file(record, action="share")
        first = smtp.wait_for_message(lambda m: record in m.subject, to=address("mark"))
        bridge.settled()
        bridge.approve("mark", task)
        second = smtp.wait_for_message(lambda m: record in m.subject, to=address("dora"))
        bridge.settled()
        queued = [(m.step, m.recipient) for m in bridge.messages_about(task)]

    assert subject(first) == f"Approval needed: share Record {record} for user alice (step 1 of 2)"
    assert "Step: 1 of 2 (manager)" in first.text
    assert subject(second) == f"Approval needed: share Record {record} for user alice (step 2 of 2)"
    assert "Step: 2 of 2 (data-protection)" in second.text
    # Step 1 is the manager's (not the data-protection officer's), step 2 dora's alone.
    assert queued == [(0, "person:mark"), (1, "person:dora")]
    assert len(received(smtp, record)) == 2


def test_an_emergency_approved_at_once_asks_the_approvers_for_a_review(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    notifications = (
        smtp_toml(smtp.port)
        + people_toml("maria", "bob")
        + '[notifications.templates.urgent]\npeople = ["maria", "bob"]\n'
    )
    with running(write_config(tmp_path, notifications)) as bridge:
        record = unique_record()
        task = bridge.file(record, action="delete", emergency=True)
        mail = smtp.wait_for_message(lambda m: record in m.subject, to=address("maria"))
        bridge.settled()
        queued = [(m.reason, m.recipient) for m in bridge.messages_about(task)]

    assert subject(mail) == f"Review emergency access: delete Record {record} for user alice"
    assert "Emergency access was granted at once by policy and waits for a review." in mail.text
    assert "Emergency: yes" in mail.text
    assert f"Review it on the request's page:\n{PUBLIC_URL}/approvals/{task}" in mail.text
    assert queued == [("emergency_review", "person:maria")]


def test_a_request_nobody_is_configured_for_sends_nothing(tmp_path: Path, smtp: SmtpServer) -> None:
    notifications = (
        smtp_toml(smtp.port)
        + people_toml("maria")
        + '[notifications.templates.manager]\npeople = ["maria"]\n'
    )
    with running(write_config(tmp_path, notifications)) as bridge:
        unrouted, routed = unique_record(), unique_record()
        quiet = bridge.file(unrouted, action="share")  # template two-step: nobody named
        told = bridge.file(routed)
        smtp.wait_for_message(lambda m: routed in m.subject, to=address("maria"))
        bridge.settled()
        fan_outs = {row.status for row in bridge.outbox("approval_needed")}
        assert bridge.messages_about(quiet) == []
        assert len(bridge.messages_about(told)) == 1

    assert fan_outs == {"done"}
    assert received(smtp, unrouted) == []


def test_a_mail_server_down_at_first_gets_the_message_once_it_is_up(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    notifications = (
        smtp_toml(port)
        + people_toml("maria")
        + '[notifications.templates.manager]\npeople = ["maria"]\n'
    )
    with running(write_config(tmp_path, notifications)) as bridge:
        record = unique_record()
        task = bridge.file(record)
        failed = wait_for(
            "a failed attempt",
            lambda: [m for m in bridge.messages_about(task) if m.attempts >= 1 and m.last_error],
        )
        assert failed[0].status == "pending"
        assert "unreachable" in (failed[0].last_error or "")

        server = SmtpServer("127.0.0.1", port, None, None)
        controller = Controller(server, hostname="127.0.0.1", port=port, ready_timeout=10)
        controller.start()
        try:
            mail = server.wait_for_message(to=address("maria"), timeout=30)
            wait_for(
                "the message to be done",
                lambda: [m.status for m in bridge.messages_about(task)] == ["done"],
                seconds=30,
            )
            notified = bridge.notified(task)
        finally:
            controller.stop()

    assert record in mail.subject
    assert len(server.messages) == 1
    assert notified == [("person:maria", "email")]


class RefusingRecipients:
    """An aiosmtpd handler for a server that knows no such mailbox."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        self.asked.append(address)
        return "550 5.1.1 No such mailbox"


def test_a_refused_recipient_is_given_up_and_not_recorded(tmp_path: Path) -> None:
    handler = RefusingRecipients()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        notifications = (
            smtp_toml(port)
            + people_toml("maria")
            + '[notifications.templates.manager]\npeople = ["maria"]\n'
        )
        with running(write_config(tmp_path, notifications)) as bridge:
            task = bridge.file(unique_record())
            ended = wait_for(
                "the message to end",
                lambda: [m for m in bridge.messages_about(task) if m.status != "pending"],
            )
            notified = bridge.notified(task)
    finally:
        controller.stop()

    assert [(m.status, m.attempts) for m in ended] == [("failed", 1)]
    assert ended[0].last_error == "recipient refused 550"
    assert handler.asked == [address("maria")]
    assert notified == []


def test_starttls_is_never_skipped_for_a_server_that_does_not_offer_it(tmp_path: Path) -> None:
    with smtp_server() as server:  # plain SMTP on loopback: no STARTTLS
        notifications = (
            smtp_toml(server.port).replace('security = "none"', 'security = "starttls"')
            + people_toml("maria")
            + '[notifications.templates.manager]\npeople = ["maria"]\n'
        )
        with running(write_config(tmp_path, notifications)) as bridge:
            task = bridge.file(unique_record())
            failed = wait_for(
                "a failed attempt",
                lambda: [m for m in bridge.messages_about(task) if m.last_error],
            )
        received_anything = server.messages

    assert failed[0].status == "pending"  # retried: an operator may fix the server
    assert failed[0].last_error == "SMTP failed: SMTP STARTTLS extension not supported by server."
    assert received_anything == []
