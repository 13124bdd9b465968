"""`[notifications]`: what a configuration may say, and the problems it is told about when
it says something the bridge cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.notifications.assembly import problems
from bridge.settings import ConfigError, Settings, load_settings

SMTP = """
[notifications.smtp]
host = "mail.example.com"
from_address = "Access requests <bridge@example.com>"
"""

VALID = (
    SMTP
    + """
[notifications.people.maria]
email = "maria@example.com"
webhook = "maria-chat"

[notifications.people."kim@example.com"]
type = "employee"
email = "kim@example.com"

[notifications.webhooks.maria-chat]
url = "https://hooks.slack.com/services/T0/B0/secret"
format = "slack"

[notifications.webhooks.ops]
url = "https://ops.example.com/approvals"

[notifications.templates.manager]
people = ["maria", "kim@example.com"]
webhooks = ["ops"]
escalation_people = ["kim@example.com"]

[notifications.templates."*"]
webhooks = ["ops"]
"""
)


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_nothing_configured_tells_nobody() -> None:
    settings = Settings()
    assert settings.notifications.smtp is None
    assert settings.notifications.routing("manager") is None


def test_a_full_configuration_loads_with_its_defaults(tmp_path: Path) -> None:
    options = load(tmp_path, VALID).notifications
    assert options.smtp is not None
    assert (options.smtp.port, options.smtp.security) == (587, "starttls")
    assert options.smtp.sender == ("Access requests", "bridge@example.com")
    assert options.people["maria"].type == "user"
    assert options.people["kim@example.com"].type == "employee"
    assert options.webhooks["ops"].format == "jws"
    manager = options.routing("manager")
    assert manager is not None and manager.people == ["maria", "kim@example.com"]
    fallback = options.routing("sensitive-export")
    assert fallback is not None and fallback.webhooks == ["ops"] and fallback.people == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SMTP + '[notifications.templates.manager]\npeople = ["zed"]\n',
            "templates.manager.people: 'zed' is not in [notifications.people]",
        ),
        (
            SMTP + '[notifications.templates.manager]\nescalation_webhooks = ["nowhere"]\n',
            "templates.manager.escalation_webhooks: 'nowhere' is not in [notifications.webhooks]",
        ),
        (
            '[notifications.people.maria]\nemail = "maria@example.com"\n',
            "people.maria.email: sending e-mail needs a [notifications.smtp] section",
        ),
        (
            '[notifications.people.maria]\nwebhook = "chat"\n',
            "people.maria.webhook: 'chat' is not in [notifications.webhooks]",
        ),
        (
            "[notifications.people.maria]\n",
            "give `email`, `webhook` or both",
        ),
        (
            '[notifications.people.maria]\nemail = "maria"\n',
            "must be one e-mail address",
        ),
        (
            '[notifications.people.maria]\nemail = "maria@example.com\\nBcc: eve@example.com"\n',
            "must be one e-mail address",
        ),
        (
            '[notifications.webhooks.ops]\nurl = "http://ops.example.com/hook"\n',
            "plain http only with `allow_private_network = true`",
        ),
        (
            '[notifications.webhooks.ops]\nurl = "https://10.0.0.7/hook"\n',
            "a private or loopback address needs `allow_private_network = true`",
        ),
        (
            '[notifications.webhooks.ops]\nurl = "https://user:pw@ops.example.com/"\n',
            "url must have no user info or fragment",
        ),
        (
            '[notifications.webhooks.ops]\nurl = "https://ops.example.com/"\nformat = "teams"\n',
            "format: Input should be 'jws' or 'slack'",
        ),
        (
            '[notifications.smtp]\nhost = "mail.example.com"\nsecurity = "none"\n'
            'from_address = "bridge@example.com"\n',
            "security = 'none' only to a loopback host",
        ),
        (
            '[notifications.smtp]\nhost = "mail.example.com"\nusername = "bridge"\n'
            'from_address = "bridge@example.com"\n',
            "give `username` and `password_file` together, or neither",
        ),
        (
            '[notifications.smtp]\nhost = "mail.example.com"\nfrom_address = "bridge"\n',
            "must be an e-mail address, optionally as `Name <address>`",
        ),
        (
            '[notifications.smtp]\nhost = "mail.example.com"\n',
            "notifications.smtp.from_address: Field required",
        ),
        (
            SMTP + '[notifications.templates."manager*"]\npeople = []\n',
            "templates: 'manager*' is not a template name",
        ),
    ],
)
def test_a_configuration_the_bridge_cannot_follow_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    assert message in refused(tmp_path, text)


def test_an_inline_password_is_refused_and_not_echoed(tmp_path: Path) -> None:
    text = SMTP + 'username = "bridge"\npassword = "hunter2-secret"\n'
    reported = refused(tmp_path, text)
    assert "notifications.smtp.password: Extra inputs are not permitted" in reported
    assert "hunter2-secret" not in reported


def test_a_password_file_that_cannot_be_read_is_a_problem(tmp_path: Path) -> None:
    text = SMTP + 'username = "bridge"\npassword_file = "smtp-password"\n'
    settings = load(tmp_path, text)
    assert [p.message for p in problems(settings)] == [
        f"cannot read notifications.smtp.password_file {tmp_path / 'smtp-password'}: "
        "No such file or directory"
    ]
    (tmp_path / "smtp-password").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "smtp-password").chmod(0o600)
    assert problems(settings) == []
