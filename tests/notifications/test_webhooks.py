"""Approver notices to webhooks end to end: the real bridge (in a thread) POSTs to a real
receiver on loopback, which checks the signature as any receiver would: with PyJWT (a JOSE
library other than the bridge's own) and the keys the bridge publishes at `/jwks`."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.notifications.harness import (
    PUBLIC_URL,
    Bridge,
    running,
    unique_record,
    wait_for,
    write_config,
)
from tests.support.web import LocalWebServer, WebRequest, WebResponse

pytest_plugins = ["tests.support.plugin"]

SIGNATURE_HEADER = "bridge-signature"  # as the receiver records it (lower case)


def answering(*statuses: int) -> Any:
    """A route answering `statuses` in turn, then 204 for ever."""
    script: Iterator[int] = iter(statuses)

    def route(request: WebRequest) -> WebResponse:
        return WebResponse(b"", status=next(script, 204))

    return route


def webhook_toml(name: str, url: str, fmt: str = "jws") -> str:
    return (
        f"[notifications.webhooks.{name}]\n"
        f'url = "{url}"\nformat = "{fmt}"\nallow_private_network = true\n\n'
    )


def verify(bridge: Bridge, token: str, audience: str) -> dict[str, Any]:
    """The claims of a JWS the bridge signed, checked with its published keys."""
    keys = jwt.PyJWKClient(str(bridge.http.base_url.join("/jwks")))
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=audience,
        issuer=PUBLIC_URL,
        options={"require": ["iss", "aud", "iat", "exp", "jti"]},
    )
    return claims


def with_claims(token: str, **changed: Any) -> str:
    """`token` with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed_payload = base64.urlsafe_b64encode(json.dumps({**claims, **changed}).encode())
    return f"{header}.{changed_payload.rstrip(b'=').decode()}.{signature}"


def test_a_jws_webhook_carries_a_notice_receivers_verify(tmp_path: Path) -> None:
    with LocalWebServer({"/ops": answering()}) as web:
        hook = f"{web.url}/ops"
        notifications = webhook_toml("ops", hook) + (
            '[notifications.templates.manager]\nwebhooks = ["ops"]\n'
        )
        with running(write_config(tmp_path, notifications)) as bridge:
            record = unique_record()
            task = bridge.file(record, justification="Quarterly audit")
            request = web.wait_for_request("/ops")
            token = request.body.decode("ascii")
            claims = verify(bridge, token, hook)
            header = jwt.get_unverified_header(token)
            tampered = with_claims(token, notice={**claims["notice"], "page_url": "https://x"})
            with pytest.raises(jwt.InvalidSignatureError):
                verify(bridge, tampered, hook)
            wait_for("the notice to be recorded", lambda: bridge.notified(task))
            notified = bridge.notified(task)

    assert request.headers["content-type"] == "application/jose"
    assert header["typ"] == "approval-notice+jwt"
    assert claims["exp"] - claims["iat"] == 300
    notice = claims["notice"]
    assert notice["task_id"] == task
    assert notice["reason"] == "decide"
    assert notice["template"] == "manager"
    assert (notice["step"], notice["steps"], notice["step_name"]) == (1, 1, "approve")
    assert notice["page_url"] == f"{PUBLIC_URL}/approvals/{task}"
    assert notice["recipient"] == "webhook:ops"
    assert notice["subject"] == "user alice"
    assert notice["client"] == "report-agent"
    assert notice["what"] == [f"export Record {record}"]
    assert notice["justification"] == "Quarterly audit"
    assert notice["title"] == f"Approval needed: export Record {record} for user alice"
    assert notified == [("webhook:ops", "webhook:ops")]


def test_a_slack_webhook_gets_slack_text_and_a_signature_header(tmp_path: Path) -> None:
    with LocalWebServer({"/maria": answering()}) as web:
        hook = f"{web.url}/maria"
        notifications = webhook_toml("maria-chat", hook, "slack") + (
            '[notifications.people.maria]\nwebhook = "maria-chat"\n\n'
            '[notifications.templates.manager]\npeople = ["maria"]\n'
        )
        with running(write_config(tmp_path, notifications)) as bridge:
            record = unique_record()
            task = bridge.file(record, justification="<b>urgent</b> & <!channel>")
            request = web.wait_for_request("/maria")
            claims = verify(bridge, request.headers[SIGNATURE_HEADER], hook)

    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    assert list(body) == ["text"]
    text = body["text"]
    assert text.startswith(f"*Approval needed: export Record {record} for user alice*\n")
    assert f"<{PUBLIC_URL}/approvals/{task}|Decide it on the request's page>" in text
    # What a requester wrote forms no link, markup or mention in Slack.
    assert "Justification: &lt;b&gt;urgent&lt;/b&gt; &amp; &lt;!channel&gt;" in text
    assert "<!channel>" not in text
    # The signature covers these very body bytes.
    digest = base64.urlsafe_b64encode(hashlib.sha256(request.body).digest()).rstrip(b"=")
    assert claims["body_sha256"] == digest.decode()
    assert claims["notice"]["recipient"] == "person:maria"
    assert claims["notice"]["task_id"] == task


def test_a_failing_webhook_is_retried_with_the_same_message_and_a_refusal_given_up(
    tmp_path: Path,
) -> None:
    with LocalWebServer({"/flaky": answering(503), "/gone": answering(410)}) as web:
        notifications = (
            webhook_toml("flaky", f"{web.url}/flaky")
            + webhook_toml("gone", f"{web.url}/gone")
            + '[notifications.templates.manager]\nwebhooks = ["flaky", "gone"]\n'
        )
        with running(write_config(tmp_path, notifications)) as bridge:
            task = bridge.file(unique_record())
            wait_for(
                "both messages to end",
                lambda: {m.status for m in bridge.messages_about(task)} == {"done", "failed"},
                seconds=30,
            )
            outcome = {m.recipient: (m.status, m.last_error) for m in bridge.messages_about(task)}
            notified = bridge.notified(task)
        flaky = [r for r in web.requests if r.path == "/flaky"]
        gone = [r for r in web.requests if r.path == "/gone"]

    assert len(flaky) == 2  # a 503, then delivered
    jtis = {jwt.decode(r.body, options={"verify_signature": False})["jti"] for r in flaky}
    assert len(jtis) == 1  # the same message: a receiver can drop a repeat
    assert len(gone) == 1  # a 410 is not retried
    assert outcome == {
        "webhook:flaky": ("done", None),
        "webhook:gone": ("failed", "webhook answered 410"),
    }
    assert notified == [("webhook:flaky", "webhook:flaky")]
